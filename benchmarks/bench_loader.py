"""Loader throughput (memmap frames -> augmented rho-crop batch) vs the training step rate.

    python benchmarks/bench_loader.py [--workers 0 1 2] [--batch 32] [--size 64 --crop 56]

Generates a small synthetic MABe22-format dataset in a temp folder, extracts its frames, then
measures samples/s of the DataLoader alone for each worker count and samples/s of a tiny-
backbone TW-BYOL training step on ready batches. Target: loader >= 3x the step rate, so the
loader is never the bottleneck. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from twbyol.data.artifacts import read_index
from twbyol.data.sampling import CropConfig, TemporalCropDataset
from twbyol.methods.byol import BYOL
from twbyol.models.backbones import build_backbone
from twbyol.settings import BODY_SCALE


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
            "--n-clips",
            "8",
            "--n-frames",
            "600",
            "--size",
            "128",
            "--seed",
            "0",
            "--jobs",
            "2",
            "--body-scale",
            str(BODY_SCALE),
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
        ds = TemporalCropDataset(d / "f", clips, crop, n, seed=0)
        keys = [(0, k) for k in range(n)]
        print(
            f"batch {a.batch}, rho 2 x 8 frames at {a.crop} px from {a.size} px frames; "
            f"{torch.get_num_threads()} torch threads, {a.batches} batches"
        )
        rates = {}
        for w in a.workers:
            loader = torch.utils.data.DataLoader(
                ds, batch_size=a.batch, sampler=keys, num_workers=w
            )
            it = iter(loader)
            next(it)  # start-up (worker spawn) is paid once per epoch, not per batch
            t = time.perf_counter()
            count = sum(x.shape[0] for x, _, _ in it)
            rates[w] = count / (time.perf_counter() - t)
            print(f"  loader, {w} workers: {rates[w]:8.1f} samples/s")
        torch.manual_seed(0)
        model = BYOL(build_backbone("tiny"), "exponential", 30.0, 512, 128, 512)
        opt = torch.optim.AdamW(model.online.parameters(), lr=1e-3)
        x, c, _ = next(iter(torch.utils.data.DataLoader(ds, batch_size=a.batch, sampler=keys)))
        for i in range(a.batches // 2 + 2):
            if i == 2:
                t = time.perf_counter()
            loss, _ = model(x, c)
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.update_target(0.99)
        step_rate = a.batch * (a.batches // 2) / (time.perf_counter() - t)
        print(f"  training step (tiny TW-BYOL): {step_rate:8.1f} samples/s")
        for w, r in rates.items():
            print(f"  ratio loader({w} workers) / step = {r / step_rate:.2f}  (target >= 3)")


if __name__ == "__main__":
    main()
