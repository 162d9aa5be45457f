"""A pretrained backbone's per-frame features of a clip: the embed stage's and the predict
stage's one way of turning frames into features (windows of the run's `num_frames` at its
`stride`, centred every `window_stride` frames; each frame takes its nearest window's
features).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from twbyol.models.backbones import (
    build_backbone,
    channels_last_wanted,
    to_channels_last,
    to_model_input,
)
from twbyol.settings import check_keys


@dataclass(frozen=True)
class EmbedConfig:
    """The settings of turning a run's frames into features (the experiment's `embedding`
    block): the embed stage's all three, predict's batch size (its window stride is the
    probes', the one the evaluation saw). Passed by the rules as one JSON object."""

    window_stride: int = 4  # frames between window centres: 133 ms at 30 fps, finer than
    # the shortest MABe22 behaviour bouts; each frame takes its nearest centre's window
    batch_size: int = 64  # windows per forward pass: fits a tiny or Slow-R50 backbone's
    # activations on a CPU or one GPU
    max_dim: int = 128  # PCA above this width: the MABe22 evaluator's submission limit

    @classmethod
    def from_dict(cls, d: dict) -> EmbedConfig:
        """The config of a JSON object; an unknown key is a ValueError naming it."""
        check_keys(cls, d, "embedding")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def load_backbone(model_path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The online backbone of a pretraining run and the run's config (weights_only load)."""
    ck = torch.load(model_path, map_location=device, weights_only=True)
    for key in ("backbone", "config"):
        if key not in ck:
            raise ValueError(f"{model_path}: not a twbyol model file (no {key!r} entry)")
    backbone = build_backbone(**ck["config"]["backbone"])
    backbone.load_state_dict(ck["backbone"])
    backbone = backbone.to(device).eval()
    # the run's memory format where it is measured faster (CPU: the tiny backbone's forward
    # 2,722 vs 1,970 frames/s on 2 cores); values equal to ~1e-6
    if channels_last_wanted(ck["config"].get("channels_last", "auto"), device):
        to_channels_last(backbone)
    return backbone, ck["config"]


def window_indices(
    n_frames: int, num_frames: int, stride: int, window_stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of each window (n_windows, num_frames) and each frame's window (n_frames,)."""
    centres = np.arange(0, n_frames, window_stride)
    offsets = np.round((np.arange(num_frames) - (num_frames - 1) / 2) * stride).astype(int)
    idx = np.clip(centres[:, None] + offsets[None, :], 0, n_frames - 1)
    nearest = np.clip(
        np.round(np.arange(n_frames) / window_stride).astype(int), 0, len(centres) - 1
    )
    return idx, nearest


def read_frames(path: Path, device: torch.device) -> torch.Tensor:
    """A clip's frames (T, H, W) uint8, read whole from its memmap (pinned for a GPU)."""
    x = torch.from_numpy(np.array(np.load(path, mmap_mode="r")))
    return x.pin_memory() if device.type == "cuda" else x


@torch.inference_mode()
def embed_clip(
    backbone: torch.nn.Module,
    frames: np.ndarray | torch.Tensor,
    crop: dict,
    window_stride: int,
    batch_size: int,
    device: torch.device,
    autocast: torch.dtype | None = None,
) -> np.ndarray:
    """frames (T, H, W) uint8 -> (T, D) float32 features, the backbone under `autocast`
    (the run's: twbyol.hardware.run_autocast; None: fp32). The features stay on the device
    until the clip is done: one transfer (and one wait for the device) per clip."""
    size = int(crop["crop_size"])
    if not isinstance(frames, torch.Tensor):
        frames = torch.from_numpy(np.array(frames))  # a copy of the memmap
    x = frames.to(device, non_blocking=True).unsqueeze(1).float()  # (T, 1, H, W)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    x = to_model_input(x.clamp_(0, 255).squeeze(1))  # (1, T, h, w) normalised
    idx, nearest = window_indices(
        len(frames), int(crop["num_frames"]), int(crop["stride"]), window_stride
    )
    idx_t = torch.from_numpy(idx).to(device)
    feats = []
    for b in range(0, len(idx), batch_size):
        clips = x[:, idx_t[b : b + batch_size]].transpose(0, 1)  # (B, 1, T, h, w)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            feats.append(backbone(clips).float())
    return torch.cat(feats).cpu().numpy()[nearest]
