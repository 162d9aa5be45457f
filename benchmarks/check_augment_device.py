"""The augmentation on the device (twbyol.data.augment.augment_batch) on CUDA against the CPU.

    python benchmarks/check_augment_device.py [--experiment mabe22] [--batch 16] [--size 0]

One batch as the loader gives it with `augment_on: device` (TemporalCropDataset: each crop's
raw uint8 frames and its drawn parameters) from clips of moving blobs plus noise at the
dataset's frame size (256 px for `mabe22`), with the experiment's crop settings and with
the other order of the photometric and spatial parts; the same raw frames and parameters go
through `augment_batch` on the CPU and on the GPU. Prints, per order, the largest difference
in grey levels (0..255) and the fraction of pixels that differ, and PASS where the largest
is <= 1 grey level (the float resize and blur may land on the other side of a rounding
edge; anything larger is a different augmentation). Exit status 1 on a FAIL. Without CUDA
there is nothing to compare: it says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

from twbyol.data.augment import augment_batch
from twbyol.data.crops import CropConfig
from twbyol.models.backbones import STD

TOLERANCE = 1  # grey levels


def grey_difference(a: torch.Tensor, b: torch.Tensor, tolerance: int = TOLERANCE) -> dict:
    """Two model inputs of the same batch ((x / 255 - mean) / std) compared in grey levels:
    {"max_grey": the largest |difference| (rounded to whole levels), "fraction": of values
    that differ by >= 1 level, "ok": max_grey <= tolerance}."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    grey = ((a.double().cpu() - b.double().cpu()) * STD * 255).abs().round()
    top = int(grey.max()) if grey.numel() else 0
    return {
        "max_grey": top,
        "fraction": float((grey >= 1).double().mean()) if grey.numel() else 0.0,
        "ok": top <= tolerance,
    }


def blob_clips(folder: Path, n_clips: int, n_frames: int, size: int) -> list[tuple[str, int]]:
    """{clip}.npy of smooth moving blobs plus noise, uint8, as the frames stage writes them."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    clips = []
    for c in range(n_clips):
        t = np.arange(n_frames)[:, None, None]
        cx = size * (0.2 + 0.6 * ((t * 0.01 + c * 0.3) % 1.0))
        blob = 200 * np.exp(-(((xx - cx) ** 2 + (yy - size / 2) ** 2) / (size * size / 40.0)))
        arr = np.clip(blob + 30 + rng.normal(0, 12, (n_frames, size, size)), 0, 255)
        np.save(folder / f"c{c}.npy", arr.astype(np.uint8))
        clips.append((f"c{c}", n_frames))
    return clips


def device_batch(
    folder: Path, crop: CropConfig, batch: int, size: int, n_clips: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw (B, rho, T, H, W) uint8, params (B, rho, len(PARAMS))) of one batch as the loader
    gives it with augment_on "device", from blob clips written into `folder`."""
    from twbyol.data.sampling import TemporalCropDataset

    span = (crop.num_frames - 1) * crop.stride + 1
    clips = blob_clips(folder, n_clips, span + max(crop.gap, 0) + 30, size)
    ds = TemporalCropDataset(folder, clips, crop, batch, seed=3, augment_on="device")
    items = [ds[(0, k)] for k in range(batch)]
    return torch.stack([i[0] for i in items]), torch.stack([i[1] for i in items])


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--experiment", default="mabe22")
    ap.add_argument("--batch", type=int, default=16, help="samples (each rho crops)")
    ap.add_argument("--size", type=int, default=0, help="frame size; 0: the dataset's")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to compare the CPU's augmentation with", flush=True)
        return 0

    e = yaml.safe_load(Path(a.config).read_text())["experiments"][a.experiment]
    size = a.size or int(e["datasets"][e["pretrain_dataset"]]["frames"]["size"])
    crop = CropConfig(**e["crop"])
    print(
        f"{torch.cuda.get_device_name(0)}; {a.experiment} crops: {a.batch} samples x "
        f"{crop.rho} crops of {crop.num_frames} frames from {size} px to {crop.crop_size} px; "
        f"torch.backends.cuda.matmul.allow_tf32 {torch.backends.cuda.matmul.allow_tf32} "
        f"(as training leaves it)",
        flush=True,
    )
    failed = False
    for order in (crop.photometric_first, not crop.photometric_first):
        c = replace(crop, photometric_first=order)
        with tempfile.TemporaryDirectory(prefix="twbyol-augment-check-") as tmp:
            raw, params = device_batch(Path(tmp), c, a.batch, size)
        on_cpu = augment_batch(raw, params, c)
        on_gpu = augment_batch(raw.cuda(), params.cuda(), c).cpu()
        d = grey_difference(on_cpu, on_gpu)
        failed |= not d["ok"]
        label = "photometric first" if order else "crop first"
        mark = " (the experiment's)" if order == crop.photometric_first else ""
        print(
            f"  {label}{mark}: max |CUDA - CPU| {d['max_grey']} grey levels, "
            f"{d['fraction']:.2%} of {on_cpu.numel():,} values differ: "
            f"{'PASS' if d['ok'] else 'FAIL'} (<= {TOLERANCE} grey level)",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
