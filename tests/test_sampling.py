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


def test_dataset_items_are_deterministic_and_shaped(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        np.save(tmp_path / f"{c}.npy", rng.integers(0, 256, (120, 40, 40), dtype=np.uint8))
    crop = CropConfig(rho=3, num_frames=4, stride=2, crop_size=32, min_scale=0.5)
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
