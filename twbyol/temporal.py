"""Temporal-locality metrics of a per-frame embedding (hypothesis H2), measured on the network
and not on its input window.

Each frame's embedding comes from a window of input frames (the embed stage: `num_frames`
frames every `stride` source frames, centred on every `window_stride`-th frame; every frame
takes the embedding of its nearest window centre). Two frames whose windows overlap share
input, so they look alike whatever the network learned: an embedding of i.i.d. noise averaged
over the window scores Spearman rho 0.4 and retrieval MRR 0.96 if such pairs count. So both
metrics here compare only *windows*:

- the rows at the window centres (frames 0, W, 2W, ... of a clip: the distinct embeddings,
  one per network evaluation), and only the centres whose window lies wholly inside the clip
  (a clipped window repeats its edge frame: an input artefact);
- only pairs of centres whose input windows are disjoint (centre gap >= the window's
  `extent`), over the gaps the training crops span (`CropPolicy.gaps`), so gap and window
  are the same ones the loss saw.

`spearman_distance_vs_gap`: does cosine distance grow with the gap? `retrieval_mrr`: are a
query window's nearest temporal neighbours beyond its window its nearest neighbours in
embedding space? Either is at chance (rho ~ 0, MRR ~ `chance`) for any embedding that
carries no information about time beyond its own window.

`starts`/`ends` are the clips' row ranges in the concatenated frame axis (MABe22
`frame_number_map`, index.tsv `start`/`end`). Sampling is seeded, so every run evaluated
with the same seed and settings is scored on the very same pairs and queries (paired
comparisons).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from twbyol.data.crops import CropConfig
from twbyol.probe import unit_rows


@dataclass(frozen=True)
class Window:
    """The input window of each frame's embedding, as the embed stage builds it
    (twbyol.features.window_indices; tests/test_temporal.py checks the two agree).

    num_frames frames every `stride` source frames (the training crop: span
    (num_frames - 1) * stride + 1), centred on every `window_stride`-th frame. (1, 1, 1) is an
    embedding of each frame on its own.
    """

    num_frames: int = 1
    stride: int = 1
    window_stride: int = 1

    def __post_init__(self) -> None:
        if min(self.num_frames, self.stride, self.window_stride) < 1:
            raise ValueError(
                f"window: num_frames, stride and window_stride must be >= 1, got {self}"
            )

    @property
    def span(self) -> int:
        """Frames a training crop covers (twbyol.data.sampling: `span`)."""
        return (self.num_frames - 1) * self.stride + 1

    @property
    def offsets(self) -> np.ndarray:
        """(num_frames,) frame offsets of a window from its centre (embed.window_indices)."""
        k = np.arange(self.num_frames)
        return np.round((k - (self.num_frames - 1) / 2) * self.stride).astype(np.int64)

    @property
    def extent(self) -> int:
        """Frames from a window's first input frame to its last: span, or span + 1 where the
        centred offsets round outwards (num_frames 8, stride 9: -32..32, 65 frames). Two
        windows share input frames, or interleave, when their centres are closer than this."""
        off = self.offsets
        return int(off[-1] - off[0] + 1)

    @property
    def min_gap(self) -> int:
        """Smallest centre gap of two windows with disjoint inputs (a multiple of
        window_stride: the gaps between centres)."""
        w = self.window_stride
        return -(-self.extent // w) * w

    def rows(self, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame indices of every window of a clip of n_frames (n_windows, num_frames),
        clipped to the clip, and each frame's window (n_frames,): the embed stage's
        (twbyol.features.window_indices, which tests/test_temporal.py checks this against)."""
        centres = np.arange(0, n_frames, self.window_stride)
        idx = np.clip(centres[:, None] + self.offsets[None, :], 0, n_frames - 1)
        nearest = np.round(np.arange(n_frames) / self.window_stride).astype(np.int64)
        return idx, np.clip(nearest, 0, len(centres) - 1)

    def centres(self, n_frames: int) -> np.ndarray:
        """Frame offsets, within a clip of n_frames, of the centres of the windows that lie
        wholly inside it (the embed stage clips the others at the clip's ends)."""
        c = np.arange(0, n_frames, self.window_stride)
        off = self.offsets
        return c[(c + off[0] >= 0) & (c + off[-1] <= n_frames - 1)]


