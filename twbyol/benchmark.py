"""Stage `step-benchmark`: two runs' training steps timed side by side, in one process.

    twbyol step-benchmark --configs '{"twbyol_tau30": {...}, "byol_uniform": {...}}' \\
        --proposed twbyol_tau30 --baseline byol_uniform \\
        --out results/smoke/stats/step_benchmark.json

Why: criterion 4 asks whether TW-BYOL costs at most 5 % more GPU-hours than rho-BYOL. Runs
trained on a CPU record 0 GPU-hours, and their wall times on a machine shared with other
jobs measure its load (the smoke baseline's: 263 +- 131 s over seeds), not the method. This
stage builds both runs' models from their resolved configs (twbyol.experiment.run_config:
backbone, heads, weighting, optimiser, precision), gives them one random batch in the
experiment's crop shape, and times their training steps (forward, finiteness check,
backward, optimiser step, EMA update, as twbyol/train.py runs them) interleaved after a
warm-up, the order alternating (A B, B A, ...), so that a drift in the machine's load hits
both alike. Data loading is not timed: both runs read the same crops through the same loader.

Output (JSON): per run its step times, their median and the clips/s it gives (a clip = rho
crops), and on a GPU the peak memory of one step; `comparison`: the median of the per-step
time ratios proposed / baseline with its distribution-free 95 % CI (binomial order
statistics) and the ratio of the median times. benchmarks/bench_train_step.py shares the
timing core (step_timer, interleaved, median_ratio, peak_mb).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
from scipy import stats

from twbyol import io
from twbyol.allocator import keep_large_allocations
from twbyol.hardware import autocast_dtype
from twbyol.methods import build_method
from twbyol.models.backbones import channels_last_wanted, to_channels_last
from twbyol.optim import build_optimizer
from twbyol.train import TrainConfig

# Settings by backbone: the smoke experiment's tiny backbone takes ~0.16 s a step at batch 8
# on one CPU thread (0.24 s at 16: mostly fixed cost), so 40 step pairs cost ~15 s and give a
# 95 % CI of about +-4 % on a loaded 2-core machine; a Slow-R50 step on a CPU takes seconds.
DEFAULTS = {"tiny": {"steps": 40, "batch": 8}}
OTHER = {"steps": 10, "batch": 2}
WARMUP = 3  # untimed rounds first: allocator, autotuning, first-call overheads


def default_settings(backbone: str) -> dict:
    """{"steps", "batch"} for a backbone name (DEFAULTS, else OTHER)."""
    return dict(DEFAULTS.get(backbone, OTHER))


# ---- the timing core ------------------------------------------------------------------------


def step_timer(step_fn: Callable[[], object], device: torch.device) -> Callable[[], float]:
    """`step_fn` wrapped to return its duration in seconds (CUDA synchronised around it)."""

    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        step_fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t

    return run


def peak_mb(step_fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak allocated GPU memory of one call of `step_fn` alone (MiB); None on CPU."""
    if device.type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    step_fn()
    return torch.cuda.max_memory_allocated(device) / 2**20


def interleaved(
    timers: dict[str, Callable[[], float]], steps: int, warmup: int = WARMUP
) -> dict[str, list[float]]:
    """`warmup` untimed rounds, then `steps` rounds in each of which every timer runs once, the
    order rotating by one from round to round (A B, B A for two), so that neither always runs
    first. Returns {name: [seconds of round 0, 1, ...]}: round i of two runs is a pair."""
    names = list(timers)
    for _ in range(warmup):
        for name in names:
            timers[name]()
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(steps):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(timers[name]())
    return out


