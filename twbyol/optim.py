"""Optimisers and schedules of the pretraining recipes."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al. 2017), as in BYOL and
    rho-BYOL: parameters flagged `lars_exclude` (biases and norm layers) get neither weight
    decay nor the trust ratio, following BYOL's recipe (Grill et al. 2020, App. C)."""

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 1e-6,
                 eta: float = 0.001) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                                      lars_exclude=False))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if not g["lars_exclude"]:
                    d = d.add(p, alpha=g["weight_decay"])
                    p_norm, d_norm = torch.norm(p), torch.norm(d)
                    trust = torch.where((p_norm > 0) & (d_norm > 0), g["eta"] * p_norm / d_norm,
                                        torch.ones_like(p_norm))
                    d = d.mul(trust)
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = torch.clone(d).detach()
                else:
                    buf.mul_(g["momentum"]).add_(d)
                p.add_(buf, alpha=-g["lr"])


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights with decay; biases and norm parameters (1-D) without (BYOL, DINO)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay),
            dict(params=no_decay, weight_decay=0.0, lars_exclude=True)]


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay)
    if name == "lars":
        return LARS(groups, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        for g in groups:
            g.pop("lars_exclude", None)
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"training.optimizer: unknown {name!r}; expected 'lars' or 'adamw'")


def cosine_schedule(base: float, final: float, total_steps: int, warmup_steps: int = 0,
                    warmup_start: float = 0.0) -> np.ndarray:
    """Linear warm-up then cosine decay from `base` to `final`, one value per step (DINO's
    `cosine_scheduler`): precomputed so that a resumed run continues on the same curve."""
    if total_steps <= 0:
        raise ValueError(f"schedule needs at least one step, got {total_steps}")
    warmup_steps = min(warmup_steps, total_steps)
    warm = np.linspace(warmup_start, base, warmup_steps, endpoint=False)
    t = np.arange(total_steps - warmup_steps)
    cos = final + 0.5 * (base - final) * (1 + np.cos(math.pi * t / max(len(t), 1)))
    sched = np.concatenate([warm, cos])
    assert len(sched) == total_steps, (len(sched), total_steps)
    return sched
