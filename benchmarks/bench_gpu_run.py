"""A real pretraining run and embedding pass at the study's full scale, on this machine's GPU.

    python benchmarks/bench_gpu_run.py [--experiment mabe22] [--run twbyol_tau30]
        [--per-gpu-batch 16] [--steps 40] [--clips 16] [--frames 300] [--work DIR]

Renders `--clips` synthetic mouse-triplet clips at the experiment's frame size (256 px for
`mabe22`) with the benchmark's simulator, writes them in the frames stage's format
(`{clip}.npy` + index.tsv), then calls the pipeline's own `twbyol.train.train` with the
experiment's resolved run config (Slow-R50 8x8, rho = 2 crops, LARS, its precision and
`num_workers`), changed only in length (one epoch of `--steps` steps), in batch (the
per-GPU share of the experiment's global batch, one process) and in paths. Then the `embed`
stage over the same frames. Prints the run's efficiency record (clips/s, peak GPU memory,
GPU-hours) and the embedding frames/s, and the projection of those figures to the study's
50 epochs of MABe22 — the figures a lab needs to size its SLURM requests.

What it does not show: multi-GPU scaling (one process, no DDP/SyncBatchNorm all-reduce).
Content of the frames does not change the timings, only that the loss is meaningful.
Asserts nothing; needs a CUDA GPU for the figures to mean anything (runs on CPU too,
with a tiny `--per-gpu-batch`, as a check that it works).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from twbyol.experiment import embedding_config, run_config

# The MABe22 mouse-triplet video: 4.7 million frames (Sun et al. 2023, abstract) in
# one-minute clips at 30 Hz, so about 2,600 clips; the study pretrains on one crop pair per
# clip and epoch (samples_per_epoch 0) and embeds every frame.
MABE22_FRAMES = 4_700_000
MABE22_CLIPS = MABE22_FRAMES // 1800


def render_clip(args: tuple[int, int, int, str]) -> tuple[str, int]:
    from twbyol.data.render import render
    from twbyol.data.synth import _mabe22_clip

    i, n_frames, size, out = args
    rng = np.random.default_rng([7, i])
    sim, coats, scene, _ = _mabe22_clip(rng, n_frames, size, 30.0, body_scale=1.0)
    frames = np.stack(list(render(sim, coats, scene, size, rng)))
    clip_id = f"bench{i:04d}"
    np.save(Path(out) / f"{clip_id}.npy", frames)
    return clip_id, len(frames)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--experiment", default="mabe22")
    ap.add_argument("--run", default="twbyol_tau30")
    ap.add_argument(
        "--per-gpu-batch",
        type=int,
        default=0,
        help="clips per step; 0: the experiment's batch_size / gpus_per_node",
    )
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--frames", type=int, default=300, help="frames per rendered clip")
    ap.add_argument("--size", type=int, default=0, help="frame size; 0: the dataset's")
    ap.add_argument("--num-workers", type=int, default=-1, help="-1: the experiment's")
    ap.add_argument(
        "--work", default="", help="folder for frames and outputs (default: a temp dir)"
    )
    a = ap.parse_args()

    from twbyol.embed import embed
    from twbyol.train import TrainConfig, train

    e = yaml.safe_load(Path(a.config).read_text())["experiments"][a.experiment]
    ds = e["datasets"][e["pretrain_dataset"]]
    size = a.size or int(ds["frames"]["size"])
    work = Path(a.work or tempfile.mkdtemp(prefix="twbyol-gpu-bench-"))
    frames_dir = work / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)

    t = time.time()
    jobs = [(i, a.frames, size, str(frames_dir)) for i in range(a.clips)]
    with ProcessPoolExecutor(max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        clips = list(pool.map(render_clip, jobs))
    starts = np.cumsum([0] + [n for _, n in clips])
    pd.DataFrame(
        {
            "clip_id": [c for c, _ in clips],
            "n_frames": [n for _, n in clips],
            "fps": 30.0,
            "source": "rendered",
            "shard": 0,
            "start": starts[:-1],
            "end": starts[1:],
            "labelled": 1,
            "splits": "",
        }
    ).to_csv(frames_dir / "index.tsv", sep="\t", index=False)
    print(
        f"rendered {a.clips} clips x {a.frames} frames at {size} px in {time.time() - t:.1f} s",
        flush=True,
    )

    cfg = run_config(a.experiment, e, a.run, 0)
    gpus = int(e.get("resources", {}).get("gpus_per_node", 1)) * int(
        e.get("resources", {}).get("nodes", 1)
    )
    per_gpu = a.per_gpu_batch or cfg["batch_size"] // gpus
    cfg.update(
        epochs=1,
        warmup_epochs=0,
        samples_per_epoch=per_gpu * a.steps,
        batch_size=per_gpu,
        checkpoint_every=0,
        out_dir=str(work / "run"),
        frames_dir=str(frames_dir),
        index=str(frames_dir / "index.tsv"),
    )
    if a.num_workers >= 0:
        cfg["num_workers"] = a.num_workers
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(
        f"device {device}; run {a.experiment}/{a.run}: backbone {cfg['backbone']['name']}, "
        f"crops {cfg['crop']['rho']} x {cfg['crop']['num_frames']}x{cfg['crop']['crop_size']}^2 "
        f"(stride {cfg['crop']['stride']}), {per_gpu} clips per step, {a.steps} steps, "
        f"optimizer {cfg['optimizer']}, precision {cfg['precision']}, "
        f"{cfg['num_workers']} loader workers",
        flush=True,
    )
    eff = train(TrainConfig.from_dict(cfg))
    print("efficiency.json:", json.dumps(eff), flush=True)

    emb = embedding_config(e)
    info = embed(
        str(work / "run" / "model.pt"),
        str(frames_dir),
        str(frames_dir / "index.tsv"),
        str(work / "embedding.npy"),
        str(work / "projection.npz"),
        window_stride=emb["window_stride"],
        batch_size=emb["batch_size"],
        max_dim=emb["max_dim"],
    )

    # Projection to the study (per run and seed): clips/s of one GPU x the experiment's GPUs
    # (perfect scaling: an upper bound on speed), one crop pair per training clip and epoch.
    epochs = int(e["training"]["epochs"])
    samples = epochs * MABE22_CLIPS
    rate = eff["samples_per_s"] * gpus
    hours = samples / rate / 3600 if rate else float("nan")
    print(
        f"projection for {a.experiment}: {epochs} epochs x {MABE22_CLIPS} clips = {samples:,} "
        f"samples at {rate:.1f} clips/s on {gpus} GPUs (linear scaling assumed) = "
        f"{hours:.2f} h wall, {hours * gpus:.2f} GPU-hours per run and seed; embedding the "
        f"{MABE22_FRAMES:,} frames of the release at {info['frames_per_s']:,.0f} frames/s = "
        f"{MABE22_FRAMES / info['frames_per_s'] / 3600:.2f} GPU-hours per model",
        flush=True,
    )


if __name__ == "__main__":
    main()
