"""Linear probes with the MABe22 evaluator's protocol, solved in closed form.

The public MABe22 evaluator (damaggu/MABe2022) splits the clips 90/10 with
`train_test_split(clips, test_size=0.1, random_state=seed)`, drops frames whose label is
NaN and fits, per task, `RidgeClassifier(class_weight='balanced', alpha=1.0)` scored by
binary F1 (Discrete tasks) or `Ridge(alpha=1.0)` scored by MSE (continuous tasks).

We reproduce those estimators exactly but solve them from sufficient statistics: one
blockwise pass accumulates the weighted moments (the (D+1)x(D+1) weighted covariance of
[x, 1]) and a D x D float64 solve gives the weights — no centred or reweighted copy of the
embedding is ever made. One probe on a million frames is about 2x sklearn's (both are bound
by one Gram pass over the data); the tasks of an evaluation share that pass (`Moments`,
`linear_probes`), each adding only a pass over its minority-class and unlabelled rows
(benchmarks/bench_probe.py). Multi-class tasks use one-vs-rest ridge columns and macro F1,
as sklearn's RidgeClassifier and f1_score do.

    from twbyol.split import split_clips
    from twbyol.probe import linear_probe, linear_probes
    train_clips, test_clips = split_clips(clips)            # the evaluator's split
    res = linear_probe(x_train, y_train, x_test, y_test)    # {"f1": ..., ...}
    per_task = linear_probes(x_train, Y_train, x_test, Y_test, task_types)  # Y: (K, N)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Rows per streamed block: 8192 x 130 float32 is 4 MiB, so a block's temporaries stay in
# cache between the elementwise passes and the syrk (measured fastest on 1M x 128).
_CHUNK = 8192


def fit_ridge(
    x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ridge regression with an unpenalised intercept, as sklearn's `Ridge`.

    Minimises sum_i w_i ||y_i - x_i W - b||^2 + alpha ||W||_F^2 — sklearn's objective: the
    intercept is removed by centring x and y on their weighted means, then the penalised
    normal equations are solved. Equivalently we form the (D+1)x(D+1) weighted moment
    matrix of [x, 1] and eliminate the intercept row (Schur complement), in float64.

    Args:
        x: (N, D) features, float32 or float64 (memory-mapped is fine; it is streamed).
        y: (N,) or (N, K) targets.
        sample_weight: (N,) non-negative weights, or None for 1.
        alpha: L2 penalty on W (not on b).
    Returns:
        coef (D, K) float64 and intercept (K,) float64 (K = 1 for 1-D `y`).
    """
    n, d = x.shape
    y2 = np.asarray(y, dtype=np.float64).reshape(n, -1)  # (N, K)
    k = y2.shape[1]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    # Block products run in the input's precision (float32 embeddings -> sgemm, 2-3x faster
    # than dgemm) and are accumulated and solved in float64. sklearn does the whole fit,
    # solve included, in float32 for float32 input, so this is never less precise than it.
    # Shifting by a rough mean first keeps the centring below free of cancellation.
    dt = np.float32 if x.dtype == np.float32 else np.float64
    shift = np.asarray(x[: min(n, _CHUNK)], dtype=np.float64).mean(axis=0)  # (D,)
    # One syrk per block gives every moment at once: with z = sqrt(w) * [x - shift, 1, y],
    # z^T z holds sum w x'x'^T, sum w x', sum w, sum w x'y^T and sum w y.
    m = np.zeros((d + 1 + k, d + 1 + k))
    buf = np.empty((min(n, _CHUNK), d + 1 + k), dtype=dt)
    for i in range(0, n, _CHUNK):
        j = min(n, i + _CHUNK)
        z = buf[: j - i]
        sqw = np.sqrt(w[i:j])
        np.subtract(x[i:j], shift.astype(dt), out=z[:, :d], dtype=dt)
        z[:, :d] *= sqw.astype(dt)[:, None]
        z[:, d] = sqw
        z[:, d + 1 :] = sqw[:, None] * y2[i:j]
        m += z.T @ z  # numpy routes A.T @ A to syrk
    return _solve_moments(m[: d + 1, : d + 1], m[: d + 1, d + 1 :], shift, alpha)


