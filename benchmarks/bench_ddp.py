"""Multi-process training steps of the study's methods through the real training loop (DDP).

    torchrun --standalone --nproc_per_node N benchmarks/bench_ddp.py --method byol
        [--method byol moco_v3 time_contrast] [--experiment mabe22] [--steps 50]
        [--per-gpu-batch 16] [--backend nccl|gloo] [--json OUT]

    on a CPU: torchrun --standalone --nproc_per_node 2 benchmarks/bench_ddp.py --backend gloo \\
        --backbone tiny --crop-size 32 --frame-size 40 --per-gpu-batch 4 --num-workers 0

For each method, the experiment's run of it (byol: the study's proposed run; else the first
run of that method) with its resolved config (twbyol.experiment.run_config), changed only in
length, in batch (`--per-gpu-batch` clips per process), in paths and in what is named on the
command line, is trained by the pipeline's own `twbyol.train.train` on a folder of noise
frames at the dataset's frame size (content does not change the timings): DDP over the
processes, SyncBatchNorm on GPUs, the augmentation where the config puts it, the loop's sync
points. The loop's steps are watched through `twbyol.train.train_step` (wrapped, unchanged):
`--steps` steps are measured after the first WARM_STEPS (the loop's own warm-up), the clock
started and stopped with the device synchronised, up to the start of the run's last step
(so neither start-up nor the epoch-end checkpoint is in them). Prints per method:

- steps/s and samples/s (global: every process's clips) of the slowest process;
- host-device synchronisations per step: on CUDA, the warnings torch raises for each
  synchronising call while `torch.cuda.set_sync_debug_mode("warn")` is on over the measured
  steps (on the CPU: n/a);
- collectives per step, by name: the package's (`twbyol.distributed.calls`, where that module
  has the counter), every call made through `torch.distributed` by anyone (the package,
  DDP's buffer broadcast, SyncBatchNorm's statistics; counted by wrapping its collectives),
  and DDP's gradient all-reduce buckets (its reducer calls the backend directly: the bucket
  count per backward, from DDP's own logging data); each with whether every process issued
  the same.

With `--steps` a multiple of the loop's `sync_every`, the per-step figures include its sync
points at their share. Asserts nothing; `--json` writes every process's figures.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gpu_run import write_index  # noqa: E402

import twbyol.train as train_module  # noqa: E402
from twbyol.experiment import run_config  # noqa: E402

SYNC_WARNING = "synchronizing CUDA operation"  # torch's set_sync_debug_mode("warn") message
# torch.distributed's collectives (those this torch has are wrapped while counting)
COLLECTIVES = (
    "all_reduce",
    "all_reduce_coalesced",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_single",
    "_all_gather_base",
    "all_gather_object",
    "all_gather_coalesced",
    "broadcast",
    "broadcast_object_list",
    "_broadcast_coalesced",
    "reduce",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "_reduce_scatter_base",
    "all_to_all",
    "all_to_all_single",
    "gather",
    "gather_object",
    "scatter",
    "scatter_object_list",
    "barrier",
)


def package_calls() -> Counter | None:
    """twbyol.distributed.calls (collective name -> times issued), or None where the package
    has no such counter."""
    try:
        import twbyol.distributed as package
    except ImportError:
        return None
    calls = getattr(package, "calls", None)
    return calls if isinstance(calls, Counter) else None


class TorchCollectives:
    """Counts every call made through torch.distributed's collectives while installed (the
    wrappers look the name up at call time, as callers of `dist.<name>` do)."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self._saved: dict = {}

    def __enter__(self) -> TorchCollectives:
        for name in COLLECTIVES:
            fn = getattr(dist, name, None)
            if fn is None:
                continue
            self._saved[name] = fn

            def counted(*args, _fn=fn, _name=name, **kwargs):
                self.calls[_name] += 1
                return _fn(*args, **kwargs)

            setattr(dist, name, counted)
        return self

    def __exit__(self, *exc) -> None:
        for name, fn in self._saved.items():
            setattr(dist, name, fn)
        self._saved.clear()


def ddp_buckets(online) -> int | None:
    """How many gradient buckets a DDP module all-reduces per backward (None: not DDP)."""
    if not isinstance(online, torch.nn.parallel.DistributedDataParallel):
        return None
    data = online._get_ddp_logging_data()
    sizes = str(data.get("rebuilt_bucket_sizes") or data.get("bucket_sizes") or "")
    return len([s for s in sizes.split(",") if s.strip()]) or None


