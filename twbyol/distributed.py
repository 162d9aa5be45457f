"""Every torch.distributed call of the package, in one place that keeps NCCL's rules.

NCCL serves CUDA tensors only, and only contiguous ones; gloo serves CPU tensors and copies a
non-contiguous one silently, so a collective that CI (gloo, CPU) runs without complaint can
crash on the first 4-GPU run (a CPU float64 tensor all-reduced at an epoch's end; a strided
slice of MoCo's keys all-gathered). Each collective here hands the backend its tensor on the
training device (`device()`), contiguous, whatever the caller passed; and returns its result
there. A test (tests/test_distributed.py) fails if any other module of the package uses
torch.distributed, so these rules hold by construction.

Host-side agreement (is a batch worth a step? BYOL decides from the crops' frame gaps, which
the loader gives on the host) goes through `all_reduce_host`, over a gloo group of the same
ranks: a CPU tensor, no wait for the device. Everything else runs on the device.

`calls` counts the collectives issued by name (benchmarks report them per step; the tests
check that every rank issues the same ones).
"""

from __future__ import annotations

import os
from collections import Counter

import torch
import torch.distributed as dist

calls: Counter = Counter()  # collective name -> times issued by this process
_state: dict = {"device": None, "host_group": None}

# (the backend name that init_process_group gets for each device type)
BACKENDS = {"cuda": "nccl", "cpu": "gloo"}


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_distributed() -> bool:
    return _initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if _initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if _initialized() else 1


def backend() -> str | None:
    return dist.get_backend() if _initialized() else None


def device() -> torch.device:
    """The training device the collectives run on: the one `init` was given; for a process
    group started elsewhere (tests), the current CUDA device under NCCL, else the CPU."""
    if _state["device"] is not None:
        return _state["device"]
    if backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def init(dev: torch.device) -> None:
    """Join the process group of the environment (RANK, WORLD_SIZE, MASTER_ADDR/PORT, as
    submitit's TorchDistributedEnvironment or torchrun export them) when WORLD_SIZE > 1: NCCL
    for a CUDA device, gloo for the CPU; and a gloo group of the same ranks for host-side
    agreement. Collectives then run on `dev`."""
    _state["device"] = dev
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(BACKENDS[dev.type])
    if is_distributed():
        _host_group()


def destroy() -> None:
    if _initialized():
        dist.destroy_process_group()
    _state.update(device=None, host_group=None)


def _host_group():
    """A gloo group over every rank (None: the default group already is gloo). Created on
    first use when `init` did not run; every rank reaches that first use at the same point,
    as `new_group` requires."""
    if backend() == "gloo":
        return None
    if _state["host_group"] is None:
        _state["host_group"] = dist.new_group(backend="gloo")
    return _state["host_group"]


def _handoff(t: torch.Tensor) -> torch.Tensor:
    """What the backend gets: `t` on the training device, contiguous (a copy where needed)."""
    return t.to(device(), non_blocking=True).contiguous()


def all_reduce(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """The element-wise sum (or "max", "min") over ranks of `t`, on the training device; `t`
    itself is not changed. Without a process group: `t` on the training device."""
    x = _handoff(t)
    if x is t:
        x = x.clone()
    if is_distributed():
        calls["all_reduce"] += 1
        dist.all_reduce(x, op=getattr(dist.ReduceOp, op.upper()))
    return x


def all_reduce_host(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """As `all_reduce`, for a small CPU tensor of host-side values, over the gloo group: the
    host does not wait for the device."""
    x = t.detach().cpu().contiguous().clone()
    if is_distributed():
        calls["all_reduce_host"] += 1
        dist.all_reduce(x, op=getattr(dist.ReduceOp, op.upper()), group=_host_group())
    return x


def all_gather(x: torch.Tensor) -> torch.Tensor:
    """Every rank's `x` (equal shapes), concatenated on dim 0 in rank order; no gradient."""
    if not is_distributed():
        return x
    h = _handoff(x.detach())
    parts = [torch.empty_like(h) for _ in range(world_size())]
    calls["all_gather"] += 1
    dist.all_gather(parts, h)
    return torch.cat(parts)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank the sum over ranks of the gradient of its
    own rows: one all-reduce of the gathered gradient (gloo has no reduce-scatter; the
    embeddings gathered are small). Every rank that ran the forward must run the backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rows = x.shape[0]
        return all_gather(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        calls["all_gather_backward"] += 1
        total = all_reduce(grad)
        r = rank()
        return total[r * ctx.rows : (r + 1) * ctx.rows].to(grad.device)


def all_gather_grad(x: torch.Tensor) -> torch.Tensor:
    """As `all_gather`, with the gradient flowing back to every rank's own `x`."""
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


def all_gather_object(obj) -> list:
    """Every rank's picklable `obj`, in rank order."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size()
    calls["all_gather_object"] += 1
    dist.all_gather_object(out, obj, group=_host_group())
    return out


def barrier() -> None:
    if is_distributed():
        calls["barrier"] += 1
        dist.barrier(group=_host_group())