def _solve_moments(
    mzz: np.ndarray, mzy: np.ndarray, shift: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights from weighted moments of z = [x - shift, 1]: mzz = sum w z z^T
    ((D+1)x(D+1)) and mzy = sum w z y^T ((D+1)xK). Returns coef (D, K), intercept (K,)."""
    d = len(shift)
    gram, sx, sw = mzz[:d, :d], mzz[:d, d], mzz[d, d]
    xy, sy = mzy[:d], mzy[d]
    mean_x, mean_y = sx / sw, sy / sw
    # Eliminating the intercept row of the (D+1)x(D+1) system = centring on weighted means.
    a = gram - np.outer(sx, mean_x) + alpha * np.eye(d)  # weighted scatter + alpha I (SPD)
    coef = np.linalg.solve(a, xy - np.outer(sx, mean_y))  # (D, K)
    intercept = mean_y - mean_x @ coef - shift @ coef
    return coef, intercept


class Moments:
    """Unweighted moments of z = [x - shift, 1] over subsets of the rows of one x, shared by
    every task probed on x.

    The balanced ridge classifier weights each row by its class (w_c for class c), so its
    weighted moments are a sum over classes, sum_c w_c M_c, where M_c = sum_{i in c} z_i z_i^T;
    the targets are +-1 by class, so the weighted cross moments sum_i w_i z_i t_i are sums of
    the last columns (sum_{i in c} z_i) of the same M_c. Every task thus needs only M over the
    rows of each class, and the largest class comes free as M(all) - M(unlabelled) - the rest.
    M(all) is one syrk pass over x computed once; each task then costs a pass over its
    unlabelled and minority-class rows only (a 10 % behaviour: a tenth of a pass). On 1M x 128
    float32 with 8 tasks that is 1.6 passes instead of 8 (benchmarks/bench_probe.py).
    """

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.dtype = np.float32 if x.dtype == np.float32 else np.float64
        # a rough mean, subtracted before the products, keeps the centring free of cancellation
        self.shift = np.asarray(x[: min(len(x), _CHUNK)], dtype=np.float64).mean(axis=0)
        self._all: np.ndarray | None = None

    def of(self, rows: np.ndarray | None = None) -> np.ndarray:
        """M = sum z z^T over `rows` (an index array; None: all rows), (D+1)x(D+1) float64."""
        d = self.x.shape[1]
        n = len(self.x) if rows is None else len(rows)
        m = np.zeros((d + 1, d + 1))
        buf = np.empty((min(n, _CHUNK), d + 1), dtype=self.dtype)
        shift = self.shift.astype(self.dtype)
        for i in range(0, n, _CHUNK):
            j = min(n, i + _CHUNK)
            z = buf[: j - i]
            block = self.x[i:j] if rows is None else self.x[rows[i:j]]
            np.subtract(block, shift, out=z[:, :d], dtype=self.dtype)
            z[:, d] = 1.0
            m += z.T @ z  # syrk
        return m

    def all(self) -> np.ndarray:
        if self._all is None:
            self._all = self.of()
        return self._all

    def ridge_classifier(
        self, y: np.ndarray, alpha: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`fit_ridge_classifier` on the rows of x where y is not NaN, from shared moments.

        Returns classes (C,), coef (D, K), intercept (K,) as fit_ridge_classifier does."""
        d = self.x.shape[1]
        lab = ~np.isnan(y)
        classes = np.unique(y[lab])
        members = [np.flatnonzero(y == c) for c in classes]
        counts = np.array([len(r) for r in members], dtype=np.float64)
        n = counts.sum()
        big = int(np.argmax(counts))
        mats = [None] * len(classes)
        rest = self.all() - (self.of(np.flatnonzero(~lab)) if not lab.all() else 0.0)
        for c, rows in enumerate(members):
            if c != big:
                mats[c] = self.of(rows)
                rest = rest - mats[c]
        mats[big] = rest
        w = n / (len(classes) * counts)  # sklearn's class_weight='balanced'
        # targets +-1 per class: one column (class 1 = the larger label; a lone class is -1)
        # for up to two classes, one-vs-rest columns for more
        if len(classes) <= 2:
            signs = np.where(np.arange(len(classes)) == 1, 1.0, -1.0)[:, None]  # (C, 1)
        else:
            signs = np.where(np.eye(len(classes), dtype=bool), 1.0, -1.0)  # (C classes, K cols)
        mw = sum(wc * mc for wc, mc in zip(w, mats))  # sum_i w_i z_i z_i^T
        zt = np.stack([mc[:, d] for mc in mats], axis=1) @ (w[:, None] * signs)  # (D+1, K)
        coef, intercept = _solve_moments(mw, zt, self.shift, alpha)
        return classes, coef, intercept


def _decision(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """(N, D) @ (D, K) + (K,) -> (N, K) float64, in blocks so memory stays flat."""
    out = np.empty((x.shape[0], coef.shape[1]))
    c = coef.astype(np.float32 if x.dtype == np.float32 else np.float64)
    for i in range(0, x.shape[0], _CHUNK):
        out[i : i + _CHUNK] = x[i : i + _CHUNK] @ c
    return out + intercept


def fit_ridge_classifier(
    x: np.ndarray, y: np.ndarray, alpha: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`RidgeClassifier(class_weight='balanced', alpha)` fitted in closed form.

    Targets are +1/-1 (one column for two classes, the positive being the larger label;
    one-vs-rest columns for more), each sample weighted n / (n_classes * count(its class)).

    Args:
        x: (N, D) features; y: (N,) labels without NaN.
    Returns:
        classes (C,), coef (D, K), intercept (K,) with K = 1 if C <= 2 else C.
    """
    classes = np.unique(y)
    inv = np.searchsorted(classes, y)  # 10x cheaper than unique's argsort
    counts = np.bincount(inv)
    w = (len(y) / (len(classes) * counts))[inv]
    if len(classes) <= 2:
        t = np.where(inv == len(classes) - 1, 1.0, -1.0) if len(classes) == 2 else -np.ones(len(y))
    else:
        t = np.where(inv[:, None] == np.arange(len(classes)), 1.0, -1.0)
    coef, intercept = fit_ridge(x, t, w, alpha)
    return classes, coef, intercept


def predict_classes(
    x: np.ndarray, classes: np.ndarray, coef: np.ndarray, intercept: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and decision values of a fitted ridge classifier (sklearn's rule: score > 0
    picks the positive class, ties go to the negative one; argmax for one-vs-rest).

    Returns (pred (N,), decision (N,) or (N, C)).
    """
    dec = _decision(x, coef, intercept)
    if dec.shape[1] == 1:
        dec = dec[:, 0]
        idx = (dec > 0).astype(int) if len(classes) == 2 else np.zeros(len(dec), dtype=int)
    else:
        idx = dec.argmax(axis=1)
    return classes[idx], dec


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """F1, precision and per-class recall as sklearn scores them.

    Two classes or fewer among {0, 1}: binary F1 of the positive class 1
    (`f1_score(average='binary')`), 0 when neither y_true nor y_pred holds a positive
    (sklearn's zero_division default, which the MABe22 evaluator's scores carry: a task whose
    test frames hold no positive scores 0 for every method). More classes: macro F1 over the
    labels present in y_true or y_pred (`average='macro'`). `recall` maps each true class to
    its recall. `per_class` maps each scored class (binary: the positive class 1; macro:
    every label averaged) to its one-vs-rest {"f1", "precision", "recall"}, 0 where
    undefined (sklearn's zero_division default).
    """
    labels = np.union1d(y_true, y_pred)
    binary = np.all(np.isin(labels, [0.0, 1.0]))
    per = {}
    for c in np.array([1.0]) if binary else labels:
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        per[label_key(c)] = {
            "f1": float(2 * tp / (2 * tp + fp + fn)) if 2 * tp + fp + fn else 0.0,
            "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
            "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
        }
    f1 = float(np.mean([v["f1"] for v in per.values()]))
    recall = {label_key(c): float(np.mean(y_pred[y_true == c] == c)) for c in np.unique(y_true)}
    out = {"f1": f1, "recall": recall, "per_class": per, "average": "binary" if binary else "macro"}
    if binary:
        out["precision"] = per["1"]["precision"]
    return out


def clip_counts(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    ok: np.ndarray,
    clips: Sequence[str],
    lengths: Sequence[int],
) -> dict:
    """Per clip, the counts of a binary task's F1 over its scored frames: {"clips": names,
    "tp", "fp", "fn": [int per clip]}. `y_true`, `y_pred` and `ok` (the scored frames) hold
    the clips' frames one clip after the other, `lengths[i]` frames for `clips[i]`. Summed
    over the clips, the counts give `classification_scores`' binary F1, 2 tp / (2 tp + fp +
    fn), so resampling clips and summing their counts resamples the F1 (twbyol.bootstrap)."""
    y_true, y_pred, ok = np.asarray(y_true), np.asarray(y_pred), np.asarray(ok, bool)
    if len(y_true) != int(np.sum(lengths)) or len(clips) != len(lengths):
        raise ValueError(
            f"clip_counts: {len(y_true)} frames for {len(clips)} clips of {int(np.sum(lengths))}"
        )
    pos, called = ok & (y_true == 1), ok & (y_pred == 1)
    cut = np.cumsum(lengths)[:-1]

    def per_clip(mask: np.ndarray) -> list[int]:
        return [int(m.sum()) for m in np.split(mask, cut)]

    return {
        "clips": list(clips),
        "tp": per_clip(pos & called),
        "fp": per_clip(called & ok & (y_true != 1)),
        "fn": per_clip(pos & ~called),
    }


def label_key(c: float) -> str:
    """JSON key of a class label: '1' for 1.0, '2.5' for 2.5."""
    return str(int(c)) if float(c).is_integer() else str(c)


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    task_type: str = "Discrete",
    alpha: float = 1.0,
    moments: Moments | None = None,
) -> dict:
    """Fit a probe on train frames and score it on test frames (MABe22 protocol).

    Frames with a NaN label are dropped on both sides. `Discrete` tasks: balanced ridge
    classifier; binary F1 of class 1, or macro F1 (one-vs-rest ridge, argmax) when the task
    has more than two classes. Any other task type: ridge regression scored by MSE.

    Args:
        train_x: (N_train, D) features; train_y: (N_train,) labels, NaN = unlabelled.
        test_x: (N_test, D); test_y: (N_test,).
        moments: `Moments(train_x)` shared with other tasks on the same train_x (see
            `linear_probes`); None fits this task alone.
    Returns:
        Discrete: {"type", "f1", "precision" (binary), "recall": {class: recall}, "per_class",
        "average": "binary"|"macro", "n_train", "n_test", "n_pos_test", "pos_rate"}
        (pos_rate = share of labelled test frames with label 1).
        Continuous: {"type", "mse", "n_train", "n_test"}.
        A side without labelled frames gives NaN scores and a "reason"; a test side without
        a positive frame scores F1 = 0, as in the evaluator.
    """
    ok_tr, ok_te = ~np.isnan(train_y), ~np.isnan(test_y)
    ytr, yte = np.asarray(train_y)[ok_tr], np.asarray(test_y)[ok_te]
    # Boolean indexing copies; skip it when nothing is unlabelled (the common case).
    xtr = train_x if ok_tr.all() else train_x[ok_tr]
    xte = test_x if ok_te.all() else test_x[ok_te]
    discrete = task_type == "Discrete"
    out: dict = {
        "type": "Discrete" if discrete else task_type,
        "n_train": len(ytr),
        "n_test": len(yte),
    }
    if discrete:
        out.update(
            n_pos_test=int(np.sum(yte == 1)),
            pos_rate=float(np.mean(yte == 1)) if len(yte) else float("nan"),
        )
    if len(ytr) == 0 or len(yte) == 0:
        out.update(
            {
                "f1" if discrete else "mse": float("nan"),
                "reason": "no labelled train frames"
                if len(ytr) == 0
                else "no labelled test frames",
            }
        )
        return out
    if discrete:
        if moments is not None and moments.x is train_x:
            classes, coef, intercept = moments.ridge_classifier(
                np.asarray(train_y, np.float64), alpha
            )
        else:
            classes, coef, intercept = fit_ridge_classifier(xtr, ytr, alpha)
        pred, _ = predict_classes(xte, classes, coef, intercept)
        out.update(classification_scores(yte, pred))
        if len(classes) == 1:
            out["reason"] = (
                f"train frames hold one class ({label_key(classes[0])}): constant prediction"
            )
    else:
        coef, intercept = fit_ridge(xtr, ytr, None, alpha)
        out["mse"] = float(np.mean((_decision(xte, coef, intercept)[:, 0] - yte) ** 2))
    return out


def linear_probes(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    task_types: Sequence[str],
    alpha: float = 1.0,
) -> list[dict]:
    """`linear_probe` for each task (row) of train_y (K, N_train) / test_y (K, N_test) on one
    embedding, the Discrete tasks fitted from `Moments` shared by all of them: the same
    results (to float rounding) for a fraction of the passes over train_x."""
    moments = Moments(train_x)
    out = []
    for ytr, yte, ty in zip(train_y, test_y, task_types):
        out.append(linear_probe(train_x, ytr, test_x, yte, ty, alpha, moments=moments))
    return out


@dataclass(frozen=True)
class FittedProbe:
    """One task's probe fitted on one train set: a balanced ridge classifier (`classes` set)
    or a ridge regression (`classes` None), as the evaluator's RidgeClassifier / Ridge."""

    coef: np.ndarray  # (D, K)
    intercept: np.ndarray  # (K,)
    classes: np.ndarray | None
    n_train: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, D) -> (N,) class labels (Discrete) or values (Continuous), float64."""
        if self.classes is None:
            return _decision(x, self.coef, self.intercept)[:, 0]
        return predict_classes(x, self.classes, self.coef, self.intercept)[0].astype(np.float64)


def fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    task_type: str = "Discrete",
    alpha: float = 1.0,
    moments: Moments | None = None,
) -> FittedProbe | None:
    """The evaluator's probe of one task: NaN-labelled rows dropped, then
    `RidgeClassifier(class_weight='balanced', alpha)` for Discrete tasks or `Ridge(alpha)`;
    None when no train row is labelled. `moments` = Moments(train_x) shares the Gram pass
    with the other tasks fitted on the same rows. (A train set holding one class predicts it
    everywhere; sklearn would refuse to fit.)"""
    ok = ~np.isnan(train_y)
    if not ok.any():
        return None
    if task_type == "Discrete":
        if moments is not None and moments.x is train_x:
            classes, coef, intercept = moments.ridge_classifier(
                np.asarray(train_y, np.float64), alpha
            )
        else:
            xtr = train_x if ok.all() else train_x[ok]
            classes, coef, intercept = fit_ridge_classifier(xtr, np.asarray(train_y)[ok], alpha)
        return FittedProbe(coef, intercept, classes, int(ok.sum()))
    xtr = train_x if ok.all() else train_x[ok]
    coef, intercept = fit_ridge(xtr, np.asarray(train_y, np.float64)[ok], None, alpha)
    return FittedProbe(coef, intercept, None, int(ok.sum()))


def aggregate_seeds(preds: Sequence[np.ndarray], task_type: str = "Discrete") -> np.ndarray:
    """The evaluator's aggregate of the probe seeds' predictions of one task (S x (N,)):
    Discrete, `float32(mean over seeds > 0)` of the 0/1 predictions — a frame is positive when
    any seed's probe calls it (the evaluator's `_binary_most_repeated`; with its single seed
    42 simply that probe's call); Continuous, the mean."""
    stacked = np.stack([np.asarray(p, np.float64) for p in preds])  # (S, N)
    if task_type == "Discrete":
        return (stacked.mean(axis=0) > 0).astype(np.float64)
    return stacked.mean(axis=0)


def task_score(y_true: np.ndarray, y_pred: np.ndarray, task_type: str = "Discrete") -> dict:
    """The evaluator's metric of one task: Discrete -> `classification_scores` (binary F1),
    Continuous -> {"mse"} (sklearn's mean_squared_error); NaN with no frame to score."""
    if len(y_true) == 0:
        return {"f1" if task_type == "Discrete" else "mse": float("nan")}
    if task_type == "Discrete":
        return classification_scores(y_true, y_pred)
    return {"mse": float(np.mean((np.asarray(y_pred) - y_true) ** 2))}


def pooled_score(
    y_true: np.ndarray, y_pred: np.ndarray, bounds: np.ndarray, task_type: str = "Discrete"
) -> float:
    """The evaluator's clip-pooled score of a sequence-level task: per clip (rows
    bounds[i]:bounds[i+1] of the labelled test frames), the mean label and the mean
    prediction, both thresholded at 0.5 for Discrete tasks, then F1 or MSE over clips. (The
    evaluator walks the clips in split-file order over frames held in frame order; here each
    clip takes its own frames.)"""
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    yt, yp = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            yt.append(np.mean(y_true[a:b]))
            yp.append(np.mean(y_pred[a:b]))
    yt, yp = np.array(yt), np.array(yp)
    if task_type == "Discrete":
        return task_score((yt >= 0.5).astype(float), (yp >= 0.5).astype(float))["f1"]
    return task_score(yt, yp, task_type)["mse"]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D) float32 rows of unit L2 norm (all-zero rows stay zero), for cosine."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def knn_neighbours(
    train_x: np.ndarray, test_x: np.ndarray, k: int = 20, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar train rows of each test row.

    Args:
        train_x: (N_train, D); test_x: (N_test, D).
    Returns:
        idx (N_test, k') int and sim (N_test, k') float32, k' = min(k, N_train), unordered.
    """
    tr, te = unit_rows(train_x), unit_rows(test_x)
    k = min(k, len(tr))
    idx = np.empty((len(te), k), dtype=np.int64)
    sim = np.empty((len(te), k), dtype=np.float32)
    for i in range(0, len(te), block):  # blocks keep the (block, N_train) similarity small
        s = te[i : i + block] @ tr.T
        top = np.argpartition(s, s.shape[1] - k, axis=1)[:, -k:]
        idx[i : i + block] = top
        sim[i : i + block] = np.take_along_axis(s, top, axis=1)
    return idx, sim


def knn_vote(neigh_labels: np.ndarray, neigh_sim: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Majority vote of (N, k) neighbour labels; a tie goes to the class whose tied voters
    are more similar in sum (cosine in [-1, 1], scaled below one vote so it only breaks ties).
    """
    k = neigh_labels.shape[1]
    score = np.stack(
        [
            (neigh_labels == c).sum(1)
            + np.where(neigh_labels == c, neigh_sim, 0).sum(1) / (2 * k + 1)
            for c in classes
        ],
        axis=1,
    )
    return classes[score.argmax(axis=1)]


def knn_scores(
    neigh: tuple[np.ndarray, np.ndarray], train_y: np.ndarray, test_y: np.ndarray
) -> dict:
    """kNN classification scores of one task from precomputed neighbours (labels without NaN).

    Returns {"accuracy", "balanced_accuracy" (mean per-class recall, immune to the
    imbalance that lets "never the behaviour" score high accuracy), "n_test"}.
    """
    idx, sim = neigh
    classes = np.unique(train_y)
    pred = knn_vote(train_y[idx], sim, classes)
    recalls = [np.mean(pred[test_y == c] == c) for c in np.unique(test_y)]
    return {
        "accuracy": float(np.mean(pred == test_y)),
        "balanced_accuracy": float(np.mean(recalls)),
        "n_test": len(test_y),
    }
