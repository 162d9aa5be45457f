"""Temporal crop sampling, the augmentation and the crop dataset (twbyol.data.sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from twbyol.data.sampling import (
    CropConfig,
    SeparableGaussianBlur,
    TemporalCropDataset,
    blur_kernel_size,
    build_augmentation,
    sample_crop_starts,
    select_clips,
)


@pytest.mark.parametrize("size,kernel", [(56, 11), (224, 45)])
def test_separable_blur_equals_torchvision(size, kernel):
    x = tv_tensors.Video(torch.randint(0, 256, (8, 1, size, size), dtype=torch.uint8,
                                       generator=torch.Generator().manual_seed(size)))
    ours, theirs = SeparableGaussianBlur(kernel, (0.1, 2.0)), v2.GaussianBlur(kernel, (0.1, 2.0))
    differing = 0
    for seed in range(4):
        torch.manual_seed(seed)
        a = ours(x)
        torch.manual_seed(seed)
        b = theirs(x)
        assert isinstance(a, tv_tensors.Video) and a.dtype == torch.uint8 and a.shape == x.shape
        d = (a.int() - b.int()).abs()
        assert d.max() <= 1  # float rounding of the two orders of summation
        differing += int((d > 0).sum())
    assert differing / (4 * x.numel()) < 1e-3
    # it blurs: a constant image stays constant (reflect padding), noise loses variance
    torch.manual_seed(0)
    flat = tv_tensors.Video(torch.full((2, 1, size, size), 77, dtype=torch.uint8))
    assert torch.equal(ours(flat), flat)
    big = SeparableGaussianBlur(kernel, (2.0, 2.0))
    assert big(x).float().std() < 0.5 * x.float().std()
    # float input stays float
    y = ours(x.float())
    assert y.dtype == torch.float32
    with pytest.raises(ValueError, match="odd"):
        SeparableGaussianBlur(4)


def _video(t=4, size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tv_tensors.Video(torch.randint(0, 256, (t, 1, size, size), dtype=torch.uint8, generator=g))


def test_default_augmentation_is_the_crop_first_one_of_before():
    """Defaults (the smoke and synthetic experiments): crop, flip, jitter 0.4 p 0.8, blur p 0.5
    on the crop, drawing the same random numbers in the same order as before the settings."""
    x = _video()
    before = v2.Compose([
        v2.RandomResizedCrop(32, scale=(0.5, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(brightness=0.4, contrast=0.4)], p=0.8),
        v2.RandomApply([SeparableGaussianBlur(max(3, 32 // 10 * 2 + 1), sigma=(0.1, 2.0))], p=0.5),
    ])
    ours = build_augmentation(CropConfig(crop_size=32, min_scale=0.5))
    for seed in range(8):
        torch.manual_seed(seed)
        a = ours(x)
        torch.manual_seed(seed)
        assert torch.equal(a, before(x))


def test_photometric_first_blurs_the_whole_frame_before_the_crop():
    # rows of period 4: flip-invariant, and blurring at 64 px then halving differs from
    # halving then blurring (twice the sigma relative to the content)
    rows = torch.tensor([0, 0, 255, 255], dtype=torch.uint8).repeat(16)
    x = tv_tensors.Video(rows.view(1, 1, 64, 1).expand(3, 1, 64, 64).clone())
    common = dict(crop_size=32, min_scale=1.0, max_scale=1.0, aspect_ratio=(1.0, 1.0), jitter_p=0.0,
                  blur_p=1.0, blur_sigma=(2.0, 2.0))
    torch.manual_seed(0)
    first = build_augmentation(CropConfig(photometric_first=True, **common))(x)
    torch.manual_seed(0)
    after = build_augmentation(CropConfig(**common))(x)
    blur = SeparableGaussianBlur(blur_kernel_size(64), (2.0, 2.0))  # the kernel of the 64 px frame
    assert torch.equal(first, v2.functional.resize(blur(x), [32, 32], antialias=True))
    assert torch.equal(after, SeparableGaussianBlur(blur_kernel_size(32), (2.0, 2.0))(
        v2.functional.resize(x, [32, 32], antialias=True)))
    assert (first.int() - after.int()).abs().max() > 20


def test_photometric_first_jitters_contrast_about_the_clip_mean():
    """Two constant frames, 50 and 200: per-frame contrast leaves them as they are; about the
    clip's mean (125), as rho-BYOL's loader does, it moves both by the same factor."""
    x = tv_tensors.Video(torch.tensor([50, 200], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 24, 24).clone())
    common = dict(crop_size=16, brightness=0.0, contrast=0.6, jitter_p=1.0, blur_p=0.0)
    for seed in range(4):
        torch.manual_seed(seed)
        per_frame = build_augmentation(CropConfig(**common))(x)
        assert torch.equal(per_frame[:, :, :16, :16], x[:, :, :16, :16])
        torch.manual_seed(seed)
        clip = build_augmentation(CropConfig(photometric_first=True, **common))(x)
        f0, f1 = int(clip[0].float().mean()), int(clip[1].float().mean())
        assert f0 != 50 and abs(f0 + f1 - 250) <= 1  # c * (x - 125) + 125 for both, truncated


def test_recipe_crop_draws_area_and_aspect_in_its_ranges():
    crop = CropConfig(crop_size=224, min_scale=0.2, max_scale=0.766, aspect_ratio=(0.75, 1.3333))
    rrc = build_augmentation(crop).transforms[0]
    frame = tv_tensors.Image(torch.zeros(1, 256, 256, dtype=torch.uint8))
    torch.manual_seed(0)
    boxes = np.array([[p["height"], p["width"]] for p in (rrc.make_params([frame]) for _ in range(2000))])
    area, aspect = boxes.prod(1) / 256**2, boxes[:, 1] / boxes[:, 0]
    assert area.min() >= 0.2 - 0.01 and area.max() <= 0.766 + 0.01  # rounding of the sides
    assert aspect.min() >= 0.75 - 0.01 and aspect.max() <= 1.3333 + 0.01
    assert abs(np.log(aspect).mean()) < 0.02  # log-uniform: symmetric about 1
    with pytest.raises(ValueError, match="min_scale, max_scale"):
        CropConfig(min_scale=0.8, max_scale=0.5)
    with pytest.raises(ValueError, match="blur_sigma"):
        CropConfig(blur_sigma=(0.0, 2.0))


def test_crop_policies_respect_their_gaps():
    rng = np.random.default_rng(0)
    span, n = 57, 900
    for _ in range(200):
        s = sample_crop_starts(n, 3, span, "uniform", 60, rng)
        assert s.shape == (3,) and s.min() >= 0 and s.max() <= n - span
        s = sample_crop_starts(n, 3, span, "max_gap", 60, rng)
        assert np.abs(s[1:] - s[0]).max() <= 60 and s.min() >= 0 and s.max() <= n - span
        s = np.sort(sample_crop_starts(n, 3, span, "min_gap", 60, rng))
        assert np.diff(s).min() >= 60 and s.max() <= n - span
    # a clip too short for the gap: the largest feasible gap
    s = np.sort(sample_crop_starts(100, 2, span, "min_gap", 60, rng))
    assert np.diff(s)[0] >= 43
    with pytest.raises(ValueError, match="shorter than a crop span"):
        sample_crop_starts(40, 2, span, "uniform", 60, rng)
    with pytest.raises(ValueError, match="crop_policy"):
        sample_crop_starts(900, 2, span, "nearest", 60, rng)


def test_select_clips_is_nested_and_reproducible():
    ids = [f"c{i}" for i in range(40)]
    quarter, half = select_clips(ids, 0.25), select_clips(ids, 0.5)
    assert len(quarter) == 10 and len(half) == 20 and set(quarter) <= set(half)
    assert select_clips(ids, 0.5) == half and select_clips(ids, 1.0) == ids
    with pytest.raises(ValueError, match="data_fraction"):
        select_clips(ids, 0.0)


@pytest.mark.parametrize("photometric_first", [False, True])
def test_dataset_items_are_deterministic_and_shaped(tmp_path, photometric_first):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        np.save(tmp_path / f"{c}.npy", rng.integers(0, 256, (120, 40, 40), dtype=np.uint8))
    crop = CropConfig(rho=3, num_frames=4, stride=2, crop_size=32, min_scale=0.5,
                      photometric_first=photometric_first)
    labels = {c: np.tile(np.arange(120, dtype=np.float32), (2, 1)) for c in ("a", "b")}
    ds = TemporalCropDataset(tmp_path, [("a", 120), ("b", 120)], crop, 10, seed=3, labels=labels)
    x, centres, targets = ds[(1, 4)]
    assert x.shape == (3, 1, 4, 32, 32) and x.dtype == torch.float32
    assert centres.shape == (3,) and targets.shape == (3, 2)
    # targets are the labels of each crop's centre frame; centres are mid-span
    assert torch.equal(targets[:, 0], torch.floor(centres))
    x2, centres2, _ = ds[(1, 4)]
    assert torch.equal(x, x2) and torch.equal(centres, centres2)
    x3, _, _ = ds[(2, 4)]  # another epoch draws other crops
    assert not torch.equal(x, x3)
