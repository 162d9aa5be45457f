"""A real pretraining run and embedding pass at the study's full scale, on this machine's GPU.

    python benchmarks/bench_gpu_run.py [--experiment mabe22] [--run twbyol_tau30]
        [--per-gpu-batch 16] [--steps 40] [--clips 16] [--frames 300] [--work DIR]

Also, side by side: the run with the augmentation on the device and in the loader workers
(`--augment-on`), each against the bare step on ready batches (the issue's target: the real
run at >= 0.9x it); the bare step in the other memory format and, with `--compile`, through
torch.compile, with its achieved TFLOP/s (torch's FLOP counter) against the device's bf16
peak; the embed stage against its bare forward.

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
import statistics
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


# dense bf16 peak of the GPUs we size for (vendor datasheets, without sparsity), TFLOP/s
PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}


def peak_of(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def bare_steps(cfg: dict, batch: int, steps: int, with_compile: bool, peak: float | None) -> float:
    """The run's training step on ready batches (no loader, no augmentation), as configured
    and in its variants, timed side by side (twbyol.benchmark's interleaved rounds): the
    other memory format, LARS's other step form (loop / foreach), and torch.compile of the
    online network with --compile. Prints
    ms/step, clips/s, achieved TFLOP/s (torch's FLOP counter over one step) and its share of
    the device's peak. Returns the configured step's clips/s."""
    from torch.utils.flop_counter import FlopCounterMode

    from twbyol.benchmark import interleaved, median_ratio, step_timer, training_step
    from twbyol.models.backbones import channels_last_wanted

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    crop = cfg["crop"]
    g = torch.Generator().manual_seed(0)
    shape = (batch, crop["rho"], 1, crop["num_frames"], crop["crop_size"], crop["crop_size"])
    crops = torch.randn(*shape, generator=g).to(device)
    centres = (torch.rand(batch, crop["rho"], generator=g) * 300).to(device)
    cl = channels_last_wanted(cfg.get("channels_last", "auto"), device)
    variants = {
        "as configured": (cfg, False, None),
        f"channels_last {not cl}": ({**cfg, "channels_last": not cl}, False, None),
    }
    if cfg.get("optimizer") == "lars":  # the other form of LARS's step than the device's
        variants[f"LARS {'loop' if device.type == 'cuda' else 'foreach'}"] = (
            cfg,
            False,
            device.type != "cuda",
        )
    if with_compile:
        variants["torch.compile(online)"] = (cfg, True, None)
    fns = {
        n: training_step(c, crops, centres, device, comp, fe)[0]
        for n, (c, comp, fe) in variants.items()
    }
    with FlopCounterMode(display=False) as counter:
        fns["as configured"]()
    flops = counter.get_total_flops()
    times = interleaved({n: step_timer(f, device) for n, f in fns.items()}, steps)
    base = statistics.median(times["as configured"])
    peak = peak or (peak_of(torch.cuda.get_device_name(device)) if device.type == "cuda" else None)
    print(f"bare step, {batch} clips, {flops / 1e12:.2f} TFLOP a step:", flush=True)
    for n, ts in times.items():
        m = statistics.median(ts)
        r = median_ratio(ts, times["as configured"])
        tf = flops / m / 1e12
        share = f" = {tf / peak:.1%} of the {peak:.0f} TFLOP/s bf16 peak" if peak else ""
        print(
            f"  {n:<24} {m * 1e3:8.1f} ms = {batch / m:7.1f} clips/s, {tf:7.2f} TFLOP/s{share}; "
            f"vs as configured {r['median_ratio']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]",
            flush=True,
        )
    return batch / base


def bare_forward(model: Path, cfg: dict, emb: dict, rounds: int = 10) -> float:
    """frames/s of the embed stage's forward alone: the run's backbone as the stage loads it,
    full batches of ready windows on the device, its autocast; each window stands for
    `window_stride` frames, as in the stage."""
    from twbyol.embed import load_backbone

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone, _ = load_backbone(model, device)
    crop = cfg["crop"]
    x = torch.randn(
        emb["batch_size"], 1, crop["num_frames"], crop["crop_size"], crop["crop_size"]
    ).to(device)
    times = []
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
    ):
        for i in range(rounds + 2):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            backbone(x).float().cpu()
            if i >= 2:
                times.append(time.perf_counter() - t)
    return emb["batch_size"] * emb["window_stride"] / statistics.median(times)


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
    ap.add_argument(
        "--augment-on",
        nargs="+",
        default=["device", "loader"],
        choices=["device", "loader"],
        help="the real run once per place of the augmentation",
    )
    ap.add_argument("--bare-steps", type=int, default=20, help="timed rounds of the bare step")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(online)")
    ap.add_argument(
        "--peak-tflops", type=float, default=None, help="the device's peak (default: by name)"
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
    # the real run, once per place of the augmentation (the first into work/run)
    effs = {}
    for k, mode in enumerate(a.augment_on):
        out = work / ("run" if k == 0 else f"run_{mode}")
        effs[mode] = train(TrainConfig.from_dict({**cfg, "augment_on": mode, "out_dir": str(out)}))
        label = "efficiency.json:" if k == 0 else f"efficiency.json ({mode} augmentation):"
        print(f"augment_on {mode}:", label, json.dumps(effs[mode]), flush=True)
    eff = effs[a.augment_on[0]]
    bare = bare_steps(cfg, per_gpu, a.bare_steps, a.compile, a.peak_tflops)
    for mode, e_ in effs.items():
        steady = e_["steady_samples_per_s"] or float("nan")
        print(
            f"real run, augment_on {mode}: {steady:.1f} clips/s after its first steps = "
            f"{steady / bare:.2f} x the bare step's {bare:.1f} clips/s (target >= 0.9); "
            f"{e_['samples_per_s']:.1f} clips/s with its start-up",
            flush=True,
        )

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

    forward = bare_forward(work / "run" / "model.pt", cfg, emb)
    print(
        f"embed stage {info['frames_per_s']:,.0f} frames/s = "
        f"{info['frames_per_s'] / forward:.2f} x the bare forward's {forward:,.0f} frames/s "
        f"(batches of {emb['batch_size']} windows, a window every {emb['window_stride']} "
        f"frames; the stage's figure includes reading the frames and its last, partial "
        f"batch of each clip)",
        flush=True,
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
