"""BYOL on rho temporal crops of a clip, with TW-BYOL's time weighting of each crop pair.

rho-BYOL (Feichtenhofer et al., CVPR 2021, "A Large-Scale Study on Unsupervised
Spatiotemporal Representation Learning") matches every pair of rho crops of one clip equally.
TW-BYOL multiplies the loss of a pair by w(dt), dt = |centre_i - centre_j| in source frames:

    exponential     exp(-dt / tau)                       (TW-BYOL)
    uniform         1                                    (plain rho-BYOL)
    binary          1 if dt <= tau else 0
    linear          max(0, 1 - dt / (2 tau))
    inverse_square  1 / (1 + (dt / tau)^2)

The loss of a pair is BYOL's normalised MSE, 2 - 2 cos(q_online(view_i), z_target(view_j)),
averaged over all ordered pairs i != j (the symmetric loss of BYOL for rho = 2).

Scale against rho-BYOL's SlowFast code (CONTRASTIVE.SEQUENTIAL, T = 0.5): there the loss is
sum over crops k of mean over j != k of -cos / T = -2 cos, backpropagated crop by crop, so
its gradient is rho times ours (-2 cos and 2 - 2 cos differ by a constant). Under LARS this
does not change the step of a weight up to the weight-decay term (trust ratio ~ ||w|| / ||g||),
but biases and BN parameters, which take plain momentum steps without LARS, would move rho
times less than in that recipe at the same learning rate: `training.loss_scale` (rho in the
mabe22 experiment) backpropagates the recipe's scale. AdamW is invariant to the scale.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

WEIGHTINGS = ("uniform", "exponential", "binary", "linear", "inverse_square")


def temporal_weight(frame_dist: torch.Tensor, kind: str = "exponential", tau: float = 30.0) -> torch.Tensor:
    """Weight of a crop pair from its frame distance.

    frame_dist: (N,) non-negative frame distances (any numeric dtype).
    Returns (N,) float32 weights in [0, 1].
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    dt = frame_dist.float().abs()
    if kind == "exponential":
        return torch.exp(-dt / tau)
    if kind == "uniform":
        return torch.ones_like(dt)
    if kind == "binary":
        return (dt <= tau).float()
    if kind == "linear":
        return (1.0 - dt / (2.0 * tau)).clamp(min=0.0)
    if kind == "inverse_square":
        return 1.0 / (1.0 + (dt / tau) ** 2)
    raise ValueError(f"weighting: unknown kind {kind!r}; expected one of {WEIGHTINGS}")


