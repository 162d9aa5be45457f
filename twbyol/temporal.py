"""Temporal-locality metrics of a per-frame embedding (hypothesis H2).

Both metrics look only inside clips and need no labels:

- `spearman_distance_vs_gap`: does cosine distance grow with the frame gap dt?
- `retrieval_mrr`: are a frame's temporal neighbours its nearest neighbours in embedding
  space, ahead of the rest of its clip?

`starts`/`ends` are the clips' row ranges in the concatenated frame axis (MABe22
`frame_number_map`, index.tsv `start`/`end`). Sampling is seeded, so every run evaluated
with the same seed is scored on the very same pairs and queries (paired comparisons).
"""

from __future__ import annotations

import warnings

import numpy as np

from twbyol.probe import unit_rows


def sample_pairs(
    starts: np.ndarray, ends: np.ndarray, horizon: int, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random within-clip frame pairs (i, i + dt) with 1 <= dt <= horizon.

    A clip is drawn with probability proportional to its length, then dt uniformly in
    1..min(horizon, n_frames - 1), then the first frame uniformly where the pair fits. So
    dt is uniform on 1..horizon whenever clips are longer than the horizon (MABe22: 1800).

    Returns rows i (n_pairs,), rows j = i + dt (n_pairs,), dt (n_pairs,), all int64.
    """
    lengths = np.asarray(ends) - np.asarray(starts)
    weight = np.where(lengths >= 2, lengths, 0).astype(float)
    if weight.sum() == 0:
        raise ValueError("no clip has two frames: no frame pairs to sample")
    clip = rng.choice(len(lengths), size=n_pairs, p=weight / weight.sum())
    dt = rng.integers(1, np.minimum(horizon, lengths[clip] - 1) + 1)
    first = np.asarray(starts)[clip] + rng.integers(0, lengths[clip] - dt)
    return first, first + dt, dt


def spearman_distance_vs_gap(
    emb: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    horizon: int = 90,
    n_pairs: int = 20_000,
    seed: int = 0,
) -> tuple[float, dict]:
    """Spearman rho between cosine distance and frame gap over sampled within-clip pairs.

    Args:
        emb: (N_frames, D) embedding, rows in index order (memory-mapped is fine).
        starts, ends: (N_clips,) row range of each clip.
        horizon: largest gap dt considered, in frames (90 = 3 s at 30 fps).
        n_pairs: pairs sampled (see `sample_pairs`).
    Returns:
        rho (NaN when the distances are all equal, e.g. a collapsed embedding) and the curve
        {"dt": [1..horizon], "mean_dist": mean cosine distance per dt, "n": pairs per dt}
        (dt values that drew no pair are left out).
    """
    from scipy.stats import spearmanr  # lazy: scipy.stats costs ~0.5 s to import

    i, j, dt = sample_pairs(starts, ends, horizon, n_pairs, np.random.default_rng(seed))
    dist = 1.0 - np.sum(unit_rows(emb[i]) * unit_rows(emb[j]), axis=1, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN, as we want
        rho = float(spearmanr(dt, dist).statistic) if np.ptp(dist) > 0 else float("nan")
    n = np.bincount(dt, minlength=horizon + 1)[1:]
    total = np.bincount(dt, weights=dist, minlength=horizon + 1)[1:]
    seen = n > 0
    curve = {
        "dt": np.arange(1, horizon + 1)[seen].tolist(),
        "mean_dist": (total[seen] / n[seen]).tolist(),
        "n": n[seen].tolist(),
    }
    return rho, curve


def retrieval_mrr(
    emb: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    k: int = 5,
    n_queries: int = 1000,
    seed: int = 0,
) -> float:
    """Temporal retrieval: filtered mean reciprocal rank of a frame's k temporal neighbours.

    For a query frame q of clip c, the candidates are all other frames of c ranked by
    cosine similarity to q. Its relevant frames are the temporal neighbours
    R = {t : 1 <= |t - q| <= k} (2k frames away from the clip's ends). Each r in R gets the
    *filtered* rank 1 + #{non-relevant candidates more similar than r} (+ half the ties),
    i.e. other relevant frames do not push it down, and the query scores mean_{r in R}
    1/rank(r). MRR is the mean over `n_queries` query frames drawn uniformly from clips with
    at least one non-relevant frame (n_frames >= k + 2).

    1 means every temporal neighbour is retrieved ahead of every farther frame of the
    clip; an embedding blind to time (or a collapsed one: all ties) scores near
    mean(1 / (1 + U * n_nonrelevant)) — small.

    Args:
        emb: (N_frames, D); starts, ends: (N_clips,) row range of each clip.
    Returns:
        MRR in (0, 1].
    """
    starts, ends = np.asarray(starts), np.asarray(ends)
    lengths = ends - starts
    weight = np.where(lengths >= k + 2, lengths, 0).astype(float)
    if weight.sum() == 0:
        raise ValueError(f"no clip has more than {k + 1} frames: temporal retrieval needs k + 2")
    rng = np.random.default_rng(seed)
    clips = rng.choice(len(lengths), size=n_queries, p=weight / weight.sum())
    rr = []
    for c in np.unique(clips):
        u = unit_rows(emb[starts[c] : ends[c]])  # (L, D), one clip
        q = rng.integers(0, lengths[c], size=int(np.sum(clips == c)))
        sims = u[q] @ u.T  # (n_q, L)
        for qi, s in zip(q, sims):
            gap = np.abs(np.arange(lengths[c]) - qi)
            rel = s[(gap >= 1) & (gap <= k)]
            nonrel = np.sort(s[gap > k])
            above = len(nonrel) - np.searchsorted(nonrel, rel, side="right")
            ties = np.searchsorted(nonrel, rel, side="right") - np.searchsorted(
                nonrel, rel, side="left"
            )
            rr.append(np.mean(1.0 / (1.0 + above + 0.5 * ties)))
    return float(np.mean(rr))
