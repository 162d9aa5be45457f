"""The crop augmentation as batched tensor operations on the training device.

The loader path (`twbyol.data.transforms.build_augmentation`) augments each crop in a loader
worker with torchvision's transforms: ~750 Python calls and 5 ms a 56 px sample on one core
here, and on the H200 node measured in docs/gpu.md the 8 workers of a GPU could not feed it.
Here the workers only slice the crops' uint8 frames from the memmap and draw each crop's
parameters (`ParamDrawer`); the trainer applies them to the whole batch at once on its
device (`augment_batch`): random resized crop and flip as two resampling matrices per crop
(one batched matmul each), colour jitter and blur as batched arithmetic and matmuls.

The same augmentation, not a look-alike:
- parameters: drawn by the loader path's own transform objects (`make_params` of
  torchvision's RandomResizedCrop and ColorJitter, our SeparableGaussianBlur) and the same
  `torch.rand(1)` coin of each random-apply, in the same order, from the same per-sample
  generator: a sample's parameters are those the loader path draws for it, bit for bit;
- operations: torchvision's, computed in float32 with its uint8 quantisation kept where it
  has one: the antialiased bilinear resize (torch's `_upsample_bilinear2d_aa` weights:
  triangle filter widened by the downscale factor, normalised per output pixel), rounded as
  torchvision rounds it on a GPU; brightness and contrast blended and truncated to uint8 as
  its `_blend` does, contrast towards each frame's mean (each clip's with
  `photometric_first`); the blur rounded as `SeparableGaussianBlur`. Outputs agree with the
  loader path's to one grey level, off only on pixels at a rounding edge (the CPU path
  resizes uint8 in fixed point; tested).
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from twbyol.data.crops import CropConfig
from twbyol.data.transforms import (
    AsOneImage,
    SeparableGaussianBlur,
    blur_kernel_size,
    reflect_band_index,
)
from twbyol.models.backbones import MEAN, STD

# one crop's parameters, as a row of the (rho, len(PARAMS)) float64 tensor a sample carries
PARAMS = (
    "top",
    "left",
    "height",
    "width",
    "flip",
    "jitter",  # 1: colour jitter applied
    "brightness_first",  # 1: brightness before contrast (ColorJitter's random order)
    "brightness",
    "contrast",
    "blur",  # 1: blur applied
    "sigma",
)
P = {name: k for k, name in enumerate(PARAMS)}


class ParamDrawer:
    """Draws a crop's augmentation parameters exactly as the loader path's transforms
    (`build_augmentation(crop)`, passed in: the same objects) draw them while applying
    themselves, from torch's default generator (the loader seeds it per sample)."""

    def __init__(self, compose: torch.nn.Module) -> None:
        # (kind, the transform whose coin is drawn, the one whose make_params is called), in
        # the loader path's order
        self.steps = []
        for t in compose.transforms:
            if isinstance(t, v2.RandomResizedCrop):
                self.steps.append(("crop", t, t))
            elif isinstance(t, v2.RandomHorizontalFlip):
                self.steps.append(("flip", t, t))
            elif isinstance(t, v2.RandomApply):
                inner = t.transforms[0]
                if isinstance(inner, AsOneImage):
                    inner = inner.inner
                kind = "jitter" if isinstance(inner, v2.ColorJitter) else "blur"
                if kind == "blur" and not isinstance(inner, SeparableGaussianBlur):
                    raise TypeError(f"unexpected blur transform {inner!r}")
                self.steps.append((kind, t, inner))
            else:
                raise TypeError(f"build_augmentation: no batched form of {t!r}")

    def __call__(self, height: int, width: int) -> torch.Tensor:
        """(len(PARAMS),) float64 parameters of one crop of a (height, width) frame."""
        row = torch.zeros(len(PARAMS), dtype=torch.float64)
        row[P["brightness"]] = row[P["contrast"]] = 1.0  # identity where not applied
        for kind, t, inner in self.steps:
            if kind == "crop":
                # query_size reads the shape only: a zero-stride stand-in for the frames
                size = torch.zeros((), dtype=torch.uint8).expand(1, height, width)
                p = t.make_params([size])
                row[P["top"]], row[P["left"]] = p["top"], p["left"]
                row[P["height"]], row[P["width"]] = p["height"], p["width"]
            elif kind == "flip":  # _RandomApplyTransform: skipped when rand >= p
                row[P["flip"]] = float(torch.rand(1) < t.p)
            elif torch.rand(1) < t.p:  # v2.RandomApply's coin, then the inner draws
                p = inner.make_params([])
                if kind == "jitter":
                    order = p["fn_idx"].tolist()
                    row[P["jitter"]] = 1.0
                    row[P["brightness_first"]] = float(order.index(0) < order.index(1))
                    row[P["brightness"]] = p["brightness_factor"]
                    row[P["contrast"]] = p["contrast_factor"]
                else:
                    row[P["blur"]], row[P["sigma"]] = 1.0, p["sigma"]
        return row


