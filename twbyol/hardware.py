"""Which device a job runs on, and in which precision: one rule for train, embed and predict.

A job that SLURM gave GPUs must use them. With an NVIDIA driver too old for the CUDA build
torch was installed with, `torch.cuda.is_available()` is False (torch only warns), and a
4-GPU job would train for days on the node's CPUs with gloo; `pick_device` fails at once
instead, naming the driver and the build. A job given "GPUs" on a node without any NVIDIA
driver (a test cluster's GRES backed by plain files) runs on the CPU and says so on stderr.

Precision follows the run: a network trained in fp32 is embedded in fp32, one trained under
bf16 autocast is embedded under it, on a GPU and on a CPU alike (where bf16 runs only with
`cpu_bf16` on a CPU that computes it natively), so that probes fitted on one machine's
embeddings apply to another's.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import torch

# SLURM's variables for a job's or a step's GPUs (--gpus-per-node, --gres=gpu:N)
SLURM_GPU_VARS = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE")
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


def gpus_allocated(env: dict | None = None) -> str | None:
    """The scheduler's word that this process was given GPUs (the variable and its value),
    or None."""
    env = os.environ if env is None else env
    for name in SLURM_GPU_VARS:
        if env.get(name, "").strip() not in ("", "0"):
            return f"{name}={env[name]}"
    cvd = env.get("CUDA_VISIBLE_DEVICES", "").strip()
    if cvd not in ("", "-1", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={cvd}"
    return None


def nvidia_driver(path: Path = NVIDIA_DRIVER) -> str | None:
    """The loaded NVIDIA kernel driver's version line, or None where none is loaded."""
    try:
        return path.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None


def pick_device(local_rank: int = 0) -> torch.device:
    """This process's device: its GPU (local_rank modulo the visible ones) where CUDA works;
    the CPU where no GPU was given; an error where GPUs were given and a driver is loaded but
    CUDA does not work (never a silent CPU run)."""
    if torch.cuda.is_available():
        dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
        return dev
    given = gpus_allocated()
    if given:
        driver = nvidia_driver()
        build = f"torch {torch.__version__} built for CUDA {torch.version.cuda}"
        if driver is not None:
            raise RuntimeError(
                f"this job was given GPUs ({given}) but CUDA cannot be used: NVIDIA driver "
                f"'{driver}', {build}. A driver older than the build's CUDA needs is the usual "
                f"cause (torch's warning above says which); install the torch build for the "
                f"node's driver, or load a newer driver. Not falling back to the CPU."
            )
        print(
            f"note: this job was given GPUs ({given}) but no NVIDIA driver is loaded on "
            f"{os.uname().nodename}; running on the CPU",
            file=sys.stderr,
            flush=True,
        )
    return torch.device("cpu")


def autocast_dtype(precision: str, cpu_bf16: bool, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run's precision on `device`, None for fp32: on a GPU bf16 or
    fp16 as set; on a CPU only bf16, only with `cpu_bf16`, and only where the CPU computes
    bf16 natively (elsewhere it is emulated and slower than fp32)."""
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision: {precision!r}, expected fp32, bf16 or fp16")
    if device.type == "cuda":
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if not (cpu_bf16 and precision == "bf16"):
        return None
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    print("cpu_bf16: this CPU has no native bf16; running in fp32", file=sys.stderr, flush=True)
    return None


def run_autocast(run_config: dict, device: torch.device) -> torch.dtype | None:
    """`autocast_dtype` of a pretraining run's config (model.pt's): what embed and predict use
    with its backbone."""
    return autocast_dtype(
        run_config.get("precision", "fp32"), bool(run_config.get("cpu_bf16", False)), device
    )


def host_to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`t` on `device`; a host tensor is pinned first, so that the copy to a GPU is queued
    without the host waiting for the device (a copy from pageable memory waits)."""
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu" and not t.is_pinned():
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_peak_rss"