def byol_loss(p_online: torch.Tensor, z_target: torch.Tensor, weight: torch.Tensor | None = None,
              normalize: str = "weights", weight_sum: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean of BYOL's per-pair loss 2 - 2 cos(p, z).

    p_online: (N, D) predictions of the online network; z_target: (N, D) target projections
    (gradient is stopped here); weight: (N,) or None (plain BYOL, the plain mean).
    normalize: "weights" divides by sum(weight) — a weighted mean, so the loss scale and the
    effective learning rate do not depend on the weighting (our default: it isolates the
    *relative* emphasis on near pairs from a change of step size); "batch" divides by N,
    as the draft in the study text does (`(w * l).mean()`), which also shrinks the gradient by
    mean(w). `weight_sum` replaces sum(weight) as the divisor: under DDP the trainer passes
    the global sum / world size, so that the gradient averaged over ranks is the gradient of
    the weighted mean over the global batch.
    """
    per_pair = 2.0 - 2.0 * F.cosine_similarity(p_online, z_target.detach(), dim=-1)  # (N,)
    if weight is None:
        return per_pair.mean()
    weight = weight.to(per_pair)
    if normalize == "weights":
        # clamp: a batch where a binary weighting zeroes every pair contributes no gradient
        denom = weight.sum() if weight_sum is None else weight_sum
        return (weight * per_pair).sum() / denom.clamp(min=1e-8)
    if normalize == "batch":
        return (weight * per_pair).mean()
    raise ValueError(f"normalize: expected 'weights' or 'batch', got {normalize!r}")


def ema_momentum(step: int, total_steps: int, base: float = 0.996) -> float:
    """BYOL's cosine schedule of the target momentum: base at step 0, 1 at the last step."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / max(total_steps, 1)) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- m * target + (1 - m) * online, over parameters only. The target's buffers (BN
    running statistics) stay its own, accumulated by its own forward passes, as in rho-BYOL's
    SlowFast code (`_update_history`, named_parameters) and MoCo-v3's momentum encoder. The
    target runs in train mode, so its BN normalises with batch statistics either way."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)


def pair_indices(rho: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j), i != j, of rho crops: two (rho*(rho-1),) index tensors."""
    i, j = torch.meshgrid(torch.arange(rho, device=device), torch.arange(rho, device=device), indexing="ij")
    keep = i != j
    return i[keep], j[keep]


class OnlineNetwork(nn.Module):
    """Backbone -> projector -> predictor: the only part trained by gradient."""

    def __init__(self, backbone: nn.Module, proj_hidden: int, proj_dim: int, pred_hidden: int) -> None:
        super().__init__()
        from twbyol.models.backbones import MLP

        self.backbone = backbone
        self.projector = MLP(backbone.feature_dim, proj_hidden, proj_dim)
        self.predictor = MLP(proj_dim, pred_hidden, proj_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.projector(self.backbone(x))
        return z, self.predictor(z)


class BYOL(nn.Module):
    """rho-crop BYOL with per-pair temporal weights; the EMA target is the only extra state."""

    def __init__(self, backbone: nn.Module, weighting: str = "uniform", tau: float = 30.0,
                 proj_hidden: int = 4096, proj_dim: int = 256, pred_hidden: int = 4096,
                 normalize: str = "weights") -> None:
        super().__init__()
        temporal_weight(torch.zeros(1), weighting, tau)  # validate the settings at build time
        self.online = OnlineNetwork(backbone, proj_hidden, proj_dim, pred_hidden)
        self.target = copy.deepcopy(self.online)
        self.target.predictor = nn.Identity()  # the target has no predictor
        self.target.requires_grad_(False)
        self.weighting, self.tau, self.normalize = weighting, tau, normalize

    def forward(self, crops: torch.Tensor, centres: torch.Tensor, online: nn.Module | None = None,
                **_: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """crops: (B, rho, C, T, H, W); centres: (B, rho) centre frame of each crop.

        `online` lets the trainer pass the DDP-wrapped online network (gradients all-reduced).
        Returns the loss and a few statistics for the log.
        """
        online = self.online if online is None else online
        b, rho = crops.shape[:2]
        flat = crops.flatten(0, 1)  # (B*rho, C, T, H, W)
        _, p = online(flat)
        with torch.no_grad():
            z = self.target.projector(self.target.backbone(flat))
        p, z = p.view(b, rho, -1), z.view(b, rho, -1)
        i, j = pair_indices(rho, crops.device)
        p_pairs = p[:, i].flatten(0, 1)  # (B*P, D)
        z_pairs = z[:, j].flatten(0, 1)
        dt = (centres[:, i] - centres[:, j]).abs().flatten()  # (B*P,)
        weight = None if self.weighting == "uniform" else temporal_weight(dt, self.weighting, self.tau)
        weight_sum = None
        if weight is not None and dist.is_available() and dist.is_initialized():
            weight_sum = weight.sum().detach()
            dist.all_reduce(weight_sum)
            weight_sum = weight_sum / dist.get_world_size()
        loss = byol_loss(p_pairs, z_pairs, weight, self.normalize, weight_sum)
        mean_w = 1.0 if weight is None else float(weight.mean())
        return loss, {"mean_weight": mean_w, "mean_dt": float(dt.float().mean())}

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        ema_update(self.target.backbone, self.online.backbone, momentum)
        ema_update(self.target.projector, self.online.projector, momentum)
