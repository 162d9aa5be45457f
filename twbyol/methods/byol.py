"""BYOL on rho temporal crops of a clip, with TW-BYOL's time weighting of each crop pair.

rho-BYOL (Feichtenhofer et al., CVPR 2021, "A Large-Scale Study on Unsupervised
Spatiotemporal Representation Learning") matches every pair of rho crops of one clip equally.
TW-BYOL multiplies the loss of a pair by w(dt), dt = |centre_i - centre_j| in source frames:

    exponential     exp(-dt / tau)                       (TW-BYOL)
    uniform         1                                    (plain rho-BYOL)
    binary          1 if dt <= tau else 0
    linear          max(0, 1 - dt / (2 tau))
    inverse_square  1 / (1 + (dt / tau)^2)

and two controls that are not functions of dt:

    oracle          1 if the two centre frames have the same ground-truth behaviour state
                    (`same_state`: identical labels on every task), else 0 — the positive
                    control, possible only on labelled (synthetic) clips
    anti_oracle     1 if both are labelled and their states differ, else 0 — the anti
                    control: pairs that BYOL should not match
    permuted        TW-BYOL's exp(-dt / tau), shuffled across the pairs of the batch — the
                    negative control: the same weights, no temporal information

The loss of a pair is BYOL's normalised MSE, 2 - 2 cos(q_online(view_i), z_target(view_j)),
averaged over all ordered pairs i != j (the symmetric loss of BYOL for rho = 2).

A weighting also shrinks the batch: its effective sample size (sum w)^2 / sum w^2 over the
global batch's pairs is logged (`ess`, and `ess_fraction` = ess / pairs, 1 for uniform). A
batch whose pairs all weigh 0 (binary: ~11 % of batches of 32 at tau = 30 on 900-frame clips)
carries nothing to learn: `forward` returns loss None before running the networks, and the
trainer takes no optimiser, EMA or scaler step on it (an AdamW or LARS step on a zero gradient
still moves the weights by momentum and weight decay).

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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from twbyol import distributed
from twbyol.hardware import host_to_device
from twbyol.models.backbones import MLP
from twbyol.settings import DEFAULT_TAU, LABELLED_WEIGHTINGS, PAIR_WEIGHTINGS, WEIGHTINGS


def temporal_weight(
    frame_dist: torch.Tensor, kind: str = "exponential", tau: float = DEFAULT_TAU
) -> torch.Tensor:
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


def byol_loss(
    p_online: torch.Tensor,
    z_target: torch.Tensor,
    weight: torch.Tensor | None = None,
    normalize: str = "weights",
    weight_sum: torch.Tensor | None = None,
) -> torch.Tensor:
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


def same_state(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The oracle's weight of a crop pair: 1 where the two centre frames are in the same
    ground-truth state, else 0.

    a, b: (N, K) labels of the two crops' centre frames (K binary tasks; NaN where the run may
    not use the label). Same state: equal on every task, an unusable (NaN) label counting as a
    value of its own; a frame with no usable label has no state and matches nothing.
    Returns (N,) float32.
    """
    equal = (a == b) | (a.isnan() & b.isnan())
    return (equal.all(-1) & a.isfinite().any(-1)).float()