@dataclass(frozen=True)
class CropPolicy:
    """How pretraining drew the crops of a sample (twbyol.data.sampling.sample_crop_starts):
    which centre distances the loss saw."""

    policy: str = CropConfig.policy  # the sampler's defaults (twbyol.data.crops)
    rho: int = CropConfig.rho
    gap: int = CropConfig.gap

    def gaps(self, n_frames: int, span: int) -> tuple[int, int]:
        """Smallest and largest centre distance of two crops of `span` frames drawn from a clip
        of n_frames (hi < lo: the clip holds no crop).

        uniform: independent uniform starts in [0, n_frames - span], so 0 .. n_frames - span.
        max_gap: every start within `gap` of the first crop's: up to `gap` (rho = 2) or
        2 * `gap` (two later crops on either side of the first). min_gap: consecutive crops
        at least g = min(gap, (n_frames - span) // (rho - 1)) apart: g .. n_frames - span.
        """
        last = n_frames - span
        if last < 0:
            return 0, -1
        if self.policy == "uniform":
            return 0, last
        if self.policy == "max_gap":
            return 0, min(last, self.gap if self.rho <= 2 else 2 * self.gap)
        if self.policy == "min_gap":
            return min(self.gap, last // max(self.rho - 1, 1)), last
        raise ValueError(
            f"crop policy: unknown {self.policy!r}; expected uniform, max_gap, min_gap"
        )


def clip_gap_range(n_frames: int, window: Window, crop: CropPolicy) -> tuple[np.ndarray, int, int]:
    """The comparable windows of one clip and the gaps the metrics use there.

    Returns the clip's interior window centres (`Window.centres`) and the gap range [lo, hi]
    (multiples of window_stride): at least `Window.min_gap` (disjoint inputs) and within the
    training crops' gaps (`CropPolicy.gaps`) and the clip. hi < lo: no pair in this clip.
    """
    c = window.centres(n_frames)
    crop_lo, crop_hi = crop.gaps(n_frames, window.span)
    w = window.window_stride
    lo = -(-max(crop_lo, window.min_gap) // w) * w
    hi = min(crop_hi, int(c[-1] - c[0]) if len(c) else -1) // w * w
    return c, lo, hi


def gap_range(lengths: np.ndarray, window: Window, crop: CropPolicy) -> tuple[int, int]:
    """[lo, hi] of the gaps over all clips of `lengths` ((0, -1) when no clip has a pair)."""
    ranges = [clip_gap_range(int(n), window, crop)[1:] for n in np.unique(lengths)]
    ranges = [(lo, hi) for lo, hi in ranges if hi >= lo]
    if not ranges:
        return 0, -1
    return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)


def _no_pairs(window: Window, crop: CropPolicy, lengths: np.ndarray) -> ValueError:
    return ValueError(
        f"no clip holds two windows with disjoint inputs within the training crops' gaps "
        f"(window extent {window.extent} frames, window stride {window.window_stride}, crop "
        f"policy {crop.policy}, clips of {int(np.min(lengths))}-{int(np.max(lengths))} frames)"
    )


def sample_pairs(
    starts: np.ndarray,
    ends: np.ndarray,
    n_pairs: int,
    rng: np.random.Generator,
    window: Window = Window(),
    crop: CropPolicy = CropPolicy(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random within-clip pairs of window centres (i, i + dt) with disjoint inputs.

    A clip is drawn with probability proportional to its number of interior windows (among
    clips with a pair), then dt uniformly among the multiples of window_stride in its
    `clip_gap_range`, then the first centre uniformly where the pair fits. So every gap the
    metric covers weighs the same, short or long.

    Returns rows i (n_pairs,), rows j = i + dt (n_pairs,), dt (n_pairs,), all int64.
    """
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    lengths = ends - starts
    w = window.window_stride
    first_c, n_c, lo, hi = (np.zeros(len(lengths), np.int64) for _ in range(4))
    for k, n in enumerate(lengths):
        c, lo[k], hi[k] = clip_gap_range(int(n), window, crop)
        if len(c):
            first_c[k], n_c[k] = c[0], len(c)
    weight = np.where(hi >= lo, n_c, 0).astype(float)
    if weight.sum() == 0:
        raise _no_pairs(window, crop, lengths)
    clip = rng.choice(len(lengths), size=n_pairs, p=weight / weight.sum())
    dt = w * rng.integers(lo[clip] // w, hi[clip] // w + 1)
    room = (n_c[clip] - 1) * w - dt  # >= 0: the first centre's free range, in frames
    first = starts[clip] + first_c[clip] + w * rng.integers(0, room // w + 1)
    return first, first + dt, dt


def spearman_distance_vs_gap(
    emb: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    window: Window = Window(),
    crop: CropPolicy = CropPolicy(),
    n_pairs: int = 20_000,
    seed: int = 0,
    n_bins: int = 30,
) -> tuple[float, dict]:
    """Spearman rho between cosine distance and frame gap over sampled pairs of windows with
    disjoint inputs, over the gaps the training crops span (`sample_pairs`).

    Args:
        emb: (N_frames, D) embedding, rows in index order (memory-mapped is fine).
        starts, ends: (N_clips,) row range of each clip.
        window, crop: the embed stage's window and the training crops' policy.
        n_pairs: pairs sampled; n_bins: bins of the distance curve.
    Returns:
        rho (NaN when the distances are all equal, e.g. a collapsed embedding) and the curve
        {"dt": mean gap of each bin, "mean_dist": mean cosine distance, "n": pairs per bin}
        over the range's gaps (one bin per gap when there are at most n_bins of them; empty
        bins left out).
    """
    from scipy.stats import spearmanr  # lazy: scipy.stats costs ~0.5 s to import

    i, j, dt = sample_pairs(starts, ends, n_pairs, np.random.default_rng(seed), window, crop)
    dist = 1.0 - np.sum(unit_rows(emb[i]) * unit_rows(emb[j]), axis=1, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN, as we want
        rho = float(spearmanr(dt, dist).statistic) if np.ptp(dist) > 0 else float("nan")
    lo, hi = gap_range(np.asarray(ends) - np.asarray(starts), window, crop)
    groups = np.array_split(np.arange(lo, hi + 1, window.window_stride), n_bins)
    groups = [g for g in groups if len(g)]
    b = np.searchsorted([g[0] for g in groups], dt, side="right") - 1
    n = np.bincount(b, minlength=len(groups))
    total = np.bincount(b, weights=dist, minlength=len(groups))
    seen = n > 0
    curve = {
        "dt": [float(np.mean(g)) for g, s in zip(groups, seen) if s],
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
    window: Window = Window(),
    crop: CropPolicy = CropPolicy(),
) -> tuple[float, dict]:
    """Temporal retrieval: filtered mean reciprocal rank of a query's k nearest temporal
    neighbours beyond its window.

    A query is an interior window centre q of clip c (`Window.centres`). Its candidates are
    the clip's other interior windows whose inputs are disjoint from q's and whose gap to q
    is one the training crops span (`clip_gap_range`); the windows that overlap q's are no
    candidates at all (they share its input). The relevant items R are the k candidates
    nearest to q in time and any at the same gap as the k-th (the window as far on q's other
    side: with k = 5, the three nearest gaps on both sides); the rest are the non-relevant
    ones. All are ranked by cosine similarity to q; each r in R gets the
    *filtered* rank 1 + #{non-relevant more similar than r} (+ half the ties), so the other
    relevant items do not push it down, and q scores mean_{r in R} 1 / rank(r). MRR is the
    mean over `n_queries` queries drawn uniformly from the interior windows with at least
    one non-relevant candidate.

    1 means every relevant window is retrieved ahead of every farther one. An embedding
    blind to time beyond its window ranks R at random: `chance` = mean over the queries of
    E[1 / rank] = H(m + 1) / (m + 1), m = its number of non-relevant candidates (a collapsed
    embedding, all ties, scores 1 / (1 + m / 2), below chance).

    Args:
        emb: (N_frames, D); starts, ends: (N_clips,) row range of each clip.
        window, crop: the embed stage's window and the training crops' policy.
    Returns:
        MRR in (0, 1] and {"chance": float, "n_queries": int, "k": int}.
    """
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    per_clip = []  # (centres, lo, hi, number of candidates of each centre)
    for n in ends - starts:
        c, lo, hi = clip_gap_range(int(n), window, crop)
        n_cand = (
            np.searchsorted(c, c + hi, side="right")
            - np.searchsorted(c, c + lo, side="left")
            + np.searchsorted(c, c - lo, side="right")
            - np.searchsorted(c, c - hi, side="left")
            if hi >= lo
            else np.zeros(len(c), np.int64)
        )
        per_clip.append((c, lo, hi, n_cand))
    # at most two candidates share a gap (one each side), so R holds at most k + 1 of them
    eligible = np.array([np.sum(nc >= k + 2) for *_, nc in per_clip], dtype=float)
    if eligible.sum() == 0:
        raise ValueError(
            f"temporal retrieval needs k + 2 = {k + 2} candidate windows a query: "
            + str(_no_pairs(window, crop, ends - starts))
        )
    rng = np.random.default_rng(seed)
    clips = rng.choice(len(per_clip), size=n_queries, p=eligible / eligible.sum())
    rr, chance = [], []
    for ci in np.unique(clips):
        c, lo, hi, n_cand = per_clip[ci]
        ok = np.flatnonzero(n_cand >= k + 2)
        q = ok[rng.integers(0, len(ok), size=int(np.sum(clips == ci)))]
        u = unit_rows(emb[starts[ci] + c])  # (L, D): the clip's interior windows
        sims = u[q] @ u.T  # (n_q, L)
        for qi, s in zip(q, sims):
            gap = np.abs(c - c[qi])
            cand = np.flatnonzero((gap >= lo) & (gap <= hi))
            g = np.sort(gap[cand])
            relevant = gap[cand] <= g[k - 1]  # the k nearest, and any tied with the k-th
            rel, nonrel = s[cand[relevant]], np.sort(s[cand[~relevant]])
            right = np.searchsorted(nonrel, rel, side="right")
            ties = right - np.searchsorted(nonrel, rel, side="left")
            rr.append(np.mean(1.0 / (1.0 + len(nonrel) - right + 0.5 * ties)))
            m = len(nonrel)
            chance.append(np.sum(1.0 / np.arange(1, m + 2)) / (m + 1))
    return float(np.mean(rr)), {"chance": float(np.mean(chance)), "n_queries": len(rr), "k": k}