def resample_matrices(
    start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int
) -> torch.Tensor:
    """(N, out_size, in_size) float32 matrices M with M @ v = v[start : start + length]
    resized to out_size by torch's antialiased bilinear interpolation (align_corners False):
    output i is centred at scale * (i + 0.5) in the crop, scale = length / out_size, and
    weighs input u by the triangle 1 - |(u + 0.5 - centre) / max(scale, 1)| over
    [trunc(centre - s + 0.5), trunc(centre + s + 0.5)) within the crop, s = max(scale, 1),
    normalised to sum 1 (aten's upsample aa kernels). start, length: (N,) on the device."""
    dev = start.device
    length = length.double()
    scale = length / out_size  # (N,)
    support = scale.clamp(min=1.0)
    centre = scale[:, None] * (torch.arange(out_size, device=dev, dtype=torch.float64) + 0.5)
    lo = (centre - support[:, None] + 0.5).floor().clamp(min=0.0)  # (N, out)
    hi = torch.minimum((centre + support[:, None] + 0.5).floor(), length[:, None])
    u = (
        torch.arange(in_size, device=dev, dtype=torch.float64)[None, None, :]
        - start.double()[:, None, None]
    )  # each input pixel in crop coordinates, (N, 1, in)
    w = (1.0 - ((u + 0.5 - centre[..., None]) / support[:, None, None]).abs()).clamp(min=0.0)
    w = w * ((u >= lo[..., None]) & (u < hi[..., None]))
    return (w / w.sum(-1, keepdim=True)).float()


def blur_matrices(sigma: torch.Tensor, apply: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """(N, n, n) float32 matrices of SeparableGaussianBlur's 1-D pass over n pixels with a
    k-tap kernel of each crop's sigma (reflect padding); the identity where `apply` is 0."""

    dev = sigma.device
    lim = (k - 1) / (2.0 * 2.0**0.5)
    x = torch.linspace(-lim, lim, steps=k, dtype=torch.float32, device=dev)
    s = torch.where(apply > 0, sigma, 1.0).float()
    kernel = torch.softmax(-((x[None, :] / s[:, None]) ** 2), dim=1)  # (N, k)
    delta = torch.zeros(k, device=dev)
    delta[k // 2] = 1.0
    kernel = torch.where(apply[:, None] > 0, kernel, delta)
    idx = reflect_band_index(n, k // 2, dev)  # (n, k)
    out = torch.zeros(len(sigma), n, n, dtype=torch.float32, device=dev)
    return out.scatter_add_(2, idx.expand(len(sigma), n, k), kernel[:, None, :].expand(-1, n, k))


def _contrast(x: torch.Tensor, factor: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """torchvision's adjust_contrast of uint8 values held in float32: blend with the mean
    over `dims`, clamp, truncate. factor (N,) float64, 1 = identity (exactly)."""
    mean = x.mean(dim=dims, keepdim=True)
    shape = (-1,) + (1,) * (x.dim() - 1)
    f = factor.float().view(shape)
    return (x * f + mean * (1.0 - factor).float().view(shape)).clamp_(0, 255).floor_()


def _brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_brightness of uint8 values in float32: scale, clamp, truncate."""
    f = factor.float().view((-1,) + (1,) * (x.dim() - 1))
    return (x * f).clamp_(0, 255).floor_()


def _jitter(x: torch.Tensor, p: torch.Tensor, whole_clip: bool) -> torch.Tensor:
    """ColorJitter (brightness, contrast, in each crop's drawn order) on (N, T, H, W)."""
    on = p[:, P["jitter"]] > 0
    first = p[:, P["brightness_first"]] > 0
    c = p[:, P["contrast"]]
    one = torch.ones_like(c)
    dims = (1, 2, 3) if whole_clip else (2, 3)  # AsOneImage: the clip's mean, else each frame's
    x = _contrast(x, torch.where(on & ~first, c, one), dims)
    x = _brightness(x, torch.where(on, p[:, P["brightness"]], one))
    return _contrast(x, torch.where(on & first, c, one), dims)


def _blur(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """SeparableGaussianBlur with each crop's sigma (where drawn) on (N, T, H, W)."""

    n, _, h, w = x.shape
    k = blur_kernel_size(min(h, w))
    on, sigma = p[:, P["blur"]], p[:, P["sigma"]]
    bh = blur_matrices(sigma, on, h, k)[:, None]  # (N, 1, H, H)
    bw = blur_matrices(sigma, on, w, k)[:, None]
    return (bh @ x @ bw.transpose(-1, -2)).round_()


def _resized_crop(x: torch.Tensor, p: torch.Tensor, size: int) -> torch.Tensor:
    """RandomResizedCrop's crop and resize to size x size, then the flip, on (N, T, H, W)."""
    _, _, h, w = x.shape
    rows = resample_matrices(p[:, P["top"]], p[:, P["height"]], h, size)  # (N, size, H)
    cols = resample_matrices(p[:, P["left"]], p[:, P["width"]], w, size)  # (N, size, W)
    cols = torch.where(p[:, P["flip"], None, None] > 0, cols.flip(1), cols)
    # torchvision on a GPU: float interpolation, then round to uint8 (values stay in [0, 255])
    return (rows[:, None] @ x @ cols[:, None].transpose(-1, -2)).round_()


def augment_batch(raw: torch.Tensor, params: torch.Tensor, crop: CropConfig) -> torch.Tensor:
    """The model input of a batch: raw (B, rho, T, H, W) uint8 frames of each crop, params
    (B, rho, len(PARAMS)) from `ParamDrawer`, both on the device to compute on.
    Returns (B, rho, 1, T, crop_size, crop_size) float32, normalised as `to_model_input`."""
    b, rho, t, h, w = raw.shape
    x = raw.reshape(b * rho, t, h, w).float()
    p = params.reshape(b * rho, -1).to(raw.device, torch.float64)
    if crop.photometric_first:  # jitter the clip as one image, blur each frame, then crop
        x = _blur(_jitter(x, p, whole_clip=True), p)
        x = _resized_crop(x, p, crop.crop_size)
    else:
        x = _resized_crop(x, p, crop.crop_size)
        x = _blur(_jitter(x, p, whole_clip=False), p)
    x = x.div_(255.0).sub_(MEAN).div_(STD)
    return x.reshape(b, rho, 1, t, crop.crop_size, crop.crop_size)