def permute_pairs(weight: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """`weight` shuffled by a permutation drawn from (seed, step, rank): deterministic, so a
    resumed run draws the same one. Under DDP each rank shuffles its own pairs (the global
    batch keeps its multiset of weights, hence its weight sum and effective sample size)."""
    perm = np.random.default_rng([seed, step, distributed.rank()]).permutation(weight.numel())
    return weight[torch.from_numpy(perm).to(weight.device)]


def ema_momentum(step: int, total_steps: int, base: float = 0.996) -> float:
    """BYOL's cosine schedule of the target momentum: base at step 0, 1 at the last step."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / max(total_steps, 1)) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- m * target + (1 - m) * online, over parameters only. The target's buffers (BN
    running statistics) stay its own, accumulated by its own forward passes, as in rho-BYOL's
    SlowFast code (`_update_history`, named_parameters) and MoCo-v3's momentum encoder. The
    target runs in train mode, so its BN normalises with batch statistics either way."""
    ts, os_ = list(target.parameters()), [p.detach() for p in online.parameters()]
    # the same two operations per tensor as t.mul_(m).add_(o, alpha=1 - m), in a few fused
    # kernels for all tensors instead of two per tensor (Slow-R50: ~320 launches a step)
    torch._foreach_mul_(ts, momentum)
    torch._foreach_add_(ts, os_, alpha=1.0 - momentum)


def pair_indices(rho: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j), i != j, of rho crops: two (rho*(rho-1),) index tensors."""
    # built on the host and copied: a boolean mask on the device would wait for it (nonzero)
    ij = torch.tensor([(i, j) for i in range(rho) for j in range(rho) if i != j]).T
    ij = ij if device is None else host_to_device(ij, torch.device(device))
    return ij[0], ij[1]


class OnlineNetwork(nn.Module):
    """Backbone -> projector -> predictor (identity where none): the part trained by gradient.

    `forward` takes a batch of clips (N, C, T, H, W), normalised as one batch, or the crops
    of a batch (B, rho, C, T, H, W), passed crop index by crop index: each of the rho passes
    normalises its B crops on their own (BN statistics per view), as rho-BYOL's online network
    does (SlowFast `ContrastiveModel`, type byol: each clip forwarded as the query in turn) and
    MoCo-v3's encoders; returns (z, p), each (N, D) or (B, rho, D). Under DDP the per-crop
    passes run inside one `forward` of the wrapped module, so the gradients are reduced once.
    On a CPU they are also the faster form: the tiny backbone's BYOL step at batch 32 took
    1.13-1.15x pytorchvideo's BYOL with the online network on all 64 crops as one batch, and
    1.01-1.03x (95 % CIs across 1.0; equal op totals under the profiler) a pass per crop
    (2 cores, side by side, 2026-12-02): convolution and BN backward over 64 crops' activations
    ran slower than twice over 32 (the rest of the gap: twbyol.allocator).
    """

    def __init__(
        self, backbone: nn.Module, projector: nn.Module, predictor: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.backbone, self.projector = backbone, projector
        self.predictor = predictor if predictor is not None else nn.Identity()

    @classmethod
    def byol(
        cls, backbone: nn.Module, proj_hidden: int, proj_dim: int, pred_hidden: int
    ) -> OnlineNetwork:
        """BYOL's: a 2-layer projector and predictor (Grill et al. 2020)."""
        return cls(
            backbone,
            MLP(backbone.feature_dim, proj_hidden, proj_dim),
            MLP(proj_dim, pred_hidden, proj_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() == 6:  # (B, rho, C, T, H, W): one pass per crop index
            outs = [self.forward(x[:, k]) for k in range(x.shape[1])]
            return torch.stack([z for z, _ in outs], 1), torch.stack([p for _, p in outs], 1)
        z = self.projector(self.backbone(x))
        return z, self.predictor(z)


class BYOL(nn.Module):
    """rho-crop BYOL with per-pair weights; the EMA target is the only extra state."""

    def __init__(
        self,
        backbone: nn.Module,
        weighting: str = "uniform",
        tau: float = DEFAULT_TAU,
        proj_hidden: int = 4096,
        proj_dim: int = 256,
        pred_hidden: int = 4096,
        normalize: str = "weights",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if weighting not in PAIR_WEIGHTINGS:
            raise ValueError(f"weighting: unknown {weighting!r}; expected one of {PAIR_WEIGHTINGS}")
        temporal_weight(torch.zeros(1), "exponential", tau)  # validate tau at build time
        self.online = OnlineNetwork.byol(backbone, proj_hidden, proj_dim, pred_hidden)
        self.target = copy.deepcopy(self.online)
        self.target.predictor = nn.Identity()  # the target has no predictor
        self.target.requires_grad_(False)
        self.weighting, self.tau, self.normalize, self.seed = weighting, tau, normalize, seed

    def pair_weights(
        self,
        dt: torch.Tensor,
        targets_i: torch.Tensor | None,
        targets_j: torch.Tensor | None,
        step: int,
    ) -> torch.Tensor | None:
        """(B*P,) weights of the batch's pairs (None: uniform); dt (B*P,) frame distances,
        targets_i/_j (B*P, K) the labels of each pair's two centre frames (oracle only)."""
        if self.weighting == "uniform":
            return None
        if self.weighting in LABELLED_WEIGHTINGS:
            if targets_i is None or targets_i.shape[-1] == 0:
                raise ValueError(
                    f"weighting {self.weighting}: the batch carries no labels (the run needs "
                    "`labels` and `protocol`, as the supervised upper bound)"
                )
            same = same_state(targets_i, targets_j)
            if self.weighting == "oracle":
                return same
            labelled = targets_i.isfinite().any(-1) & targets_j.isfinite().any(-1)
            return labelled.float() - same
        if self.weighting == "permuted":
            return permute_pairs(temporal_weight(dt, "exponential", self.tau), self.seed, step)
        return temporal_weight(dt, self.weighting, self.tau)

    def forward(
        self,
        crops: torch.Tensor,
        centres: torch.Tensor,
        online: nn.Module | None = None,
        targets: torch.Tensor | None = None,
        step: int = 0,
        **_: object,
    ) -> tuple[torch.Tensor | None, dict[str, float]]:
        """crops: (B, rho, C, T, H, W); centres: (B, rho) centre frame of each crop; targets:
        (B, rho, K) labels of each centre frame (the oracle's ground truth); step: the
        trainer's step index (seeds the permuted control). The pair weights are computed
        where `centres` and `targets` are, on the host in training (the loader's pinned
        batch): deciding whether a batch is worth a step waits for no device.

        `online` lets the trainer pass the DDP-wrapped online network (gradients all-reduced).
        Returns the loss and statistics for the log: mean weight and dt of this process's
        pairs, `ess` and `ess_fraction` of the global batch. The loss is None, and neither
        network runs, when every pair of the global batch weighs 0 (all ranks agree: the
        decision is on the all-reduced weight sum).
        """
        online = self.online if online is None else online
        b, rho = crops.shape[:2]
        i, j = pair_indices(rho, centres.device)
        dt = (centres[:, i] - centres[:, j]).abs().flatten()  # (B*P,)
        labelled = targets is not None and targets.shape[-1] > 0
        t_i = targets[:, i].flatten(0, 1) if labelled else None  # (B*P, K)
        t_j = targets[:, j].flatten(0, 1) if labelled else None
        weight = self.pair_weights(dt, t_i, t_j, step)
        world = distributed.world_size()
        pairs = dt.numel() * world  # of the global batch
        if weight is None:
            w_sum = w_sq = float(pairs)
        else:
            sums = torch.stack([weight.sum(), weight.square().sum()]).detach().double().cpu()
            w_sum, w_sq = distributed.all_reduce_host(sums).tolist()
        ess = w_sum**2 / w_sq if w_sq > 0 else 0.0
        stats = {
            "mean_weight": 1.0 if weight is None else float(weight.mean()),
            "mean_dt": float(dt.float().mean()),
            "ess": ess,
            "ess_fraction": ess / pairs,
        }
        if w_sum == 0.0:  # a sum of non-negative weights: exactly 0 iff every weight is
            return None, stats
        _, p = online(crops)  # (B, rho, D): a pass per crop index (see OnlineNetwork)
        with torch.no_grad():  # the target: every crop in one batch, as rho-BYOL's key encoder
            z = self.target.projector(self.target.backbone(crops.flatten(0, 1))).view(b, rho, -1)
        i, j = pair_indices(rho, p.device)
        p_pairs = p[:, i].flatten(0, 1)  # (B*P, D)
        z_pairs = z[:, j].flatten(0, 1)
        if weight is not None:  # pinned, so that the copy does not wait for the device
            weight = host_to_device(weight, p.device)
        # under DDP the divisor is the global weight sum / world size (see byol_loss)
        weight_sum = torch.tensor(w_sum / world) if weight is not None and world > 1 else None
        return byol_loss(p_pairs, z_pairs, weight, self.normalize, weight_sum), stats

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        ema_update(self.target.backbone, self.online.backbone, momentum)
        ema_update(self.target.projector, self.online.projector, momentum)
