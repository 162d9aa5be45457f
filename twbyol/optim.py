"""Optimisers and schedules of the pretraining recipes."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al. 2017) in the form
    rho-BYOL trained with (SlowFast's `slowfast/models/optimizer.py`: torch SGD, dampening 0,
    wrapped by a LARS with trust coefficient `eta`, eps 1e-8, no clipping).

    For a weight w with gradient g (both norms non-zero) the direction given to momentum is
        trust * (g + wd * w),   trust = eta * ||w|| / (||g|| + wd * ||w|| + eps);
    where either norm is zero, g unchanged (neither decay nor scaling), as there. Parameters
    of groups flagged `lars_exclude` (biases and norm layers) get neither weight decay nor the
    trust ratio. Momentum follows torch's SGD: buf <- momentum * buf + d (buf = d at the first
    step), step = d + momentum * buf with `nesterov` (SlowFast's SOLVER.NESTEROV default) or
    buf without (BYOL's LARS), p <- p - lr * step.
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        eta: float = 0.001,
        eps: float = 1e-8,
        nesterov: bool = False,
        foreach: bool | None = None,
    ) -> None:
        self.foreach = foreach
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                weight_decay=weight_decay,
                eta=eta,
                eps=eps,
                nesterov=nesterov,
                lars_exclude=False,
            ),
        )

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        """`step_foreach` where `foreach` says so (None: when every parameter is on a GPU,
        torch's own optimisers' default), else `step_reference`."""
        foreach = self.foreach
        if foreach is None:
            foreach = all(p.is_cuda for g in self.param_groups for p in g["params"])
        return self.step_foreach() if foreach else self.step_reference()

    @torch.no_grad()
    def step_foreach(self) -> None:
        """The update for every parameter of a group at once, in torch's multi-tensor
        (foreach) kernels: on a GPU ~10 launches a group instead of ~8 per parameter
        (Slow-R50: ~2,500 small kernels a step, each a Python call), with no host sync. The
        same operations per tensor as `step_reference`, to float rounding (tested). On a CPU
        torch runs foreach ops tensor by tensor and this form's temporaries cost more: a
        Slow-R50 step 174 vs 111 ms on 2 cores (2026-12-02), so a CPU takes the loop."""
        for g in self.param_groups:
            params = [p for p in g["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if g["lars_exclude"]:
                d = grads
            else:
                wd = g["weight_decay"]
                p_norm = torch.stack(torch._foreach_norm(params))
                g_norm = torch.stack(torch._foreach_norm(grads))
                ok = (p_norm > 0) & (g_norm > 0)
                trust = torch.where(ok, g["eta"] * p_norm / (g_norm + wd * p_norm + g["eps"]), 1.0)
                decay = torch.where(ok, wd, 0.0).to(p_norm)
                d = torch._foreach_add(grads, torch._foreach_mul(params, list(decay.unbind())))
                torch._foreach_mul_(d, list(trust.unbind()))
            # a first step's buffer starts at 0, so that momentum * 0 + d = d, the loop's
            # buf = d, and every buffer takes the same two kernels
            # (setdefault's default would be built for every parameter at every step)
            bufs = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                bufs.append(state["momentum_buffer"])
            torch._foreach_mul_(bufs, g["momentum"])
            torch._foreach_add_(bufs, d)
            steps = torch._foreach_add(d, bufs, alpha=g["momentum"]) if g["nesterov"] else bufs
            torch._foreach_add_(params, steps, alpha=-g["lr"])

    @torch.no_grad()
    def step_reference(self) -> None:
        """The same update parameter by parameter: the form the docstring states, kept as the
        reference the multi-tensor `step` is tested against."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if not g["lars_exclude"]:
                    p_norm, g_norm = torch.norm(p), torch.norm(d)
                    ok = (p_norm > 0) & (g_norm > 0)  # a tensor, so no host sync per parameter
                    wd = g["weight_decay"]
                    trust = torch.where(
                        ok,
                        g["eta"] * p_norm / (g_norm + wd * p_norm + g["eps"]),
                        torch.ones_like(p_norm),
                    )
                    d = d.add(p * torch.where(ok, wd, 0.0)).mul_(trust)
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = torch.clone(d).detach()
                else:
                    buf.mul_(g["momentum"]).add_(d)
                p.add_(d.add(buf, alpha=g["momentum"]) if g["nesterov"] else buf, alpha=-g["lr"])


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights with decay; biases and norm parameters (1-D) without (BYOL, DINO).
    The same split as SlowFast's for our models, whose norm parameters are all 1-D: there BN
    parameters get neither decay nor LARS, and LARS skips the other 1-D ones, whose group's
    decay it zeroes."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        dict(params=decay, weight_decay=weight_decay),
        dict(params=no_decay, weight_decay=0.0, lars_exclude=True),
    ]


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    nesterov: bool = False,
    foreach: bool | None = None,
) -> torch.optim.Optimizer:
    """`lars` (momentum and nesterov apply) or `adamw` (its own betas; they do not).
    `foreach`: LARS's multi-tensor step (None: on GPUs; see LARS.step)."""
    groups = param_groups(model, weight_decay)
    if name == "lars":
        return LARS(
            groups,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            nesterov=nesterov,
            foreach=foreach,
        )
    if name == "adamw":
        for g in groups:
            g.pop("lars_exclude", None)
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"training.optimizer: unknown {name!r}; expected 'lars' or 'adamw'")


def cosine_schedule(
    base: float,
    final: float,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start: float = 0.0,
    cosine_after_warmup: bool = True,
) -> np.ndarray:
    """Linear warm-up and cosine decay from `base` to `final`, one value per step, precomputed
    so that a resumed run continues on the same curve (DINO's `cosine_scheduler`).

    `cosine_after_warmup` (DINO, BYOL): the warm-up ramps from `warmup_start` to `base` and the
    cosine runs over the steps after it. Without (SlowFast's `lr_policy.py` with
    SOLVER.COSINE_AFTER_WARMUP False, rho-BYOL's recipe): the cosine runs over the whole
    schedule from step 0, and the warm-up ramps linearly from `warmup_start` to the cosine's
    value at its end, so the peak is a little below `base`. Step t is SlowFast's fractional
    epoch t / steps_per_epoch.
    Returns (total_steps,) float64.
    """
    if total_steps <= 0:
        raise ValueError(f"schedule needs at least one step, got {total_steps}")
    warmup_steps = min(warmup_steps, total_steps)
    offset = warmup_steps if cosine_after_warmup else 0

    def cosine(t: np.ndarray) -> np.ndarray:
        return final + 0.5 * (base - final) * (
            1 + np.cos(math.pi * (t - offset) / max(total_steps - offset, 1))
        )

    t = np.arange(total_steps, dtype=np.float64)
    sched = cosine(t)
    if warmup_steps:
        end = cosine(np.float64(warmup_steps))
        sched[:warmup_steps] = (
            t[:warmup_steps] * ((end - warmup_start) / warmup_steps) + warmup_start
        )
    assert len(sched) == total_steps, (len(sched), total_steps)
    return sched
