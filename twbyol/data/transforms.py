"""The loader path's augmentation of one crop: torchvision v2 transforms (random resized
crop, flip, colour jitter, Gaussian blur computed separably) in the study's order
(`build_augmentation`). The device path (`twbyol.data.augment`) draws the same parameters
from these same objects and applies them to a batch at once.
"""

from __future__ import annotations

import math

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from twbyol.data.crops import CropConfig


class SeparableGaussianBlur(v2.Transform):
    """torchvision's `v2.GaussianBlur` computed as two 1-D passes instead of one 2-D
    convolution: the same random sigma (drawn from torch's generator exactly as torchvision
    draws it), the same kernel (torchvision's 1-D kernel; the 2-D one is its outer product),
    the same reflect padding and uint8 rounding, so outputs agree to float rounding (at most
    one grey level, on pixels that sit on a rounding edge). Cost per pixel 2k instead of k^2
    multiply-adds: for the 45-tap kernel at 224 px (`blur_kernel_size`) 22x fewer, which moves
    the loader from blur-bound (95 % of a 224 px sample's time) to the crop and copy work."""

    def __init__(
        self, kernel_size: int | None = None, sigma: tuple[float, float] = (0.1, 2.0)
    ) -> None:
        """`kernel_size` None: `blur_kernel_size` of the blurred image's shorter side."""
        super().__init__()
        if kernel_size is not None and (kernel_size % 2 == 0 or kernel_size < 1):
            raise ValueError(f"kernel_size should be odd and positive, got {kernel_size}")
        if not 0.0 < sigma[0] <= sigma[1]:
            raise ValueError(f"sigma should be (min, max) with 0 < min <= max, got {sigma}")
        self.kernel_size = kernel_size
        self.sigma = sigma

    def make_params(self, flat_inputs: list) -> dict:
        return {"sigma": torch.empty(1).uniform_(self.sigma[0], self.sigma[1]).item()}

    def transform(self, inpt, params: dict):  # noqa: ANN001 - torchvision's signature
        if not isinstance(inpt, torch.Tensor):
            return inpt
        k = self.kernel_size or blur_kernel_size(min(inpt.shape[-2:]))
        half = k // 2
        lim = (k - 1) / (2.0 * math.sqrt(2.0))  # torchvision's _get_gaussian_kernel1d
        x = torch.linspace(-lim, lim, steps=k, dtype=torch.float32, device=inpt.device)
        kernel = torch.softmax(x.div(params["sigma"]).pow(2).neg(), dim=0)
        shape = inpt.shape
        out = inpt.reshape(-1, shape[-2], shape[-1])  # (N, H, W)
        out = out if out.is_floating_point() else out.to(torch.float32)
        # Both 1-D passes with reflect padding as (H, H) and (W, W) banded matrices: one
        # batched matmul each, 5x faster than small conv2d calls on the CPU (their per-call
        # overhead dominates at the synthetic study's 48 px), the same sums in another order.
        out = (
            _reflect_band(shape[-2], kernel, half) @ out @ _reflect_band(shape[-1], kernel, half).T
        )
        if not inpt.is_floating_point():
            out = out.round_().to(inpt.dtype)
        return (
            tv_tensors.wrap(out.reshape(shape), like=inpt)
            if isinstance(inpt, tv_tensors.TVTensor)
            else out.reshape(shape)
        )


def _reflect_band(n: int, kernel: torch.Tensor, half: int) -> torch.Tensor:
    """(n, n) matrix M with (M @ v)[i] = sum_j kernel[j] v[reflect(i + j - half)]: a 1-D
    convolution of a length-n signal with `kernel` under reflect padding (torch's "reflect":
    the edge sample is not repeated), as a matrix."""
    idx = reflect_band_index(n, half, kernel.device)
    return torch.zeros(n, n, dtype=kernel.dtype, device=kernel.device).scatter_add_(
        1, idx, kernel.expand(n, -1).contiguous()
    )


def reflect_band_index(n: int, half: int, device: torch.device | None = None) -> torch.Tensor:
    """(n, 2 * half + 1) int64: the input pixel each tap of a centred kernel reads for each of
    n outputs under reflect padding (the edge sample not repeated)."""
    if half >= n:
        raise ValueError(f"blur kernel of {2 * half + 1} taps is too wide for {n} pixels")
    idx = (
        torch.arange(n, device=device)[:, None] + torch.arange(-half, half + 1, device=device)
    ).abs()  # (n, k)
    return torch.where(idx > n - 1, 2 * (n - 1) - idx, idx)


def blur_kernel_size(side: int) -> int:
    """Odd Gaussian kernel of about a fifth of the blurred image's side (45 taps at 224 px,
    51 at 256): far wider than the +-4 sigma a sigma <= 2 needs, so the truncation is void."""
    return max(3, side // 10 * 2 + 1)


class AsOneImage(torch.nn.Module):
    """Applies `inner` to a clip (T, C, H, W) viewed as one (C, T*H, W) image, as rho-BYOL's
    SlowFast loader does its colour jitter (`color_jitter_video_ssl`): contrast then blends
    towards the mean of the whole clip, not of each frame."""

    def __init__(self, inner: v2.Transform) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        t, c, h, w = video.shape
        image = tv_tensors.Image(
            video.as_subclass(torch.Tensor).transpose(0, 1).reshape(c, t * h, w)
        )
        out = self.inner(image).as_subclass(torch.Tensor).reshape(c, t, h, w).transpose(0, 1)
        return tv_tensors.wrap(out, like=video) if isinstance(video, tv_tensors.TVTensor) else out


def build_augmentation(crop: CropConfig) -> v2.Compose:
    """The spatial and photometric augmentation of one crop, a (T, 1, H, W) uint8 video.

    Random resized crop (area `min_scale`-`max_scale` of the frame, log-uniform aspect ratio in
    `aspect_ratio`, resized to `crop_size`), horizontal flip (p = 0.5), colour jitter
    (`brightness`, `contrast`; saturation and hue are void in gray) with p = `jitter_p`,
    Gaussian blur (sigma uniform in `blur_sigma`; torchvision's, computed separably:
    `SeparableGaussianBlur`) with p = `blur_p`. The random grayscale of the RGB recipes is a
    no-op on gray video and is left out.

    Order: by default crop, flip, jitter, blur, each on the crop. With `photometric_first`,
    rho-BYOL's (SlowFast `datasets/kinetics.py`): jitter on the whole decoded clip as one image
    (`AsOneImage`), blur on each whole frame, then crop and flip. There the blur also runs on
    the clip as one tall image, which mixes the rows within ~3 sigma of the seams of adjacent
    frames; ours blurs each frame on its own (reflect padding): an artefact not copied.
    Parameters are drawn once per call, so every frame of a crop gets the same transform.
    """
    spatial = [
        v2.RandomResizedCrop(
            crop.crop_size,
            scale=(crop.min_scale, crop.max_scale),
            ratio=tuple(crop.aspect_ratio),
            antialias=True,
        ),
        v2.RandomHorizontalFlip(),
    ]
    jitter = v2.ColorJitter(brightness=crop.brightness, contrast=crop.contrast)
    blur = v2.RandomApply([SeparableGaussianBlur(sigma=tuple(crop.blur_sigma))], p=crop.blur_p)
    if crop.photometric_first:
        return v2.Compose([v2.RandomApply([AsOneImage(jitter)], p=crop.jitter_p), blur, *spatial])
    return v2.Compose([*spatial, v2.RandomApply([jitter], p=crop.jitter_p), blur])
