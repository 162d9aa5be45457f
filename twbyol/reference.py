"""Reference lines of the probe F1: what a constant, a coin and the ground truth score.

A mean F1 means little alone: on a task whose positive class covers 93 % of the frames,
calling every frame positive scores F1 0.96. Each evaluation therefore carries, per headline
task (a per-frame behaviour) and as their mean over the same tasks as the runs' `mean_f1`,
on the same test frames (privateTest + publicTest, labelled frames only):

- `always_positive`: the F1 of calling every frame positive, 2p / (1 + p) for a positive
  share p of the test frames (0 where the test frames hold no positive, as the evaluator);
- `coin_flip`: the expected F1 of calling each frame positive at random with the task's
  prevalence among the probe's train frames q (probe seed `seeds[0]`; a predictor may know
  it, not the test's), 2pq / (p + q): the ratio of the expected counts (TP = npq,
  FP = n(1-p)q, FN = np(1-q)), which the F1 of n frames approaches as n grows;
- `ceiling` (synthetic datasets, where the labels are the generator's ground truth): the same
  probes (MABe22 protocol) fitted on the ground truth an embedding could at best hold, each
  frame's features the share of positive frames of every behaviour within the frame's own
  input window (twbyol.temporal.Window: the frames the embed stage gives the network). A
  behaviour that changes faster than the window caps even this; a benchmark whose runs sit
  near `always_positive` and far below `ceiling` has room the methods do not use.
"""

from __future__ import annotations

import numpy as np

from twbyol.data.artifacts import Labels
from twbyol.split import Protocol
from twbyol.temporal import Window

LINES = ("always_positive", "coin_flip", "ceiling")


def always_positive_f1(y: np.ndarray) -> float:
    """F1 of predicting 1 for every labelled (non-NaN) frame of binary labels y."""
    y = y[~np.isnan(y)]
    p = float(np.mean(y == 1)) if len(y) else 0.0
    return 2 * p / (1 + p) if p > 0 else 0.0


def coin_flip_f1(p: float, q: float) -> float:
    """Expected F1 of calling a frame positive with probability q where a share p of the
    frames is positive: 2pq / (p + q) (0 when either is 0)."""
    return 2 * p * q / (p + q) if p > 0 and q > 0 else 0.0


def window_label_features(lab: Labels, window: Window, tasks: list[int]) -> np.ndarray:
    """(n_frames, len(tasks)) float32: for every frame of the label axis, the share of
    positive frames of each task among the labelled frames of its embedding's input window
    (the window of the nearest centre, its frames clipped to the clip, as the embed stage
    builds it); 0 where the window holds no labelled frame."""
    out = np.zeros((lab.label_array.shape[1], len(tasks)), np.float32)
    for start, end in zip(lab.starts, lab.ends):
        idx, nearest = window.rows(int(end - start))  # (n_windows, num_frames), (T,)
        y = lab.label_array[tasks, start:end]  # (K, T)
        pos = np.nan_to_num(y, nan=0.0)[:, idx].sum(-1)  # (K, n_windows)
        labelled = (~np.isnan(y))[:, idx].sum(-1)
        share = np.divide(pos, labelled, out=np.zeros_like(pos), where=labelled > 0)
        out[start:end] = share[:, nearest].T
    return out


def reference_lines(
    lab: Labels,
    protocol: Protocol,
    head: list[str],
    test_size: float,
    ceiling: dict[str, dict] | None = None,
) -> tuple[dict[str, dict], dict[str, float]]:
    """Per headline task {always_positive, coin_flip[, ceiling]} and the mean of each line
    over the tasks where it is defined. `ceiling`: the protocol's scores of the probes on
    `window_label_features` (twbyol.evaluate computes them, synthetic data only)."""
    t_index = {t: i for i, t in enumerate(lab.tasks)}
    per_task: dict[str, dict] = {}
    for t in head:
        split = protocol.split_of(t)
        y = lab.label_array[t_index[t]]
        test = y[lab.rows([*split["privateTest"], *split["publicTest"]])]
        train = y[lab.rows(protocol.train_clips(t, protocol.seeds[0], test_size))]
        test, train = test[~np.isnan(test)], train[~np.isnan(train)]
        if not len(test):
            continue
        p = float(np.mean(test == 1))
        q = float(np.mean(train == 1)) if len(train) else 0.0
        per_task[t] = {"always_positive": always_positive_f1(test), "coin_flip": coin_flip_f1(p, q)}
        if ceiling is not None:
            per_task[t]["ceiling"] = float(ceiling[t]["f1"])
    means = {}
    for line in LINES:
        v = np.array([r[line] for r in per_task.values() if line in r], float)
        if np.isfinite(v).any():
            means[line] = float(np.nanmean(v))
    return per_task, means