def median_ratio(a: list[float], b: list[float], level: float = 0.95) -> dict:
    """Median of the paired ratios a_i / b_i and its distribution-free confidence interval.

    The interval is [r_(k), r_(n+1-k)] of the sorted ratios, k the largest with
    2 P(Bin(n, 1/2) <= k - 1) <= 1 - level: it holds the true median with probability
    >= level whatever the ratios' distribution (`ci_level` is that exact coverage). With too
    few pairs for that level (n < 6 at 95 %) the bounds are NaN.
    Returns {"median_ratio", "ci95", "ci_level", "ratio_of_medians", "n_pairs"}.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"median_ratio: {len(a)} and {len(b)} times cannot be paired")
    r = sorted(x / y for x, y in zip(a, b))
    n = len(r)
    k = 0
    while k + 1 <= n // 2 and 2 * stats.binom.cdf(k, n, 0.5) <= 1 - level:
        k += 1  # r_(k+1) can still be the lower bound
    nan = float("nan")
    return {
        "median_ratio": statistics.median(r),
        "ci95": [r[k - 1], r[n - k]] if k else [nan, nan],
        "ci_level": float(1 - 2 * stats.binom.cdf(k - 1, n, 0.5)) if k else nan,
        "ratio_of_medians": statistics.median(a) / statistics.median(b),
        "n_pairs": n,
    }


# ---- the training step of a run -------------------------------------------------------------


def training_step(
    cfg_dict: dict,
    crops: torch.Tensor,
    centres: torch.Tensor,
    device: torch.device,
    compile_online: bool = False,
    lars_foreach: bool | None = None,
) -> tuple[Callable[[], None], str | None]:
    """One run's training step on a fixed batch, built from its resolved config as
    twbyol.train builds it (model in the run's memory format, optimiser at the scaled lr,
    autocast, grad scaler, EMA). crops: (B, rho, 1, T, H, W); centres: (B, rho).
    `compile_online`: the online network through torch.compile (measured by
    benchmarks/bench_gpu_run.py; training does not compile); `lars_foreach`: LARS's step
    form (None: as training, twbyol.optim.LARS.step). Returns (step, autocast dtype
    or None)."""
    cfg = TrainConfig.from_dict(cfg_dict)
    if cfg.method in ("supervised", "random_init"):
        raise ValueError(
            f"run {cfg.run_id}: step-benchmark times self-supervised steps, not {cfg.method}"
        )
    torch.manual_seed(cfg.seed)
    model = build_method(cfg).to(device).train()
    if channels_last_wanted(cfg.channels_last, device):
        to_channels_last(model)
    online = torch.compile(model.online) if compile_online else model.online
    optimizer = build_optimizer(
        model.online,
        cfg.optimizer,
        cfg.lr * cfg.batch_size / 256,
        cfg.weight_decay,
        cfg.lars_momentum,
        cfg.lars_nesterov,
        lars_foreach,
    )
    amp_dtype = autocast_dtype(cfg.precision, cfg.cpu_bf16, device)
    use_amp = amp_dtype is not None
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    targets = torch.zeros(*crops.shape[:2], 0)  # (B, rho, 0): no labels, on the host as centres
    bad = torch.zeros((), dtype=torch.bool, device=device)

    def step() -> None:
        nonlocal bad
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=use_amp):
            loss, _ = model(crops, centres, online=online, targets=targets)
        bad = bad | ~torch.isfinite(loss.detach())  # as train.py: read after the steps
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss * cfg.loss_scale if cfg.loss_scale != 1.0 else loss).backward()
        scaler.step(optimizer)
        scaler.update()
        model.update_target(cfg.ema_base)

    def check() -> None:
        if bool(bad):
            raise FloatingPointError(f"run {cfg.run_id}: non-finite loss in the step benchmark")

    step.check = check
    return step, (str(amp_dtype).removeprefix("torch.") if use_amp else None)


def step_benchmark(
    configs: dict[str, dict],
    proposed: str,
    baseline: str,
    steps: int | None = None,
    batch: int | None = None,
    warmup: int = WARMUP,
    device: torch.device | None = None,
) -> dict:
    """Time `proposed`'s and `baseline`'s training steps (configs: {run: resolved config})
    side by side; steps and batch default to default_settings of the proposed run's backbone,
    the batch capped at its training batch. Returns the step_benchmark.json record."""
    for run in (proposed, baseline):
        if run not in configs:
            raise ValueError(f"--configs has no run {run!r} (has: {', '.join(configs)})")
    t0 = time.perf_counter()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        keep_large_allocations()  # as training on a CPU: both runs' steps alike
    ref = configs[proposed]
    settings = default_settings(ref["backbone"]["name"])
    steps = steps or settings["steps"]
    batch = batch or min(settings["batch"], int(ref.get("batch_size", settings["batch"])))
    crop = ref.get("crop", {})
    rho, frames, size = crop.get("rho", 2), crop.get("num_frames", 8), crop.get("crop_size", 224)
    g = torch.Generator().manual_seed(0)
    crops = torch.randn(batch, rho, 1, frames, size, size, generator=g).to(device)
    # dt within 10 s at 30 fps; on the host, pinned, as the training loop's batches
    centres = torch.rand(batch, rho, generator=g) * 300
    centres = centres.pin_memory() if device.type == "cuda" else centres
    built = {
        run: training_step(configs[run], crops, centres, device) for run in (proposed, baseline)
    }
    timers = {run: step_timer(fn, device) for run, (fn, _) in built.items()}
    times = interleaved(timers, steps, warmup)
    for fn, _ in built.values():
        fn.check()
    runs = {}
    for run, (fn, amp) in built.items():
        cfg, med = configs[run], statistics.median(times[run])
        runs[run] = {
            "method": cfg.get("method"),
            "weighting": cfg.get("weighting"),
            "tau": cfg.get("tau"),
            "autocast": amp,
            "median_s": med,
            "mean_s": statistics.fmean(times[run]),
            "clips_per_s": batch / med,
            "peak_mem_mb": peak_mb(fn, device),
            "times_s": times[run],
        }
    return {
        "proposed": proposed,
        "baseline": baseline,
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "backbone": ref["backbone"],
        "crop": {"rho": rho, "num_frames": frames, "crop_size": size},
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "runs": runs,
        "comparison": median_ratio(times[proposed], times[baseline]),
        "wall_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--configs",
        required=True,
        help="{run: resolved run config} (inline JSON or a file) of both runs",
    )
    ap.add_argument("--proposed", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument(
        "--steps", type=int, help="timed step pairs (default by backbone: tiny 40, others 10)"
    )
    ap.add_argument(
        "--batch",
        type=int,
        help="clips per step (default by backbone: tiny 8, others 2; at most the "
        "training batch): the weighting's cost grows with the batch as the step's does",
    )
    ap.add_argument("--warmup", type=int, default=WARMUP, help="untimed rounds first")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--out", required=True, help="step_benchmark.json to write")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = None if a.device == "auto" else torch.device(a.device)
    res = step_benchmark(
        io.json_arg(a.configs), a.proposed, a.baseline, a.steps, a.batch, a.warmup, device
    )
    io.write_json(a.out, res)
    c = res["comparison"]
    for run, r in res["runs"].items():
        print(
            f"{run:<24} {r['median_s'] * 1e3:8.1f} ms/step (median of {res['steps']}) = "
            f"{r['clips_per_s']:7.1f} clips/s"
        )
    lo, hi = c["ci95"]
    print(
        f"median step-time ratio {a.proposed} / {a.baseline} = {c['median_ratio']:.3f}, "
        f"95 % CI [{lo:.3f}, {hi:.3f}] ({res['device']}, batch {res['batch']}, "
        f"{res['wall_s']:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
