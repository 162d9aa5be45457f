"""A real pretraining run and embedding pass at the study's full scale, on this machine's GPU.

    python benchmarks/bench_gpu_run.py [--experiment mabe22] [--run twbyol_tau30]
        [--per-gpu-batch 16] [--steps 205] [--clips 16] [--frames 300] [--work DIR]

Also, side by side: the run with the augmentation on the device and in the loader workers
(`--augment-on`), each against the bare step on ready batches (the issue's target: the real
run at >= 0.9x it); the bare step in the other memory format, in LARS's other step form and,
with `--compile`, through torch.compile (a variant that fails is named and left out), with
its achieved TFLOP/s (torch's FLOP counter) against the dense peak of the precision the step
runs in on the card found (PEAKS, vendor datasheets: bf16 under bf16 autocast, TF32 for fp32
convolutions / matmuls where torch allows TF32, else FP32; weighted by each kind's FLOPs
where they differ; no share for a card not in the table), and the peak GPU memory of one
step of each variant (the statistics reset before each figure: each run, each variant,
the embed stage); the embed stage against its bare forward under the stage's autocast.

The real run's steady rate (efficiency.json's `steady_samples_per_s`) leaves out the loop's
first WARM_STEPS steps and its epoch-end checkpoint; by default it covers 200 steps, so that
the batches a loader-bound run's workers queued before its clock started (8 workers x 2)
inflate it by <= 9 % (the bound is printed), where over 50 steps they could by up to 1.5x.

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
import re
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from twbyol.benchmark import WARMUP
from twbyol.experiment import embedding_config, run_config
from twbyol.features import EmbedConfig
from twbyol.train import WARM_STEPS

# The MABe22 mouse-triplet video: 4.7 million frames (Sun et al. 2023, abstract) in
# one-minute clips at 30 Hz, so about 2,600 clips; the study pretrains on one crop pair per
# clip and epoch (samples_per_epoch 0) and embeds every frame.
MABE22_FRAMES = 4_700_000
MABE22_CLIPS = MABE22_FRAMES // 1800
# the steps of a real run's steady rate: enough that a prefetched loader queue (8 workers x 2
# batches) cannot inflate it by more than ~9 % (over 50 steps it could by ~1.4x)
STEADY_STEPS = 200


def render_clip(args: tuple[int, int, int, str]) -> tuple[str, int]:
    from twbyol.synthetic.generate import _mabe22_clip
    from twbyol.synthetic.render import render

    i, n_frames, size, out = args
    rng = np.random.default_rng([7, i])
    sim, coats, scene, _ = _mabe22_clip(rng, n_frames, size, 30.0, body_scale=1.0)
    frames = np.stack(list(render(sim, coats, scene, size, rng)))
    clip_id = f"bench{i:04d}"
    np.save(Path(out) / f"{clip_id}.npy", frames)
    return clip_id, len(frames)


def write_index(frames_dir: Path, clips: list[tuple[str, int]], source: str = "rendered") -> None:
    """index.tsv of the clips ({clip}.npy in frames_dir, (clip_id, n_frames)) as the frames
    stage writes it, at 30 fps."""
    starts = np.cumsum([0] + [n for _, n in clips])
    pd.DataFrame(
        {
            "clip_id": [c for c, _ in clips],
            "n_frames": [n for _, n in clips],
            "fps": 30.0,
            "source": source,
            "shard": 0,
            "start": starts[:-1],
            "end": starts[1:],
            "labelled": 1,
            "splits": "",
        }
    ).to_csv(Path(frames_dir) / "index.tsv", sep="\t", index=False)


# Dense peak TFLOP/s (no sparsity) of the GPUs we size for, by the precision the tensor cores
# run, from the vendors' datasheets; None: the card has no such mode. Matched against
# torch.cuda.get_device_name in this order (the H100 PCIe and NVL before the SXM's plain
# "H100"; "A10" alone, not "A100" or "A10G"); fp16 runs at the bf16 rate on these cards.
PEAKS: tuple[tuple[str, str, dict[str, float | None]], ...] = (
    ("H100 PCIe", r"H100.*PCIe", {"bf16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    ("H100 NVL", r"H100.*NVL", {"bf16": 835.0, "tf32": 418.0, "fp32": 60.0}),
    ("H200", r"H200", {"bf16": 989.0, "tf32": 495.0, "fp32": 67.0}),
    ("H100 SXM", r"H100", {"bf16": 989.0, "tf32": 495.0, "fp32": 67.0}),
    ("A100", r"A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L40S", r"L40S", {"bf16": 362.0, "tf32": 183.0, "fp32": 91.6}),
    ("A10", r"\bA10\b", {"bf16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    ("V100", r"V100", {"bf16": None, "tf32": None, "fp32": 15.7}),
)


def card_of(name: str) -> tuple[str, dict[str, float | None]] | None:
    """(card, {precision: dense peak TFLOP/s or None}) of a device name; None: not in PEAKS."""
    return next(((card, p) for card, pat, p in PEAKS if re.search(pat, name)), None)


def peak_of(name: str, precision: str) -> float | None:
    """Dense peak TFLOP/s of `precision` (bf16, fp16, tf32, fp32) on the card `name`; None
    for an unknown card or one without that mode."""
    found = card_of(name)
    if found is None:
        return None
    return found[1].get("bf16" if precision == "fp16" else precision)


def step_precisions(amp: str | None) -> dict[str, str]:
    """The precision each kind of FLOP of a step runs in on a CUDA device: {"conv", "matmul"}.
    Under bf16/fp16 autocast both; in fp32, TF32 where torch allows it (convolutions:
    torch.backends.cudnn.allow_tf32, on by default; matmuls: ...cuda.matmul.allow_tf32, off
    by default)."""
    if amp in ("bfloat16", "float16"):
        p = "bf16" if amp == "bfloat16" else "fp16"
        return {"conv": p, "matmul": p}
    return {
        "conv": "tf32" if torch.backends.cudnn.allow_tf32 else "fp32",
        "matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "fp32",
    }


def flops_by_kind(counts: dict) -> dict[str, int]:
    """A FlopCounterMode's global per-op counts summed into {"conv", "matmul"} (every other op
    it counts: mm, addmm, bmm, attention)."""
    out = {"conv": 0, "matmul": 0}
    for op, n in counts.items():
        out["conv" if "conv" in str(op) else "matmul"] += int(n)
    return out


def effective_peak(name: str, flops: dict[str, int], precisions: dict[str, str]) -> float | None:
    """The peak TFLOP/s a step of these FLOPs would run at if each kind ran at its precision's
    peak on card `name` (total / sum of flops_k / peak_k); None if a needed peak is unknown."""
    total = sum(flops.values())
    t = 0.0
    for kind, n in flops.items():
        if n:
            peak = peak_of(name, precisions[kind])
            if peak is None:
                return None
            t += n / peak
    return total / t if t else None


def peak_for(
    name: str, kinds: dict[str, int], amp: str | None, precision: str, given: float | None
) -> tuple[float | None, str]:
    """(the peak TFLOP/s to compare a CUDA step with, or None; the line that says which
    precision and card it is for) for card `name`, the step's FLOPs by kind, its autocast
    dtype name (None: fp32) and the run's training.precision; `given`: --peak-tflops."""
    prec = step_precisions(amp)
    note = f"convolutions {prec['conv']}, matmuls {prec['matmul']}" + (
        f" (autocast {amp})" if amp else f" (training.precision {precision})"
    )
    if given:
        return given, f"{note}; peak {given:.0f} TFLOP/s as given (--peak-tflops)"
    found = card_of(name)
    if found is None:
        return None, f"{note}; {name!r} is not in the peak table: no share of peak"
    card, table = found
    peak = effective_peak(name, kinds, prec)
    used = sorted({prec[k] for k, v in kinds.items() if v})
    dense = ", ".join(f"{p} {table.get('bf16' if p == 'fp16' else p)}" for p in used)
    if peak is None:
        return None, f"{note}; {card} has no such peak ({dense}): no share of peak"
    mixed = ", weighted by each kind's FLOPs" if len(used) > 1 else ""
    return peak, (
        f"{note}; peak of {card} at that precision {peak:.0f} TFLOP/s (dense, datasheet: "
        f"{dense} TFLOP/s{mixed})"
    )


