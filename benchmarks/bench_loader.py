"""Loader throughput (memmap frames -> augmented rho-crop batch) vs the training step rate.

    python benchmarks/bench_loader.py [--workers 0 1 2] [--batch 32] [--size 64 --crop 56]

Generates a small synthetic MABe22-format dataset in a temp folder, extracts its frames, then
measures samples/s of the DataLoader alone for each worker count, with the augmentation in the
workers (`training.augment_on: loader`) and with the workers only slicing crops and drawing
their parameters (`device`, the default), and, side by side in interleaved rounds, a tiny-
backbone TW-BYOL training step as train.py runs it on a CPU (channels-last) on ready batches,
the batched augmentation alone, and both (what the trainer does per batch with `device`).
Target: loader >= 3x what the trainer consumes, so the loader is never the bottleneck.
Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from twbyol.allocator import keep_large_allocations
from twbyol.benchmark import interleaved, step_timer
from twbyol.data.artifacts import read_index
from twbyol.data.augment import augment_batch
from twbyol.data.crops import CropConfig
from twbyol.data.sampling import TemporalCropDataset
from twbyol.methods.byol import BYOL
from twbyol.models.backbones import build_backbone, to_channels_last


def twbyol(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "twbyol", *args], check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=64, help="extracted frame size")
    ap.add_argument("--crop", type=int, default=56)
    ap.add_argument("--batches", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        twbyol(
            "synth",
            "--format",
            "mabe22",
            "--out",
            str(d / "data"),
            "--config",
            '{"n_clips": 8, "n_frames": 600, "size": 128, "seed": 0}',
            "--jobs",
            "2",
        )
        twbyol(
            "read-dataset",
            "--format",
            "mabe22",
            "--root",
            str(d / "data"),
            "--index-out",
            str(d / "f/index.tsv"),
            "--labels-out",
            str(d / "labels.npz"),
            "--protocol-out",
            str(d / "protocol.json"),
            "--n-shards",
            "1",
        )
        twbyol(
            "extract-frames",
            "--index",
            str(d / "f/index.tsv"),
            "--shard",
            "0",
            "--size",
            str(a.size),
            "--out-dir",
            str(d / "f"),
            "--done",
            str(d / "f/shard0.done"),
            "--root",
            str(d / "data"),
            "--fit",
            "letterbox",
        )
        index = read_index(d / "f/index.tsv")
        clips = list(zip(index["clip_id"], index["n_frames"].astype(int)))
        crop = CropConfig(rho=2, num_frames=8, stride=2, crop_size=a.crop, min_scale=0.3)
        n = a.batch * a.batches
        keys = [(0, k) for k in range(n)]
        print(
            f"batch {a.batch}, rho 2 x 8 frames at {a.crop} px from {a.size} px frames; "
            f"{torch.get_num_threads()} torch threads, {a.batches} batches"
        )
        rates = {}
        for mode in ("loader", "device"):
            ds = TemporalCropDataset(d / "f", clips, crop, n, seed=0, augment_on=mode)
            for w in a.workers:
                loader = torch.utils.data.DataLoader(
                    ds, batch_size=a.batch, sampler=keys, num_workers=w
                )
                it = iter(loader)
                next(it)  # start-up (worker spawn) is paid once per run, not per batch
                t = time.perf_counter()
                count = sum(b[0].shape[0] for b in it)
                rates[mode, w] = count / (time.perf_counter() - t)
                what = "augments" if mode == "loader" else "slices, draws parameters"
                print(f"  loader that {what}, {w} workers: {rates[mode, w]:8.1f} samples/s")

        # the training step as train.py runs it on a CPU (channels-last, its malloc
        # settings), on ready batches
        keep_large_allocations()
        torch.manual_seed(0)
        model = to_channels_last(BYOL(build_backbone("tiny"), "exponential", 30.0, 512, 128, 512))
        opt = torch.optim.AdamW(model.online.parameters(), lr=1e-3)
        ds = TemporalCropDataset(d / "f", clips, crop, n, seed=0, augment_on="device")
        raw, params, c, _ = next(
            iter(torch.utils.data.DataLoader(ds, batch_size=a.batch, sampler=keys))
        )

        def step(x):
            loss, _ = model(x, c)
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.update_target(0.99)

        x = augment_batch(raw, params, crop)
        timers = {
            "step": lambda: step(x),
            "augment + step": lambda: step(augment_batch(raw, params, crop)),
            "augment": lambda: augment_batch(raw, params, crop),
        }
        times = interleaved(
            {k: step_timer(f, torch.device("cpu")) for k, f in timers.items()}, a.batches // 2
        )
        per_s = {k: a.batch / statistics.median(v) for k, v in times.items()}
        for k, r in per_s.items():
            print(f"  {k:<15} (tiny TW-BYOL, batch {a.batch}): {r:8.1f} samples/s")
        for (mode, w), r in rates.items():
            against = "step" if mode == "loader" else "augment + step"
            print(
                f"  ratio loader({mode} augmentation, {w} workers) / {against} = "
                f"{r / per_s[against]:.2f}  (target >= 3)"
            )


if __name__ == "__main__":
    main()
