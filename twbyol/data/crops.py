"""`CropConfig`: the temporal crops of a sample and their augmentation, every default once.

Torch-free, so that the workflow's parsing (twbyol.experiment: the evaluation's view of the
crops) reads the same defaults the trainer uses (twbyol.data.sampling) without importing
torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from twbyol.settings import DEFAULT_TAU, LABELLED_WEIGHTINGS, TIME_UNITS, WEIGHTINGS

CROP_POLICIES = ("uniform", "max_gap", "min_gap", "near_pairs")


@dataclass
class CropConfig:
    """Temporal crops of a sample and their augmentation (`build_augmentation`)."""

    rho: int = 2  # crops per clip sample; rho-BYOL finds rho > 2 helps
    num_frames: int = 8  # frames per crop (Slow 8x8: 8 frames ...)
    stride: int = 8  # ... every 8 source frames
    crop_size: int = 224
    policy: str = "uniform"
    gap: int = 60  # frames, for max_gap / min_gap
    gap_s: float | None = None  # seconds instead: each clip's gap is round(gap_s * its fps)
    density: str = "exponential"  # near_pairs: pairs drawn as uniform pairs reweighted by this
    tau: float = DEFAULT_TAU  # weighting at this tau (the trainer sets the run's) ...
    tau_unit: str = "frames"  # ... in frames or in seconds (x each clip's fps)
    min_scale: float = 0.2  # random resized crop: area fraction of the frame, lower ...
    max_scale: float = 1.0  # ... and upper bound
    aspect_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)  # w/h range, log-uniform
    brightness: float = 0.4  # colour jitter strengths (MoCo-v2 / SimCLR's 0.4)
    contrast: float = 0.4
    jitter_p: float = 0.8
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    photometric_first: bool = False  # jitter and blur the whole frames before the crop

    def __post_init__(self) -> None:
        if self.tau_unit not in TIME_UNITS:
            raise ValueError(f"crop.tau_unit: {self.tau_unit!r}, expected one of {TIME_UNITS}")
        if self.gap_s is not None and self.gap_s < 0:
            raise ValueError(f"crop.gap_s: expected >= 0 seconds, got {self.gap_s}")
        ranges = {
            "min_scale, max_scale": (self.min_scale, self.max_scale),
            "aspect_ratio": tuple(self.aspect_ratio),
            "blur_sigma": tuple(self.blur_sigma),
        }
        for name, (lo, hi) in ranges.items():
            if not 0 < lo <= hi:
                raise ValueError(f"crop.{name}: expected 0 < min <= max, got {lo}, {hi}")
        if self.policy == "near_pairs":
            if self.rho != 2:
                raise ValueError(
                    f"crop_policy near_pairs: draws one pair of crops (rho = 2), got rho "
                    f"{self.rho}; with more crops their pairs share crops and cannot all "
                    f"be distributed as w(dt)-reweighted uniform pairs"
                )
            if self.density not in (*WEIGHTINGS, *LABELLED_WEIGHTINGS):
                raise ValueError(
                    f"crop_policy near_pairs: weighting {self.density!r} has no density "
                    f"of pairs; expected one of {(*WEIGHTINGS, *LABELLED_WEIGHTINGS)}"
                )


def crop_defaults() -> dict:
    """{field: default} of CropConfig."""
    return {f.name: f.default for f in fields(CropConfig)}
