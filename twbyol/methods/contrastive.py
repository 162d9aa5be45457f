"""Contrastive baselines of the study, on the same rho temporal crops as BYOL.

- MoCo-v3 (Chen, Xie & He, ICCV 2021): online backbone -> 3-layer projector -> 2-layer
  predictor, momentum encoder with a cosine momentum schedule (an EMA of the parameters; its
  BN running statistics are its own, as in moco-v3/moco/builder.py), both encoders run a pass
  per crop (BN statistics per view, as q1, q2, k1, k2 there), symmetric InfoNCE of each
  online query against the momentum keys of the other crops, loss scaled by 2T as in the
  official code (moco-v3/moco/builder.py). T = 1.0 for ResNets (the repo's R-50 default).
- SimCLR-v2 (Chen et al., NeurIPS 2020): backbone -> 3-layer projector, NT-Xent over all
  crops of the batch with every other crop of the same clip a positive (for rho = 2 exactly
  SimCLR's loss); T = 0.1 (SimCLR-v2's setting).
- Time contrast (Sermanet et al. 2018, TCN, multi-positive InfoNCE form): positives are crops
  of the same clip whose centres are within `window` frames, negatives every crop of other
  clips and the same clip's crops further than `window`; anchors without a positive in the
  batch are skipped. Sample with crop_policy max_gap so that positives exist.

Negatives come from the whole global batch: under DDP each rank gathers the others'
embeddings (keys without gradient for MoCo; with gradient for SimCLR/time contrast).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from twbyol import distributed
from twbyol.hardware import host_to_device
from twbyol.methods.byol import OnlineNetwork, ema_update
from twbyol.models.backbones import MLP


def gather(x: torch.Tensor, grad: bool) -> tuple[torch.Tensor, int]:
    """All ranks' x concatenated on dim 0 (with the gradient flowing back to each rank's own
    rows where `grad`), and the offset of this rank's rows."""
    rows = distributed.all_gather_grad(x) if grad else distributed.all_gather(x)
    return rows, distributed.rank() * x.shape[0]


def multi_positive_info_nce(
    q: torch.Tensor, k: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over anchors of -log( sum_pos exp(s) / sum_valid exp(s) ), s = q.k / T.

    q: (N, D), k: (M, D) L2-normalised; pos, valid: (N, M) bool (pos within valid; valid
    excludes self-pairs). Anchors with no positive are dropped; with none at all the loss is
    0 and still a function of q and k, so that its backward runs through k's all-gather as on
    every other rank (a rank skipping it would leave the others waiting). No branch on the
    data: nothing waits for the device.
    """
    logits = (q @ k.T) / temperature
    logits = logits.masked_fill(~valid, float("-inf"))
    log_den = torch.logsumexp(logits, dim=1)
    has_pos = pos.any(dim=1)
    # an anchor without a positive gets a finite stand-in numerator (its term is masked out;
    # a row of -inf would make logsumexp's gradient NaN)
    num = torch.where(has_pos[:, None], logits.masked_fill(~pos, float("-inf")), 0.0)
    per_anchor = torch.where(has_pos, log_den - torch.logsumexp(num, dim=1), 0.0)
    return per_anchor.sum() / has_pos.sum().clamp(min=1)


class MoCoV3(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        proj_hidden: int = 4096,
        proj_dim: int = 256,
        pred_hidden: int = 4096,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        projector = MLP(backbone.feature_dim, proj_hidden, proj_dim, n_layers=3, last_bn=True)
        predictor = MLP(proj_dim, pred_hidden, proj_dim, n_layers=2, last_bn=True)
        self.online = OnlineNetwork(backbone, projector, predictor)
        self.target = copy.deepcopy(self.online)
        self.target.predictor = nn.Identity()
        self.target.requires_grad_(False)
        self.temperature = temperature

    def forward(
        self,
        crops: torch.Tensor,
        centres: torch.Tensor,
        online: nn.Module | None = None,
        **_: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        online = self.online if online is None else online
        b, rho = crops.shape[:2]
        # both encoders a pass per crop index (BN per view), as MoCo-v3's code: q1, q2 and
        # k1, k2 each from its own view's batch
        _, q = online(crops)  # (B, rho, D)
        with torch.no_grad():
            k, _ = self.target(crops)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        loss = q.new_zeros(())
        for i in range(rho):
            for j in range(rho):
                if i != j:  # query crop i against the keys of crop j of every clip
                    keys, offset = gather(k[:, j], grad=False)
                    logits = q[:, i] @ keys.T / self.temperature
                    target = torch.arange(b, device=q.device) + offset
                    loss = loss + F.cross_entropy(logits, target) * 2 * self.temperature
        return loss / (rho * (rho - 1)) * 2, {}  # x2: MoCo-v3 sums the two directions

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        ema_update(self.target.backbone, self.online.backbone, momentum)
        ema_update(self.target.projector, self.online.projector, momentum)


class _ContrastiveBase(nn.Module):
    """Backbone -> projector, no target; subclasses define positives."""

    def __init__(
        self,
        backbone: nn.Module,
        proj_hidden: int,
        proj_dim: int,
        n_layers: int,
        temperature: float,
    ) -> None:
        super().__init__()
        self.online = OnlineNetwork(
            backbone, MLP(backbone.feature_dim, proj_hidden, proj_dim, n_layers=n_layers)
        )
        self.temperature = temperature

    def positives(self, clip: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self,
        crops: torch.Tensor,
        centres: torch.Tensor,
        online: nn.Module | None = None,
        **_: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        online = self.online if online is None else online
        b, rho = crops.shape[:2]
        z, _ = online(crops.flatten(0, 1))
        z = F.normalize(z, dim=1)  # (B*rho, D)
        # clip ids made unique across ranks, so gathered crops of other ranks are negatives
        clip = torch.arange(b, device=z.device).repeat_interleave(rho) + distributed.rank() * b
        centre = host_to_device(centres.flatten(), z.device).to(z.dtype)
        zs, offset = gather(z, grad=True)  # (M, D), M = world * B * rho
        clips_all, _ = gather(clip, grad=False)
        centres_all, _ = gather(centre, grad=False)
        not_self = torch.ones(len(z), len(zs), dtype=torch.bool, device=z.device)
        not_self[torch.arange(len(z)), torch.arange(len(z)) + offset] = False
        pos = (
            self.positives(
                clip[:, None] == clips_all[None, :], (centre[:, None] - centres_all[None, :]).abs()
            )
            & not_self
        )
        loss = multi_positive_info_nce(z, zs, pos, not_self, self.temperature)
        return loss, {"positives_per_anchor": pos.sum(1).float().mean().detach()}

    def update_target(self, momentum: float) -> None:  # no target network
        pass


class SimCLRV2(_ContrastiveBase):
    def __init__(
        self,
        backbone: nn.Module,
        proj_hidden: int = 2048,
        proj_dim: int = 128,
        temperature: float = 0.1,
    ) -> None:
        super().__init__(backbone, proj_hidden, proj_dim, n_layers=3, temperature=temperature)

    def positives(self, same_clip: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return same_clip


class TimeContrast(_ContrastiveBase):
    def __init__(
        self,
        backbone: nn.Module,
        proj_hidden: int = 2048,
        proj_dim: int = 128,
        temperature: float = 0.1,
        window: float = 30.0,
    ) -> None:
        super().__init__(backbone, proj_hidden, proj_dim, n_layers=2, temperature=temperature)
        self.window = window

    def positives(self, same_clip: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return same_clip & (dt <= self.window)