def bare_steps(
    cfg: dict, batch: int, steps: int, with_compile: bool, peak_override: float | None
) -> float:
    """The run's training step on ready batches (no loader, no augmentation), as configured
    and in its variants, timed side by side (twbyol.benchmark's interleaved rounds): the
    other memory format, LARS's other step form (loop / foreach), and torch.compile of the
    online network with --compile (a variant that fails to compile is left out, named).
    Prints per variant ms/step, clips/s, achieved TFLOP/s (torch's FLOP counter over one
    step) and its share of the peak of the precision the step runs in on this card, and the
    peak GPU memory of one step of it alone (statistics reset before it). Returns the
    configured step's clips/s."""
    from torch.utils.flop_counter import FlopCounterMode

    from twbyol.benchmark import interleaved, median_ratio, step_timer, training_step
    from twbyol.models.backbones import channels_last_wanted

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    crop = cfg["crop"]
    g = torch.Generator().manual_seed(0)
    shape = (batch, crop["rho"], 1, crop["num_frames"], crop["crop_size"], crop["crop_size"])
    crops = torch.randn(*shape, generator=g).to(device)
    # the centres stay on the host, as the training loop leaves the loader's (pinned) batch
    centres = torch.rand(batch, crop["rho"], generator=g) * 300
    if device.type == "cuda":
        centres = centres.pin_memory()
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
    fns, amp = {}, None
    for n, (c, comp, fe) in variants.items():
        try:
            fn, amp_n = training_step(c, crops, centres, device, comp, fe)
            if comp:
                fn()  # torch.compile compiles on the first call: fail here, not mid-timing
        except Exception as err:  # noqa: BLE001 - a failed variant is reported, the rest run
            if n == "as configured":
                raise
            msg = (str(err).strip().splitlines() or [""])[0][:300]
            print(f"  {n}: FAILED, left out ({type(err).__name__}: {msg})", flush=True)
            continue
        fns[n] = fn
        amp = amp_n if n == "as configured" else amp
    with FlopCounterMode(display=False) as counter:
        fns["as configured"]()
    kinds = flops_by_kind(counter.get_flop_counts().get("Global", {}))
    flops = sum(kinds.values())
    times = interleaved({n: step_timer(f, device) for n, f in fns.items()}, steps)
    mem = {n: step_memory(f, device) for n, f in fns.items()}
    base = statistics.median(times["as configured"])

    print(
        f"bare step, {batch} clips, {flops / 1e12:.2f} TFLOP a step "
        f"({kinds['conv'] / max(flops, 1):.0%} in convolutions), median of {steps} "
        f"interleaved rounds after {WARMUP} untimed:",
        flush=True,
    )
    peak, peak_note = None, "on the CPU: no peak to compare with"
    if device.type == "cuda":
        peak, peak_note = peak_for(
            torch.cuda.get_device_name(device), kinds, amp, cfg["precision"], peak_override
        )
    print(f"  precision {peak_note}", flush=True)
    for n, ts in times.items():
        m = statistics.median(ts)
        r = median_ratio(ts, times["as configured"])
        tf = flops / m / 1e12
        share = f" = {tf / peak:.1%} of peak" if peak else ""
        memo = ""
        if mem[n] is not None:
            top, held = mem[n]
            memo = f"; peak {top:,.0f} MiB ({held:,.0f} held before its step)"
        print(
            f"  {n:<24} {m * 1e3:8.1f} ms = {batch / m:7.1f} clips/s, {tf:7.2f} TFLOP/s{share}; "
            f"vs as configured {r['median_ratio']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
            f"{memo}",
            flush=True,
        )
    return batch / base