class StepWatch:
    """Wraps twbyol.train.train_step: opens the measured window at the call of step
    `start`, closes it at the call of step `stop` (so it holds steps start .. stop - 1 whole,
    the loop's work between them included), and counts in it: time (device synchronised at
    both ends), host-device syncs (CUDA), collectives (package and torch.distributed) and the
    steps that ran a backward."""

    def __init__(self, start: int, stop: int, device: torch.device, torch_calls: Counter):
        self.start, self.stop, self.device = start, stop, device
        self.torch_calls = torch_calls
        self.original = train_module.train_step
        self.signature = inspect.signature(self.original)
        self.open = False
        self.seen: list[int] = []
        self.result: dict | None = None
        self.backward_steps = 0
        self.buckets: int | None = None
        self.caught: list | None = None  # (main thread?, message) of each warning

    def _snapshot(self) -> tuple[Counter, Counter]:
        return Counter(package_calls() or {}), Counter(self.torch_calls)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _open(self, online) -> None:
        self._sync()
        self.buckets = ddp_buckets(online)
        self.before = self._snapshot()
        self.warn_mark = len(self.caught)
        self.t0 = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        self.open = True

    def _close(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
        self._sync()
        seconds = time.perf_counter() - self.t0
        self.open = False
        pkg, tch = self._snapshot()
        syncs = None
        if self.device.type == "cuda":
            # the training thread's (the autograd engine replays its workers' warnings
            # there); a loader's pin-memory thread waits for nothing the step waits for
            syncs = sum(main and SYNC_WARNING in msg for main, msg in self.caught[self.warn_mark :])
        self.result = {
            "seconds": seconds,
            "steps": self.stop - self.start,
            "syncs": syncs,
            "package_calls": None if package_calls() is None else dict(pkg - self.before[0]),
            "torch_calls": dict(tch - self.before[1]),
            "ddp_buckets": self.buckets,
            "backward_steps": self.backward_steps,
        }

    def __call__(self, *args, **kwargs):
        bound = self.signature.bind(*args, **kwargs)
        step = int(bound.arguments["step"])
        self.seen.append(step)
        if step == self.start:
            self._open(bound.arguments.get("online"))
        elif step == self.stop and self.open:
            self._close()
        out = self.original(*args, **kwargs)
        if self.open and out[0] is not None:
            self.backward_steps += 1
        return out


def noise_frames(folder: Path, n_clips: int, n_frames: int, size: int) -> None:
    """{clip}.npy uint8 noise frames and index.tsv, as the frames stage writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n_clips):
        clip_id = f"noise{i:03d}"
        np.save(folder / f"{clip_id}.npy", rng.integers(0, 256, (n_frames, size, size), np.uint8))
        clips.append((clip_id, n_frames))
    write_index(folder, clips, source="noise")


def run_of(e: dict, method: str) -> str:
    """The experiment's run of `method`: the study's proposed run if it is one, else the
    first in its runs."""
    proposed = e.get("study", {}).get("proposed")
    if proposed and e["runs"].get(proposed, {}).get("method") == method:
        return proposed
    for run, r in e["runs"].items():
        if r.get("method") == method:
            return run
    raise SystemExit(f"experiment has no run of method {method!r}")


def per_step(counts: dict | None, steps: int) -> dict | None:
    return None if counts is None else {k: v / steps for k, v in sorted(counts.items()) if v}


def run_method(a, e: dict, method: str, work: Path, rank: int, world: int) -> dict:
    """One method's run; returns this process's figures."""
    from twbyol.train import WARM_STEPS, TrainConfig

    run = a.run or run_of(e, method)
    cfg = run_config(a.experiment, e, run, 0)
    per_gpu = a.per_gpu_batch or cfg["batch_size"] // a.gpus_in_config
    total = WARM_STEPS + a.steps + 1  # the last step closes the window
    cfg.update(
        epochs=1,
        warmup_epochs=0,
        samples_per_epoch=per_gpu * world * total,
        batch_size=per_gpu * world,
        checkpoint_every=0,
        log_every=0,
        out_dir=str(work / f"run_{method}"),
        frames_dir=str(work / "frames"),
        index=str(work / "frames" / "index.tsv"),
    )
    if a.backbone:
        cfg["backbone"] = {"name": a.backbone}
    if a.crop_size:
        cfg["crop"] = {**cfg["crop"], "crop_size": a.crop_size}
    if a.num_workers >= 0:
        cfg["num_workers"] = a.num_workers
    tc = TrainConfig.from_dict(cfg)
    device = torch.device("cuda", torch.cuda.current_device()) if a.cuda else torch.device("cpu")

    caught: list[tuple[bool, str]] = []
    main_thread = threading.main_thread()

    def record(message, *args, **kwargs) -> None:
        caught.append((threading.current_thread() is main_thread, str(message)))

    with TorchCollectives() as tch, warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record  # restored by catch_warnings
        watch = StepWatch(WARM_STEPS, WARM_STEPS + a.steps, device, tch.calls)
        watch.caught = caught
        train_module.train_step = watch
        try:
            train_module.train(tc)
        finally:
            train_module.train_step = watch.original
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
    others = sorted({m.splitlines()[0][:200] for _, m in caught if SYNC_WARNING not in m})
    for msg in others:  # the run's other warnings, not lost to the recorder
        print(f"rank {rank} warning: {msg}", file=sys.stderr, flush=True)
    if watch.result is None:
        raise RuntimeError(
            f"{method}: twbyol.train's loop called train_step at steps {watch.seen[:3]}.."
            f"{watch.seen[-3:]}, never at {watch.start} and {watch.stop}: the loop changed; "
            "update this script's StepWatch"
        )
    r = watch.result
    return {
        "method": method,
        "run": run,
        "rank": rank,
        "world": world,
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "backbone": tc.backbone.get("name"),
        "precision": tc.precision,
        "augment_on": tc.augment_on,
        "sync_every": getattr(tc, "sync_every", None),
        "per_rank_batch": per_gpu,
        "warm_steps": WARM_STEPS,
        "steps": r["steps"],
        "seconds": r["seconds"],
        "steps_per_s": r["steps"] / r["seconds"],
        "syncs_per_step": None if r["syncs"] is None else r["syncs"] / r["steps"],
        "package_calls_per_step": per_step(r["package_calls"], r["steps"]),
        "torch_calls_per_step": per_step(r["torch_calls"], r["steps"]),
        "ddp_bucket_all_reduces_per_step": (
            None
            if r["ddp_buckets"] is None
            else r["ddp_buckets"] * r["backward_steps"] / r["steps"]
        ),
    }


def fmt(counts: dict | None) -> str:
    if counts is None:
        return "n/a (twbyol.distributed has no `calls` counter)"
    return ", ".join(f"{k} {v:.2f}" for k, v in counts.items()) or "none"


def report(parts: list[dict]) -> dict:
    """The method's line from every process's figures: rates of the slowest process, counts
    of rank 0 with whether every rank had the same."""
    r0 = parts[0]
    slowest = max(p["seconds"] for p in parts)
    steps_per_s = r0["steps"] / slowest
    out = {
        **{k: r0[k] for k in ("method", "run", "world", "backend", "device", "backbone")},
        **{k: r0[k] for k in ("precision", "augment_on", "sync_every", "per_rank_batch")},
        "warm_steps": r0["warm_steps"],
        "steps": r0["steps"],
        "steps_per_s": steps_per_s,
        "samples_per_s": steps_per_s * r0["per_rank_batch"] * r0["world"],
        "ranks": parts,
    }
    for key in (
        "syncs_per_step",
        "package_calls_per_step",
        "torch_calls_per_step",
        "ddp_bucket_all_reduces_per_step",
    ):
        out[key] = r0[key]
        out[key.replace("_per_step", "_same_on_every_rank")] = all(p[key] == r0[key] for p in parts)
    return out


def print_report(m: dict) -> None:
    same = {True: "same on every rank", False: "DIFFER between ranks (see --json)"}
    syncs = m["syncs_per_step"]
    print(
        f"{m['method']} ({m['run']}, {m['backbone']}, {m['precision']}, augment_on "
        f"{m['augment_on']}): {m['world']} process(es) x {m['per_rank_batch']} clips, "
        f"{m['backend'] or 'no process group'} on {m['device']}; {m['steps']} steps timed "
        f"after {m['warm_steps']}: "
        f"{m['steps_per_s']:.3f} steps/s = {m['samples_per_s']:.1f} clips/s "
        f"(the slowest process)",
        flush=True,
    )
    print(
        "  host-device syncs per step: "
        + (
            "n/a (not on CUDA)"
            if syncs is None
            else f"{syncs:.2f}, {same[m['syncs_same_on_every_rank']]}"
        ),
        flush=True,
    )
    every = m["sync_every"]
    print(
        f"  collectives per step, twbyol.distributed.calls: {fmt(m['package_calls_per_step'])}"
        + (
            f", {same[m['package_calls_same_on_every_rank']]}"
            if m["package_calls_per_step"] is not None
            else ""
        )
        + (f" (the loop's sync point every {every} steps at its share)" if every else ""),
        flush=True,
    )
    buckets = m["ddp_bucket_all_reduces_per_step"]
    print(
        f"  every torch.distributed call per step (package, DDP buffers, SyncBatchNorm): "
        f"{fmt(m['torch_calls_per_step'])}, {same[m['torch_calls_same_on_every_rank']]}; "
        f"DDP gradient bucket all-reduces per step: "
        + ("n/a (not DDP)" if buckets is None else f"{buckets:.2f}"),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--experiment", default="mabe22")
    ap.add_argument(
        "--method",
        nargs="+",
        default=["byol", "moco_v3", "time_contrast"],
        help="methods to run, one after the other in the same processes",
    )
    ap.add_argument("--run", default="", help="this run instead of the method's (one method)")
    ap.add_argument(
        "--steps",
        type=int,
        default=50,
        help="measured steps (after the loop's warm-up); a multiple of sync_every counts "
        "its sync points at their share",
    )
    ap.add_argument(
        "--per-gpu-batch",
        type=int,
        default=0,
        help="clips per process and step; 0: the experiment's batch_size / its GPUs",
    )
    ap.add_argument(
        "--backend",
        choices=["auto", "nccl", "gloo"],
        default="auto",
        help="process group backend; auto: nccl on GPUs, gloo on the CPU",
    )
    ap.add_argument("--backbone", default="", help="backbone name instead of the experiment's")
    ap.add_argument("--crop-size", type=int, default=0, help="0: the experiment's")
    ap.add_argument("--frame-size", type=int, default=0, help="noise frames; 0: the dataset's")
    ap.add_argument("--clips", type=int, default=8, help="noise clips")
    ap.add_argument("--frames", type=int, default=300, help="frames per noise clip")
    ap.add_argument("--num-workers", type=int, default=-1, help="-1: the experiment's")
    ap.add_argument("--work", default="", help="folder for frames and runs (default: temp)")
    ap.add_argument("--json", default="", help="write every method's figures here (rank 0)")
    a = ap.parse_args()
    if a.run and len(a.method) > 1:
        ap.error("--run names one run: give one --method")

    if "RANK" not in os.environ:  # a single process without torchrun
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    # the device is the training loop's choice (its GPU where CUDA works); the process group
    # is joined here, on the backend asked for, and the loop finds it joined
    a.cuda = torch.cuda.is_available()
    if a.cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    backend = {"auto": "nccl" if a.cuda else "gloo"}.get(a.backend, a.backend)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend)

    e = yaml.safe_load(Path(a.config).read_text())["experiments"][a.experiment]
    res = e.get("resources", {})
    a.gpus_in_config = int(res.get("gpus_per_node", 1)) * int(res.get("nodes", 1))
    ds = e["datasets"][e["pretrain_dataset"]]
    size = a.frame_size or int(ds["frames"]["size"])

    # one folder for every process: rank 0 makes it and writes the frames
    work = [str(Path(a.work or tempfile.mkdtemp(prefix="twbyol-ddp-bench-")))]
    if world > 1:
        dist.broadcast_object_list(work, src=0)
    work = Path(work[0])
    if rank == 0:
        noise_frames(work / "frames", a.clips, a.frames, size)
    if world > 1:
        dist.barrier()

    results = []
    for method in a.method:
        mine = run_method(a, e, method, work, rank, world)
        parts = [mine]
        if world > 1:
            parts = [None] * world
            dist.all_gather_object(parts, mine)
        if rank == 0:
            m = report(parts)
            results.append(m)
            print_report(m)
    if rank == 0 and a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
