"""Temporal-locality metrics: an embedding that encodes time scores perfectly, a shuffled one does not."""

from __future__ import annotations

import numpy as np

from twbyol.temporal import retrieval_mrr, sample_pairs, spearman_distance_vs_gap

N_CLIPS, LENGTH = 6, 400
STARTS = np.arange(N_CLIPS) * LENGTH
ENDS = STARTS + LENGTH


def _time_embedding() -> np.ndarray:
    """Each frame at angle t * 0.01 rad on a circle: cosine distance 1 - cos(0.01 dt) grows
    strictly with the gap dt up to dt = 314, so it is a perfect (monotone) code of time."""
    t = np.concatenate([np.arange(LENGTH)] * N_CLIPS) * 0.01
    return np.stack([np.cos(t), np.sin(t)], axis=1).astype(np.float32)


def test_pairs_stay_inside_clips_and_cover_the_horizon():
    i, j, dt = sample_pairs(STARTS, ENDS, horizon=90, n_pairs=5000, rng=np.random.default_rng(0))
    assert np.all(j - i == dt) and dt.min() == 1 and dt.max() == 90
    assert np.all(np.searchsorted(ENDS, i, side="right") == np.searchsorted(ENDS, j, side="right"))


def test_time_embedding_gives_rho_one_and_shuffled_rho_near_zero():
    emb = _time_embedding()
    rho, curve = spearman_distance_vs_gap(emb, STARTS, ENDS, horizon=90, n_pairs=5000)
    assert rho > 0.999
    assert curve["dt"][0] == 1 and np.all(np.diff(curve["mean_dist"]) > 0)
    shuffled = emb[np.random.default_rng(1).permutation(len(emb))]
    rho_shuffled, _ = spearman_distance_vs_gap(shuffled, STARTS, ENDS, horizon=90, n_pairs=5000)
    assert abs(rho_shuffled) < 0.05


def test_collapsed_embedding_has_undefined_rho():
    rho, _ = spearman_distance_vs_gap(np.ones((N_CLIPS * LENGTH, 4)), STARTS, ENDS, n_pairs=500)
    assert np.isnan(rho)


def test_retrieval_mrr_is_one_for_time_and_small_for_shuffled():
    emb = _time_embedding()
    assert retrieval_mrr(emb, STARTS, ENDS, k=5, n_queries=200) == 1.0
    shuffled = emb[np.random.default_rng(2).permutation(len(emb))]
    assert retrieval_mrr(shuffled, STARTS, ENDS, k=5, n_queries=200) < 0.1
    # All ties (collapsed): every neighbour sits mid-pack, far from rank 1.
    assert retrieval_mrr(np.ones_like(emb), STARTS, ENDS, k=5, n_queries=50) < 0.02