def fresh_peak_memory() -> None:
    """Free the cache and reset the peak statistics, so that the next figure is its own."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def step_memory(step_fn, device: torch.device) -> tuple[float, float] | None:
    """(peak MiB during one call of step_fn, MiB allocated before it) on CUDA; None on CPU."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    fresh_peak_memory()
    held = torch.cuda.memory_allocated(device) / 2**20
    step_fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20, held


def bare_forward(
    model: Path, cfg: dict, emb: dict, autocast: str | None, rounds: int = 10
) -> float:
    """frames/s of the embed stage's forward alone: the run's backbone as the stage loads it,
    full batches of ready windows on the device, under the stage's autocast (`autocast`: the
    dtype's name as the stage reports it, None: fp32); each window stands for
    `window_stride` frames, as in the stage."""
    from twbyol.features import load_backbone

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone, _ = load_backbone(model, device)
    crop = cfg["crop"]
    x = torch.randn(
        emb["batch_size"], 1, crop["num_frames"], crop["crop_size"], crop["crop_size"]
    ).to(device)
    times = []
    with (
        torch.inference_mode(),
        torch.autocast(
            device.type,
            dtype=getattr(torch, autocast or "bfloat16"),
            enabled=autocast is not None,
        ),
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
    ap.add_argument(
        "--steps",
        type=int,
        default=STEADY_STEPS + WARM_STEPS,
        help=f"steps of each real run (default {STEADY_STEPS} + the {WARM_STEPS} warm-up steps "
        "its steady rate leaves out)",
    )
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
        "--peak-tflops",
        type=float,
        default=None,
        help="peak TFLOP/s of the precision the step runs in (default: PEAKS by card name)",
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
    write_index(frames_dir, clips)
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
    # the real run, once per place of the augmentation (the first into work/run); each with
    # its own peak memory (the statistics reset before it)
    effs = {}
    for k, mode in enumerate(a.augment_on):
        out = work / ("run" if k == 0 else f"run_{mode}")
        fresh_peak_memory()
        effs[mode] = train(TrainConfig.from_dict({**cfg, "augment_on": mode, "out_dir": str(out)}))
        label = "efficiency.json:" if k == 0 else f"efficiency.json ({mode} augmentation):"
        print(f"augment_on {mode}:", label, json.dumps(effs[mode]), flush=True)
    eff = effs[a.augment_on[0]]
    fresh_peak_memory()
    bare = bare_steps(cfg, per_gpu, a.bare_steps, a.compile, a.peak_tflops)
    steady_steps = max(a.steps - WARM_STEPS, 0)
    # a loader-bound run's steady clock starts with up to workers x prefetch_factor (2)
    # batches already queued: it reads up to steady / (steady - queued) x fast
    queued = 2 * cfg["num_workers"]
    bound = (
        f"; a loader-bound rate reads at most {steady_steps / (steady_steps - queued):.2f}x "
        f"fast from the {queued} batches its workers can queue before the clock starts"
        if cfg["num_workers"] and steady_steps > queued
        else ""
    )
    for mode, e_ in effs.items():
        steady = e_["steady_samples_per_s"] or float("nan")
        n = e_.get("steady_steps", steady_steps)
        print(
            f"real run, augment_on {mode}: {steady:.1f} clips/s over its last {n} "
            f"steps (after {WARM_STEPS} warm-up steps) = {steady / bare:.2f} x the bare "
            f"step's {bare:.1f} clips/s (target >= 0.9){bound}; {e_['samples_per_s']:.1f} "
            f"clips/s with its start-up; peak {e_['peak_mem_mb']:,.0f} MiB "
            f"({e_['peak_mem_kind']})",
            flush=True,
        )

    emb = EmbedConfig.from_dict(embedding_config(e)).to_dict()
    fresh_peak_memory()
    info = embed(
        str(work / "run" / "model.pt"),
        str(frames_dir),
        str(frames_dir / "index.tsv"),
        str(work / "embedding.npy"),
        str(work / "projection.npz"),
        EmbedConfig(**emb),
    )

    # under the stage's own autocast (it follows the run's precision; older stages reported
    # none and ran bf16 on GPUs)
    amp = info.get("autocast", "bfloat16" if torch.cuda.is_available() else None)
    forward = bare_forward(work / "run" / "model.pt", cfg, emb, amp)
    print(
        f"embed stage {info['frames_per_s']:,.0f} frames/s = "
        f"{info['frames_per_s'] / forward:.2f} x the bare forward's {forward:,.0f} frames/s "
        f"(autocast {amp or 'none: fp32'}, batches of {emb['batch_size']} windows, a window "
        f"every {emb['window_stride']} "
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
