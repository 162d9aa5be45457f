"""The batched augmentation on the training device (twbyol.data.augment) is the loader's:
the same parameters drawn for every sample, torchvision's operations (its GPU form of the
resize), deterministic, and distributed as the crop settings say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from twbyol.data.augment import P, ParamDrawer, augment_batch, blur_matrices, resample_matrices
from twbyol.data.crops import CropConfig
from twbyol.data.sampling import TemporalCropDataset
from twbyol.data.transforms import SeparableGaussianBlur, blur_kernel_size, build_augmentation
from twbyol.models.backbones import STD


def frames_dir(tmp_path, n_clips=3, n_frames=120, h=40, w=48):
    """Clips of smooth moving blobs plus noise, as extract-frames writes them."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    clips = []
    for c in range(n_clips):
        t = np.arange(n_frames)[:, None, None]
        blob = 200 * np.exp(-(((xx - 10 - t * 0.2) ** 2 + (yy - 20) ** 2) / 40.0))
        arr = np.clip(blob + 30 + rng.normal(0, 12, (n_frames, h, w)), 0, 255).astype(np.uint8)
        np.save(tmp_path / f"c{c}.npy", arr)
        clips.append((f"c{c}", n_frames))
    return tmp_path, clips


def both_paths(tmp_path, crop, n=48, **frames):
    d, clips = frames_dir(tmp_path, **frames)
    loader = TemporalCropDataset(d, clips, crop, n, seed=3)
    device = TemporalCropDataset(d, clips, crop, n, seed=3, augment_on="device")
    keys = [(1, k) for k in range(n)]
    a = torch.stack([loader[k][0] for k in keys])
    items = [device[k] for k in keys]
    raw = torch.stack([i[0] for i in items])
    params = torch.stack([i[1] for i in items])
    b = augment_batch(raw, params, crop)
    # back to grey levels: the inputs are (x / 255 - mean) / std
    return a, b, raw, params, items


def grey_diff(a, b):
    return ((a - b) * STD * 255).abs().round()


@pytest.mark.parametrize("photometric_first", [False, True])
def test_without_a_resize_the_device_path_is_the_loader_path_exactly(tmp_path, photometric_first):
    """Crops of the whole frame at its own size: no resampling, so every other operation
    (flip, jitter in both orders, blur, each applied or not) must agree to the grey level,
    which needs the same parameters drawn for every crop."""
    crop = CropConfig(
        rho=2,
        num_frames=4,
        stride=3,
        crop_size=40,
        min_scale=1.0,
        max_scale=1.0,
        aspect_ratio=(1.0, 1.0),  # the whole 40 x 40 frame
        jitter_p=0.5,
        photometric_first=photometric_first,
    )
    a, b, raw, params, _ = both_paths(tmp_path, crop, w=40)
    p = params.reshape(-1, len(P))
    assert (p[:, P["height"]] == 40).all() and (p[:, P["width"]] == 40).all()
    for flag in ("flip", "jitter", "brightness_first", "blur"):  # every branch taken both ways
        assert 0 < p[:, P[flag]].mean() < 1, flag
    assert grey_diff(a, b).max() == 0


@pytest.mark.parametrize("photometric_first", [False, True])
def test_with_resizes_the_paths_differ_only_by_the_cpu_uint8_resize(tmp_path, photometric_first):
    crop = CropConfig(rho=2, num_frames=4, stride=3, crop_size=32, min_scale=0.1)
    crop.photometric_first = photometric_first
    a, b, *_ = both_paths(tmp_path, crop)
    d = grey_diff(a, b)
    assert a.shape == b.shape == (48, 2, 1, 4, 32, 32)
    # torchvision resizes uint8 in fixed point on a CPU (and in float on a GPU, as here):
    # one grey level on ~10-18 % of pixels, a little more after the jitter's amplification
    assert (d > 0).float().mean() < 0.25
    assert (d > 1).float().mean() < 0.02
    assert d.max() <= 4


def test_resample_matrices_are_torchs_antialiased_bilinear_resize():
    torch.manual_seed(0)
    x = torch.rand(30, 3, 64, 50) * 255
    top, h = torch.randint(0, 30, (30,)), torch.randint(3, 34, (30,))
    left, w = torch.randint(0, 20, (30,)), torch.randint(3, 30, (30,))
    for size in (16, 40):  # down- and upscaling
        rows, cols = resample_matrices(top, h, 64, size), resample_matrices(left, w, 50, size)
        mine = rows[:, None] @ x @ cols[:, None].transpose(-1, -2)
        for n in range(30):
            patch = x[n : n + 1, :, top[n] : top[n] + h[n], left[n] : left[n] + w[n]]
            ref = F.interpolate(
                patch, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )[0]
            assert torch.allclose(mine[n], ref, atol=2e-3), (n, size)


