"""Training-step time of TW-BYOL vs uniform BYOL, and of our BYOL vs pytorchvideo's BYOL.

    python benchmarks/bench_train_step.py [--backbone tiny|slow_r50] [--batch 32] [--steps 30]
        [--amp bf16]

Same backbone, same batch, same optimiser; steps of the compared models are interleaved
(A B, B A, ...) so that drift in machine load hits both alike, and the median step time is
reported with the clips per second it gives (each clip = 2 crops) and, on a GPU, the peak
memory of one step of each model alone. `--amp bf16` runs forward and loss under bf16
autocast, as training does on GPUs (`training.precision`). Targets: TW-BYOL / uniform <= 1.02
(the mission allows 1.05); ours / pytorchvideo <= 1.0. Prints figures and ratios (the ratio
of the median times, and the median per-step ratio with its 95 % CI); asserts nothing.

The timing core is twbyol.benchmark's, which the workflow's step_benchmark rule runs on an
experiment's own runs (criterion 4's evidence on CPU); this script adds pytorchvideo's BYOL.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn

from twbyol.allocator import keep_large_allocations
from twbyol.benchmark import interleaved, median_ratio, peak_mb, step_timer
from twbyol.methods.byol import BYOL, ema_momentum
from twbyol.models.backbones import MLP, build_backbone, channels_last_wanted, to_channels_last

AMP = {"dtype": None}  # set from --amp in main()
LAYOUT = {"channels_last": False}  # set from --channels-last in main(), for both models


def autocast(device):
    return torch.autocast(
        device.type, dtype=AMP["dtype"] or torch.float32, enabled=AMP["dtype"] is not None
    )


def ours(weighting, backbone_kw, crops, centres, device, dims):
    torch.manual_seed(0)
    model = BYOL(build_backbone(**backbone_kw), weighting, 30.0, *dims).to(device)
    if LAYOUT["channels_last"]:
        to_channels_last(model)
    opt = torch.optim.SGD(model.online.parameters(), lr=0.01, momentum=0.9)

    def step():
        with autocast(device):
            loss, _ = model(crops, centres)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.update_target(ema_momentum(1, 100))

    return step


def library(backbone_kw, crops, device, dims):
    from pytorchvideo.models.byol import BYOL as PTVBYOL

    torch.manual_seed(0)
    backbone = build_backbone(**backbone_kw)
    proj_hidden, proj_dim, pred_hidden = dims
    model = PTVBYOL(
        nn.Sequential(backbone, MLP(backbone.feature_dim, proj_hidden, proj_dim)),
        feature_dim=proj_dim,
        predictor_inner=pred_hidden,
        mmt=0.99,
        norm=nn.BatchNorm1d,
    ).to(device)
    if LAYOUT["channels_last"]:
        to_channels_last(model)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x1, x2 = crops[:, 0], crops[:, 1]

    def step():
        with autocast(device):
            loss = model(x1, x2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def compare(name_a, a, name_b, b, steps, batch, device):
    times = interleaved({name_a: step_timer(a, device), name_b: step_timer(b, device)}, steps)
    mem = {name_a: peak_mb(a, device), name_b: peak_mb(b, device)}
    c = median_ratio(times[name_a], times[name_b])
    for name in (name_a, name_b):
        m = statistics.median(times[name])
        peak = f", peak {mem[name]:,.0f} MiB" if mem[name] is not None else ""
        print(f"  {name:<22} {m * 1e3:8.1f} ms/step = {batch / m:8.1f} clips/s{peak}")
    lo, hi = c["ci95"]
    print(
        f"  ratio {name_a} / {name_b} = {c['ratio_of_medians']:.3f} (median per-step ratio "
        f"{c['median_ratio']:.3f}, 95 % CI [{lo:.3f}, {hi:.3f}])"
    )
    return c["ratio_of_medians"]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backbone", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument(
        "--amp",
        choices=["none", "bf16"],
        default="none",
        help="bf16 autocast of forward and loss (GPU training's default)",
    )
    ap.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="torch.backends.cudnn.benchmark = True (autotuned convolution algorithms)",
    )
    ap.add_argument(
        "--channels-last",
        choices=["auto", "true", "false"],
        default="auto",
        help="channels-last 3D convolutions in both models; auto: as training "
        "(training.channels_last's default)",
    )
    ap.add_argument(
        "--default-malloc",
        action="store_true",
        help="CPU: leave glibc's malloc at its defaults (training tunes it: "
        "twbyol.train.keep_large_allocations)",
    )
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    AMP["dtype"] = torch.bfloat16 if a.amp == "bf16" else None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # the CPU allocator as training sets it (twbyol.train), for both models: process-wide
    tuned = device.type == "cpu" and not a.default_malloc and keep_large_allocations()
    LAYOUT["channels_last"] = channels_last_wanted(
        {"auto": "auto", "true": True, "false": False}[a.channels_last], device
    )
    backbone_kw = {"name": a.backbone}
    dims = (512, 128, 512) if a.backbone == "tiny" else (4096, 256, 4096)
    g = torch.Generator().manual_seed(0)
    crops = torch.randn(a.batch, 2, 1, a.frames, a.size, a.size, generator=g).to(device)
    # on the host, pinned, as the training loop's batches (BYOL weighs its pairs there)
    centres = torch.rand(a.batch, 2, generator=g) * 300
    centres = centres.pin_memory() if device.type == "cuda" else centres
    print(
        f"device {device}, backbone {a.backbone}, batch {a.batch} x 2 crops of "
        f"{a.frames}x{a.size}x{a.size}, {a.steps} interleaved steps, amp {a.amp}, "
        f"cudnn.benchmark {a.cudnn_benchmark}, channels-last {LAYOUT['channels_last']}, "
        f"torch threads {torch.get_num_threads()}, malloc tuned {tuned}"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
    )
    print("TW-BYOL (exponential, tau=30) vs uniform BYOL (target <= 1.02):")
    compare(
        "tw-byol",
        ours("exponential", backbone_kw, crops, centres, device, dims),
        "uniform",
        ours("uniform", backbone_kw, crops, centres, device, dims),
        a.steps,
        a.batch,
        device,
    )
    print("our uniform BYOL vs pytorchvideo.models.byol.BYOL (target <= 1.0):")
    compare(
        "ours",
        ours("uniform", backbone_kw, crops, centres, device, dims),
        "pytorchvideo",
        library(backbone_kw, crops, device, dims),
        a.steps,
        a.batch,
        device,
    )


if __name__ == "__main__":
    main()
