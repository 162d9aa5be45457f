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
