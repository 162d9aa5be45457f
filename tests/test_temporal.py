"""Temporal-locality metrics measure the network, not its input window: window-averaged noise
scores chance, an embedding whose distance grows with the gap scores high."""

from __future__ import annotations

import numpy as np
import pytest

from twbyol.temporal import (
    CropPolicy,
    Window,
    clip_gap_range,
    gap_range,
    retrieval_mrr,
    sample_pairs,
    spearman_distance_vs_gap,
)

# (experiment, clip length, clips, crop num_frames, crop stride, embedding window_stride):
# config/config.yaml's smoke, synthetic and mabe22 settings, at their clips' real length
SETTINGS = [
    ("smoke", 300, 12, 8, 2, 1),
    ("synthetic", 900, 8, 8, 2, 2),
    ("mabe22", 1800, 6, 8, 9, 4),
]
DIM = 32


def _ranges(n_clips: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(n_clips) * length
    return starts, starts + length


def _window_average(x: np.ndarray, win: Window) -> np.ndarray:
    """(T, D) per-frame input -> (T, D) embedding as the embed stage builds it from a network
    that averages its input window: windows of twbyol.features.window_indices' frames centred
    every window_stride frames (clipped at the ends), each frame taking its nearest centre's."""
    n = len(x)
    centres = np.arange(0, n, win.window_stride)
    idx = np.clip(centres[:, None] + win.offsets[None, :], 0, n - 1)
    nearest = np.clip(np.round(np.arange(n) / win.window_stride).astype(int), 0, len(centres) - 1)
    return x[idx].mean(axis=1)[nearest]


def _clips(n_clips: int, length: int, make, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([make(rng, length) for _ in range(n_clips)]).astype(np.float32)


def _ar1(rng: np.random.Generator, length: int, tau: float = 300.0) -> np.ndarray:
    """A slow random walk (Ornstein-Uhlenbeck, correlation time tau frames): cosine distance
    grows with the gap, then saturates."""
    a = np.exp(-1.0 / tau)
    x = np.empty((length, DIM))
    x[0] = rng.standard_normal(DIM)
    steps = rng.standard_normal((length, DIM)) * np.sqrt(1 - a * a)
    for t in range(1, length):
        x[t] = a * x[t - 1] + steps[t]
    return x


def _half_turn(rng: np.random.Generator, length: int) -> np.ndarray:
    """A sinusoidal time code: angle pi * t / length, so 1 - cos grows strictly with the gap
    over the whole clip."""
    t = np.arange(length) * np.pi / length
    return np.stack([np.cos(t), np.sin(t)], axis=1)


@pytest.mark.parametrize("nf, stride, w", [(8, 2, 1), (8, 2, 2), (8, 9, 4), (1, 1, 1), (5, 3, 3)])
def test_window_is_the_embed_stages(nf, stride, w):
    from twbyol.features import window_indices

    n = 200
    win = Window(nf, stride, w)
    idx, nearest = window_indices(n, nf, stride, w)
    own_idx, own_nearest = win.rows(n)
    assert np.array_equal(own_idx, idx) and np.array_equal(own_nearest, nearest)
    centres = np.arange(0, n, w)
    inside = (idx == centres[:, None] + win.offsets).all(axis=1)  # not clipped at an end
    assert np.array_equal(centres[inside], win.centres(n))
    assert np.array_equal(
        nearest[win.centres(n)], win.centres(n) // w
    )  # the centre's row is its window's
    assert win.span == (nf - 1) * stride + 1 and win.min_gap % w == 0
    # windows share or interleave input frames exactly when their centres are closer than `extent`
    first, last = idx[inside].min(axis=1), idx[inside].max(axis=1)
    gap = np.abs(win.centres(n)[:, None] - win.centres(n)[None, :])
    disjoint = (last[:, None] < first[None, :]) | (last[None, :] < first[:, None])
    assert np.array_equal(disjoint, gap >= win.extent)


def test_the_evaluation_sees_the_crops_the_sampler_draws_when_the_config_leaves_them_out():
    """An experiment whose crop block names none of the keys: the evaluation's view of the
    crops is CropConfig's defaults, which the trainer's sampler uses too (one home)."""
    from twbyol.data.crops import CropConfig
    from twbyol.experiment import evaluation_config

    ev = evaluation_config({"crop": {}})
    c = CropConfig()
    assert (
        ev["num_frames"],
        ev["frame_stride"],
        ev["crop_policy"],
        ev["crop_rho"],
        ev["crop_gap"],
    ) == (c.num_frames, c.stride, c.policy, c.rho, c.gap)


@pytest.mark.parametrize(
    "policy, rho", [("uniform", 2), ("max_gap", 2), ("max_gap", 3), ("min_gap", 3)]
)
def test_crop_gaps_are_the_samplers_range(policy, rho):
    from twbyol.data.sampling import sample_crop_starts

    n, span, gap = 300, 15, 60
    rng = np.random.default_rng(0)
    starts = np.stack([sample_crop_starts(n, rho, span, policy, gap, rng) for _ in range(4000)])
    a, b = np.triu_indices(rho, 1)
    d = np.abs(starts[:, a] - starts[:, b])
    lo, hi = CropPolicy(policy, rho, gap).gaps(n, span)
    assert d.min() >= lo and d.max() <= hi
    assert d.min() <= lo + 2 and d.max() >= hi - 0.05 * hi  # and the sampler reaches both ends


def test_pairs_are_windows_with_disjoint_inputs_over_the_crop_gaps():
    win, length = Window(8, 2, 2), 900
    starts, ends = _ranges(5, length)
    i, j, dt = sample_pairs(starts, ends, 20_000, np.random.default_rng(0), win)
    lo, hi = gap_range(ends - starts, win, CropPolicy())
    assert (lo, hi) == (16, 884)  # extent 15 -> 16 on the stride-2 grid; 900 - span 15 -> 884
    clip = np.searchsorted(ends, i, side="right")
    assert np.array_equal(clip, np.searchsorted(ends, j, side="right"))
    assert np.all(j - i == dt) and np.all(dt % 2 == 0) and dt.min() == lo and dt.max() == hi
    for rows in (i, j):
        off = rows - starts[clip]
        assert np.all(np.isin(off, win.centres(length)))  # interior window centres only
    # max_gap crops of rho 2 meet only within `gap`
    _, lo, hi = clip_gap_range(length, win, CropPolicy("max_gap", 2, 60))
    assert (lo, hi) == (16, 60)


@pytest.mark.parametrize("name, length, n_clips, nf, stride, w", SETTINGS)
def test_window_averaged_noise_scores_chance_and_a_time_code_does_not(
    name, length, n_clips, nf, stride, w
):
    win = Window(nf, stride, w)
    starts, ends = _ranges(n_clips, length)

    def scores(emb):
        rho, _ = spearman_distance_vs_gap(emb, starts, ends, win)
        mrr, info = retrieval_mrr(emb, starts, ends, window=win)
        return rho, mrr, info["chance"]

    iid = _clips(n_clips, length, lambda r, n: r.standard_normal((n, DIM)), 0)
    windowed = _clips(
        n_clips, length, lambda r, n: _window_average(r.standard_normal((n, DIM)), win), 1
    )
    # a network that sees every frame of its span: a box filter of the crop span
    box = np.ones(win.span) / win.span
    boxed = _clips(
        n_clips,
        length,
        lambda r, n: np.stack(
            [np.convolve(c, box, "same") for c in r.standard_normal((n, DIM)).T], axis=1
        ),
        2,
    )
    rho_iid, mrr_iid, chance = scores(iid)
    assert abs(rho_iid) <= 0.05 and abs(mrr_iid - chance) <= 0.02
    for noise in (windowed, boxed):
        rho, mrr, _ = scores(noise)
        assert abs(rho) <= 0.05, name
        assert abs(mrr - mrr_iid) <= 0.05 and abs(mrr - chance) <= 0.02, name

    rho, mrr, _ = scores(_clips(n_clips, length, _half_turn, 3))
    assert rho > 0.99 and mrr == pytest.approx(1.0)
    walk = _clips(n_clips, length, lambda r, n: _window_average(_ar1(r, n), win), 4)
    rho, mrr, _ = scores(walk)
    assert rho > 0.4 and mrr > chance + 0.5
    # the walk under twice its own scale of window-averaged noise: weaker, still clear
    noisy = walk + 2 * windowed
    rho, mrr, _ = scores(noisy)
    assert rho > 0.3 and mrr > chance + 0.05


def test_shuffled_collapsed_and_too_short():
    starts, ends = _ranges(6, 400)
    emb = _clips(6, 400, _half_turn, 0)
    shuffled = emb[np.random.default_rng(1).permutation(len(emb))]
    rho, curve = spearman_distance_vs_gap(shuffled, starts, ends, n_pairs=5000)
    assert abs(rho) < 0.05 and sum(curve["n"]) == 5000 and len(curve["dt"]) == 30
    assert curve["dt"][0] == 7.5 and np.all(np.diff(curve["dt"]) > 0)  # gaps 1-14, 15-28, ...
    mrr, info = retrieval_mrr(shuffled, starts, ends, n_queries=300)
    assert abs(mrr - info["chance"]) < 0.02 and info["n_queries"] == 300
    rho, curve = spearman_distance_vs_gap(emb, starts, ends, n_pairs=5000)
    assert rho > 0.999 and np.all(np.diff(curve["mean_dist"]) > 0)
    # collapsed: no rho, and every neighbour tied mid-pack, below chance
    assert np.isnan(spearman_distance_vs_gap(np.ones_like(emb), starts, ends, n_pairs=500)[0])
    mrr, info = retrieval_mrr(np.ones_like(emb), starts, ends, n_queries=50)
    assert mrr < info["chance"]
    # clips shorter than two disjoint windows: a clear error, not a silent NaN
    with pytest.raises(ValueError, match="disjoint inputs"):
        spearman_distance_vs_gap(emb, starts, starts + 40, Window(8, 9, 4))
    with pytest.raises(ValueError, match="disjoint inputs"):
        retrieval_mrr(emb, starts, starts + 40, window=Window(8, 9, 4))
