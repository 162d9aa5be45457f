"""The supervised upper bound: the same backbone trained on the per-frame labels.

A linear head per binary task on the backbone's clip feature predicts the label of the crop's
centre frame (binary cross-entropy, unlabelled frames masked out). Only the probe's training
clips are used, so the upper bound never sees a test label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from twbyol.hardware import host_to_device


class _Online(nn.Module):
    def __init__(self, backbone: nn.Module, n_tasks: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, n_tasks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class Supervised(nn.Module):
    def __init__(self, backbone: nn.Module, n_tasks: int) -> None:
        super().__init__()
        if n_tasks < 1:
            raise ValueError("supervised: the labels have no binary task to train on")
        self.online = _Online(backbone, n_tasks)

    def forward(
        self,
        crops: torch.Tensor,
        centres: torch.Tensor,
        online: nn.Module | None = None,
        targets: torch.Tensor | None = None,
        **_: object,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """crops (B, rho, C, T, H, W); targets (B, rho, n_tasks) in {0, 1} or NaN."""
        online = self.online if online is None else online
        logits = online(crops.flatten(0, 1))  # (B*rho, n_tasks)
        y = host_to_device(targets.flatten(0, 1), logits.device).to(logits.dtype)
        mask = torch.isfinite(y)
        # the mean over labelled entries, as a masked sum: no boolean indexing or branch on
        # the data (each would wait for the device); 0 where nothing is labelled
        per = F.binary_cross_entropy_with_logits(logits, y.nan_to_num(0.0), reduction="none")
        loss = (per * mask).sum() / mask.sum().clamp(min=1)
        return loss, {"labelled_fraction": mask.float().mean().detach()}

    def update_target(self, momentum: float) -> None:  # no target network
        pass