def test_blur_matrices_are_the_separable_blur():
    torch.manual_seed(0)
    x = torch.rand(6, 2, 30, 36) * 255
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 1.0], dtype=torch.float64)
    on = torch.tensor([1, 1, 1, 1, 1, 0.0], dtype=torch.float64)
    k = blur_kernel_size(30)
    bh, bw = blur_matrices(sigma, on, 30, k), blur_matrices(sigma, on, 36, k)
    mine = bh[:, None] @ x @ bw[:, None].transpose(-1, -2)
    blur = SeparableGaussianBlur(kernel_size=k)
    for n in range(5):
        ref = blur.transform(x[n], {"sigma": float(sigma[n])})
        assert torch.allclose(mine[n], ref, atol=1e-3), n
    assert torch.equal(mine[5], x[5])  # not drawn: the identity, exactly


def test_the_same_key_gives_the_same_batch_and_workers_do_not_matter(tmp_path):
    crop = CropConfig(rho=3, num_frames=4, stride=2, crop_size=24, min_scale=0.2)
    d, clips = frames_dir(tmp_path)
    ds = TemporalCropDataset(d, clips, crop, 16, seed=5, augment_on="device")
    keys = [(2, k) for k in range(16)]
    one = [ds[k] for k in keys]
    again = [ds[k] for k in reversed(keys)][::-1]
    for x, y in zip(one, again):
        assert all(torch.equal(u, v) for u, v in zip(x, y))
    loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=keys, num_workers=2)
    batches = list(loader)
    raw = torch.cat([b[0] for b in batches])
    params = torch.cat([b[1] for b in batches])
    assert torch.equal(raw, torch.stack([x[0] for x in one]))
    assert torch.equal(params, torch.stack([x[1] for x in one]))
    assert raw.dtype == torch.uint8 and raw.shape == (16, 3, 4, 40, 48)  # only sliced
    out1, out2 = augment_batch(raw, params, crop), augment_batch(raw, params, crop)
    assert torch.equal(out1, out2)
    other = TemporalCropDataset(d, clips, crop, 16, seed=6, augment_on="device")
    assert not torch.equal(other[keys[0]][1], one[0][1])  # another seed, other draws


def test_drawn_parameters_follow_the_crop_settings():
    """Over 4,000 crops of a 120 x 160 frame: each coin at its probability, each factor
    uniform on its range, the crop's area and aspect ratio within theirs (binomial and
    uniform means within 4.5 standard errors)."""
    crop = CropConfig(
        crop_size=32,
        min_scale=0.2,
        max_scale=0.9,
        brightness=0.4,
        contrast=0.3,
        jitter_p=0.8,
        blur_p=0.5,
        blur_sigma=(0.1, 2.0),
    )
    draw = ParamDrawer(build_augmentation(crop))
    torch.manual_seed(0)
    p = torch.stack([draw(120, 160) for _ in range(4000)])
    n = len(p)

    def near(values, mean, sd):
        assert abs(float(values.mean()) - mean) < 4.5 * sd / n**0.5, (float(values.mean()), mean)

    for flag, prob in (("flip", 0.5), ("jitter", 0.8), ("blur", 0.5)):
        near(p[:, P[flag]], prob, (prob * (1 - prob)) ** 0.5)
    on = p[:, P["jitter"]] > 0
    near(p[on, P["brightness_first"]], 0.5, 0.5)
    for name, lo, hi in (("brightness", 0.6, 1.4), ("contrast", 0.7, 1.3)):
        v = p[on, P[name]]
        assert lo <= v.min() and v.max() <= hi
        near(v, (lo + hi) / 2, (hi - lo) / 12**0.5)
        assert (p[~on, P[name]] == 1).all()  # the identity where not applied
    blurred = p[:, P["blur"]] > 0
    s = p[blurred, P["sigma"]]
    assert 0.1 <= s.min() and s.max() <= 2.0
    near(s, 1.05, 1.9 / 12**0.5)
    area = p[:, P["height"]] * p[:, P["width"]] / (120 * 160)
    aspect = p[:, P["width"]] / p[:, P["height"]]
    # rounding to whole pixels moves a crop's area and aspect a little past its draw
    assert area.min() > 0.19 and area.max() < 0.91
    assert aspect.min() > 0.74 and aspect.max() < 1.35
    inside = (p[:, P["top"]] + p[:, P["height"]] <= 120) & (
        p[:, P["left"]] + p[:, P["width"]] <= 160
    )
    assert inside.all() and (p[:, [P["top"], P["left"]]] >= 0).all()


def test_a_bad_augment_on_fails_naming_it(tmp_path):
    d, clips = frames_dir(tmp_path)
    with pytest.raises(ValueError, match="augment_on"):
        TemporalCropDataset(d, clips, CropConfig(crop_size=24), 8, seed=0, augment_on="gpu")
