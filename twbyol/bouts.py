"""Bouts: the runs of a behaviour in a per-frame call or label track."""

from __future__ import annotations

import numpy as np


def run_spans(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths), int, of the runs of True in a 1-D boolean array (bouts in frames)."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return edges[::2], edges[1::2] - edges[::2]


def runs(mask: np.ndarray) -> np.ndarray:
    """Lengths (int) of the runs of True in a 1-D boolean array (bout lengths in frames)."""
    return run_spans(mask)[1]


# A bout's row: behaviour, first and last frame (inclusive), start and stop in seconds (the
# stop is the end of the last frame: (last + 1) / fps), duration (s), mean score over its frames
BOUT_COLUMNS = (
    "behaviour",
    "start_frame",
    "stop_frame",
    "start_s",
    "stop_s",
    "duration_s",
    "mean_score",
)
BUDGET_COLUMNS = ("behaviour", "total_s", "percent", "bouts", "mean_bout_s")


def bout_table(
    behaviours: list[str], calls: np.ndarray, scores: np.ndarray, fps: float
) -> list[dict]:
    """The bouts of one video's per-frame calls (T, K) and scores (T, K) at `fps`, one dict per
    bout (BOUT_COLUMNS), by behaviour in the given order, then by start."""
    if fps <= 0:
        raise ValueError(f"frame rate {fps} is not positive")
    rows = []
    for k, b in enumerate(behaviours):
        starts, lengths = run_spans(calls[:, k] == 1)
        for s, n in zip(starts.tolist(), lengths.tolist()):
            rows.append(
                {
                    "behaviour": b,
                    "start_frame": s,
                    "stop_frame": s + n - 1,
                    "start_s": s / fps,
                    "stop_s": (s + n) / fps,
                    "duration_s": n / fps,
                    "mean_score": float(np.mean(scores[s : s + n, k])),
                }
            )
    return rows


def time_budget(behaviours: list[str], bouts: list[dict], duration_s: float) -> list[dict]:
    """Per behaviour (BUDGET_COLUMNS): total time called (s), its percent of `duration_s`, the
    number of bouts and their mean duration (s; NaN without bouts). Behaviours may co-occur, so
    the percents need not sum to 100."""
    out = []
    for b in behaviours:
        d = [r["duration_s"] for r in bouts if r["behaviour"] == b]
        total = float(sum(d))
        out.append(
            {
                "behaviour": b,
                "total_s": total,
                "percent": 100.0 * total / duration_s if duration_s > 0 else float("nan"),
                "bouts": len(d),
                "mean_bout_s": total / len(d) if d else float("nan"),
            }
        )
    return out


def calls_of(behaviours: list[str], bouts: list[dict], n_frames: int) -> np.ndarray:
    """The per-frame 0/1 calls (n_frames, K) a bout table describes (bout_table's inverse)."""
    calls = np.zeros((n_frames, len(behaviours)), np.uint8)
    col = {b: k for k, b in enumerate(behaviours)}
    for r in bouts:
        calls[r["start_frame"] : r["stop_frame"] + 1, col[r["behaviour"]]] = 1
    return calls
