"""Temporal crop sampling, the augmentation and the crop dataset (twbyol.data.sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from twbyol.data.crops import CropConfig
from twbyol.data.sampling import (
    TemporalCropDataset,
    crop_states,
    gap_density,
    matched_pair_starts,
    near_pair_starts,
    sample_crop_starts,
    select_clips,
    state_codes,
)
from twbyol.data.transforms import SeparableGaussianBlur, blur_kernel_size, build_augmentation


@pytest.mark.parametrize("size,kernel", [(56, 11), (224, 45)])
def test_separable_blur_equals_torchvision(size, kernel):
    x = tv_tensors.Video(
        torch.randint(
            0,
            256,
            (8, 1, size, size),
            dtype=torch.uint8,
            generator=torch.Generator().manual_seed(size),
        )
    )
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
    return tv_tensors.Video(
        torch.randint(0, 256, (t, 1, size, size), dtype=torch.uint8, generator=g)
    )


def test_default_augmentation_is_the_crop_first_one_of_before():
    """Defaults (the smoke and synthetic experiments): crop, flip, jitter 0.4 p 0.8, blur p 0.5
    on the crop, drawing the same random numbers in the same order as before the settings."""
    x = _video()
    before = v2.Compose(
        [
            v2.RandomResizedCrop(32, scale=(0.5, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(brightness=0.4, contrast=0.4)], p=0.8),
            v2.RandomApply(
                [SeparableGaussianBlur(max(3, 32 // 10 * 2 + 1), sigma=(0.1, 2.0))], p=0.5
            ),
        ]
    )
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
    common = dict(
        crop_size=32,
        min_scale=1.0,
        max_scale=1.0,
        aspect_ratio=(1.0, 1.0),
        jitter_p=0.0,
        blur_p=1.0,
        blur_sigma=(2.0, 2.0),
    )
    torch.manual_seed(0)
    first = build_augmentation(CropConfig(photometric_first=True, **common))(x)
    torch.manual_seed(0)
    after = build_augmentation(CropConfig(**common))(x)
    blur = SeparableGaussianBlur(blur_kernel_size(64), (2.0, 2.0))  # the kernel of the 64 px frame
    assert torch.equal(first, v2.functional.resize(blur(x), [32, 32], antialias=True))
    assert torch.equal(
        after,
        SeparableGaussianBlur(blur_kernel_size(32), (2.0, 2.0))(
            v2.functional.resize(x, [32, 32], antialias=True)
        ),
    )
    assert (first.int() - after.int()).abs().max() > 20


def test_photometric_first_jitters_contrast_about_the_clip_mean():
    """Two constant frames, 50 and 200: per-frame contrast leaves them as they are; about the
    clip's mean (125), as rho-BYOL's loader does, it moves both by the same factor."""
    x = tv_tensors.Video(
        torch.tensor([50, 200], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 24, 24).clone()
    )
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
    boxes = np.array(
        [[p["height"], p["width"]] for p in (rrc.make_params([frame]) for _ in range(2000))]
    )
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
    crop = CropConfig(
        rho=3,
        num_frames=4,
        stride=2,
        crop_size=32,
        min_scale=0.5,
        photometric_first=photometric_first,
    )
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


def _uniform_pair_gaps(last):
    """Ordered pairs of two uniform starts in [0, last] at each gap, by enumeration."""
    s = np.arange(last + 1)
    return np.bincount(np.abs(s[:, None] - s[None, :]).ravel(), minlength=last + 1)


@pytest.mark.parametrize("kind", ["exponential", "binary", "linear", "inverse_square"])
def test_near_pairs_gap_density_is_the_uniform_gap_density_times_w(kind):
    from twbyol.methods.byol import temporal_weight

    last = 40
    want = (
        _uniform_pair_gaps(last)
        * temporal_weight(torch.arange(last + 1), kind, 8.0).double().numpy()
    )
    np.testing.assert_allclose(gap_density(last, kind, 8.0), want / want.sum(), rtol=1e-12)


def test_near_pairs_draw_their_gaps_from_the_weighting_density():
    """20,000 draws at the synthetic experiment's setting (900-frame clips, 15-frame crops,
    exponential tau = 30): the gap histogram passes a chi-square test against w(dt) x the
    uniform-crop gap density (fixed seed, so the test is deterministic), every pair is
    inside the clip, both orders occur."""
    from scipy.stats import chisquare

    last, n = 885, 20_000
    density = gap_density(last, "exponential", 30.0)
    rng = np.random.default_rng(0)
    pairs = np.array([near_pair_starts(density, rng) for _ in range(n)])
    assert pairs.min() >= 0 and pairs.max() <= last
    assert 0.45 < np.mean(pairs[:, 0] < pairs[:, 1]) < 0.55
    dt = np.abs(pairs[:, 0] - pairs[:, 1])
    edges = np.array([0, 1, 5, 10, 15, 20, 30, 40, 50, 60, 80, 100, 130, 170, last + 1])
    observed = np.histogram(dt, edges)[0]
    expected = np.array([density[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]) * n
    assert expected.min() >= 5  # the test's validity condition
    assert chisquare(observed, expected).pvalue > 0.01
    # against uniform crops: far nearer (mean gap ~ tau, not ~ last / 3)
    assert dt.mean() < 40


def test_crop_states_are_each_crops_majority_behaviour():
    nan = np.nan
    labels = np.array([[0, 0, 1, 1, 1, 0, nan, 0, 1, 1], [1, 1, 0, 0, 0, 1, nan, 1, 0, 0]])
    codes = state_codes(labels, np.arange(10))
    assert codes[6] == -1 and codes[0] == codes[1] != codes[2]
    # crops of 3 frames every 2nd: start 0 sees frames 0, 2, 4 -> (0,1), (1,0), (1,0)
    got = crop_states(labels, 5, 3, 2)
    want = [codes[2], codes[1], codes[2], codes[7], codes[2], codes[7]]
    # start 3: frames 3, 5, 7 -> (1,0), (0,1), (0,1); start 4: 4, 6, 8 -> (1,0), -, (1,0)
    assert got.tolist() == [int(w) for w in want]
    assert crop_states(np.full((2, 10), nan), 5, 3, 2).tolist() == [-1] * 6


@pytest.mark.parametrize("same", [True, False])
def test_the_controls_pairs_differ_from_uniform_crops_only_in_behaviour(same):
    """On the benchmark's own clips (motion generator): the positive control's crop pairs
    always show one behaviour, the anti control's never; and their gaps follow uniform crops'
    gap distribution (two-sample Kolmogorov-Smirnov against uniform pairs, p > 0.01, and
    mean gaps within 5 %)."""
    from scipy.stats import ks_2samp

    from twbyol.synthetic.dataset import simulated_labels

    last = 900 - 15  # a crop of 8 frames every 2nd spans 15
    labels = simulated_labels(12, 900, seed=4)
    density = gap_density(last, "uniform", 30.0)
    rng = np.random.default_rng(0)
    gaps, uniform = [], []
    for y in labels:
        codes = crop_states(y, last, 8, 2)
        for _ in range(400):
            a, b = matched_pair_starts(codes, density, same, rng)
            assert (codes[a] == codes[b]) == same and codes[a] >= 0 and codes[b] >= 0
            gaps.append(abs(int(a) - int(b)))
            u = rng.integers(0, last + 1, 2)
            uniform.append(abs(int(u[0]) - int(u[1])))
    assert ks_2samp(gaps, uniform).pvalue > 0.01
    assert np.mean(gaps) == pytest.approx(np.mean(uniform), rel=0.05)


def test_near_pairs_settings_are_checked():
    with pytest.raises(ValueError, match="rho = 2"):
        CropConfig(rho=3, policy="near_pairs")
    with pytest.raises(ValueError, match="no density"):
        CropConfig(policy="near_pairs", density="permuted")
    with pytest.raises(ValueError, match="near_pairs"):
        sample_crop_starts(900, 2, 15, "near_pairs", 60, np.random.default_rng(0))


@pytest.mark.parametrize("density", ["exponential", "oracle", "anti_oracle"])
def test_near_pairs_dataset_items_are_deterministic(tmp_path, density):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.integers(0, 256, (300, 24, 24), dtype=np.uint8))
    labels = {"a": ((np.arange(300) // 40) % 2).astype(np.float32)[None]}  # states of 40 frames
    crop = CropConfig(
        rho=2, num_frames=4, stride=2, crop_size=16, policy="near_pairs", density=density, tau=10.0
    )
    ds = TemporalCropDataset(tmp_path, [("a", 300)], crop, 50, seed=1, labels=labels)
    items = [ds[(0, k)] for k in range(50)]
    again = TemporalCropDataset(tmp_path, [("a", 300)], crop, 50, seed=1, labels=labels)[(0, 7)]
    assert torch.equal(items[7][0], again[0]) and torch.equal(items[7][1], again[1])
    dt = np.array([abs(float(c[0] - c[1])) for _, c, _ in items])
    if density == "exponential":
        assert dt.mean() < 30  # uniform crops: ~ 100
    else:  # the two crops' majority states agree (oracle) or differ (anti_oracle)
        codes = crop_states(labels["a"], 300 - 7, 4, 2)
        starts = [(c - 3).int().tolist() for _, c, _ in items]  # centre = start + 3
        assert all((codes[a] == codes[b]) == (density == "oracle") for a, b in starts)


def test_times_in_seconds_follow_each_clips_frame_rate(tmp_path):
    """Two clips filmed at 15 and 60 fps: with a run's times in seconds, the centres reach the
    loss in seconds (frame / fps), a crop gap of 1 s spans 15 and 60 frames, and a pair 1 s
    apart weighs exp(-1 / tau_s) at either rate."""
    from twbyol.methods.byol import temporal_weight

    for c in ("slow", "fast"):
        np.save(tmp_path / f"{c}.npy", np.zeros((600, 16, 16), np.uint8))
    clips, fps = [("slow", 600), ("fast", 600)], {"slow": 15.0, "fast": 60.0}
    kw = dict(rho=2, num_frames=2, stride=1, crop_size=8, min_scale=0.5)
    in_frames = TemporalCropDataset(tmp_path, clips, CropConfig(**kw), 40, seed=1, fps=fps)
    in_s = TemporalCropDataset(
        tmp_path, clips, CropConfig(**kw), 40, seed=1, fps=fps, time_unit="seconds"
    )
    for k, (cid, _) in enumerate(clips):
        _, cf, _ = in_frames[(0, k)]
        _, cs, _ = in_s[(0, k)]
        np.testing.assert_allclose(cs.numpy() * fps[cid], cf.numpy(), rtol=1e-6)
        dt_s = (cs[0] - cs[1]).abs()
        w = temporal_weight(dt_s[None], "exponential", 0.5)
        np.testing.assert_allclose(w.numpy(), np.exp(-dt_s.numpy() / 0.5), rtol=1e-6)
    gapped = TemporalCropDataset(
        tmp_path, clips, CropConfig(**kw, policy="max_gap", gap_s=1.0), 40, seed=2, fps=fps
    )
    rng = np.random.default_rng(0)
    for cid, n in clips:
        dts = [abs(int(np.diff(gapped.starts(cid, n, 2, rng))[0])) for _ in range(400)]
        assert max(dts) <= fps[cid] and max(dts) > 0.8 * fps[cid], (cid, max(dts))
    # near_pairs at tau_s: the density of each clip at tau_s x its fps frames
    near = TemporalCropDataset(
        tmp_path,
        clips,
        CropConfig(**kw, policy="near_pairs", density="exponential", tau=0.5, tau_unit="seconds"),
        40,
        seed=2,
        fps=fps,
    )
    mean_dt = {
        cid: np.mean([abs(int(np.diff(near.starts(cid, n, 2, rng))[0])) for _ in range(2000)])
        for cid, n in clips
    }
    assert set(near._gap_density) == {(598, "exponential", 7.5), (598, "exponential", 30.0)}
    assert 3.0 < mean_dt["fast"] / mean_dt["slow"] < 5.0  # ~ 60 / 15
    with pytest.raises(ValueError, match="need each clip's frame rate; none for \\['slow'"):
        TemporalCropDataset(tmp_path, clips, CropConfig(**kw), 4, seed=0, time_unit="seconds")


def test_run_times_in_seconds_resolve_and_mixed_units_fail():
    from twbyol.experiment import run_config

    e = {
        "training": {},
        "crop": {"gap": 60},
        "backbone": {"name": "tiny"},
        "pretrain_dataset": "lab",
        "datasets": {"lab": {}},
        "runs": {
            "tw": {"method": "byol", "weighting": "exponential", "tau_s": 0.5},
            "tc": {"method": "time_contrast", "window_s": 1.0},
            "bad": {"method": "byol", "weighting": "exponential", "tau_s": 0.5, "window": 30},
        },
    }
    cfg = run_config("x", e, "tw", 0)
    assert (cfg["tau"], cfg["time_unit"]) == (0.5, "seconds") and "tau_s" not in cfg
    assert run_config("x", e, "tc", 0)["window"] == 1.0
    with pytest.raises(ValueError, match=r"runs.bad.window: the run gives tau_s in seconds"):
        run_config("x", e, "bad", 0)
    e["crop"]["gap_s"] = 2.0
    with pytest.raises(ValueError, match=r"crop: give gap \(frames\) or gap_s, not both"):
        run_config("x", e, "tw", 0)
