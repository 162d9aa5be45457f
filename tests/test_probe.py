"""The closed-form probes agree with the sklearn estimators of the MABe22 evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from twbyol.probe import (
    Moments,
    fit_ridge_classifier,
    knn_neighbours,
    knn_scores,
    linear_probe,
    linear_probes,
    predict_classes,
)
from twbyol.split import split_clips


def _task(seed: int, n: int = 6000, d: int = 24, dtype=np.float64, offset: float = 3.0):
    """Features with a non-zero mean (tests the centring) and a rare, noisy binary label."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, d)) * rng.uniform(0.2, 2.0, d) + offset).astype(dtype)
    score = x[:, :3].sum(1) + rng.standard_normal(n) * 1.5
    y = (score > np.quantile(score, 0.85)).astype(np.float32)
    cut = int(0.8 * n)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def test_split_clips_is_the_evaluators_split():
    clips = [f"clip{i:03d}" for i in range(57)]
    assert split_clips(clips, 0.1, 7) == tuple(
        map(list, train_test_split(clips, test_size=0.1, random_state=7))
    )
    train, test = split_clips(clips)
    assert len(test) == 6 and not set(train) & set(test)


def test_separable_embeddings_give_f1_one():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.2).astype(np.float32)
    x = rng.standard_normal((2000, 8)) * 0.1
    x[:, 0] += 5 * y  # class readable from one direction, far beyond the noise
    res = linear_probe(x[:1500], y[:1500], x[1500:], y[1500:])
    assert res["f1"] == 1.0 and res["recall"] == {"0": 1.0, "1": 1.0}


@pytest.mark.parametrize(
    "seed,dtype", [(0, np.float64), (1, np.float64), (2, np.float32), (3, np.float32)]
)
def test_binary_probe_matches_sklearn(seed, dtype):
    xtr, ytr, xte, yte = _task(seed, dtype=dtype)
    clf = RidgeClassifier(class_weight="balanced", alpha=1.0).fit(xtr, ytr)
    res = linear_probe(xtr, ytr, xte, yte)
    assert res["f1"] == pytest.approx(f1_score(yte, clf.predict(xte)), abs=1e-3)
    classes, coef, intercept = fit_ridge_classifier(xtr, ytr)
    _, dec = predict_classes(xte, classes, coef, intercept)
    tol = 1e-8 if dtype == np.float64 else 1e-3  # sklearn itself works in float32 on float32 input
    np.testing.assert_allclose(dec, clf.decision_function(xte), atol=tol * np.abs(dec).max())


def test_multiclass_probe_is_one_vs_rest_macro_f1():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 10))
    y = np.digitize(x[:, 0] + 0.5 * rng.standard_normal(3000), [-0.8, 0.3, 1.2]).astype(
        float
    )  # 4 unequal classes
    clf = RidgeClassifier(class_weight="balanced", alpha=1.0).fit(x[:2400], y[:2400])
    res = linear_probe(x[:2400], y[:2400], x[2400:], y[2400:])
    assert res["average"] == "macro"
    assert res["f1"] == pytest.approx(
        f1_score(y[2400:], clf.predict(x[2400:]), average="macro"), abs=1e-9
    )


def test_continuous_probe_matches_sklearn_ridge():
    xtr, _, xte, _ = _task(5)
    w = np.linspace(-1, 1, xtr.shape[1])
    res = linear_probe(xtr, xtr @ w + 1.0, xte, xte @ w + 0.5, task_type="Continuous")
    mse = np.mean((Ridge(alpha=1.0).fit(xtr, xtr @ w + 1.0).predict(xte) - (xte @ w + 0.5)) ** 2)
    assert res["mse"] == pytest.approx(mse, rel=1e-9)


def test_nan_labels_are_dropped_and_f1_without_positives_is_the_evaluators_zero():
    xtr, ytr, xte, yte = _task(6)
    ytr_nan, yte_nan = ytr.copy(), yte.copy()
    ytr_nan[::3], yte_nan[::4] = np.nan, np.nan
    keep_tr, keep_te = ~np.isnan(ytr_nan), ~np.isnan(yte_nan)
    clf = RidgeClassifier(class_weight="balanced", alpha=1.0).fit(xtr[keep_tr], ytr[keep_tr])
    res = linear_probe(xtr, ytr_nan, xte, yte_nan)
    assert res["n_train"] == keep_tr.sum() and res["n_test"] == keep_te.sum()
    assert res["f1"] == pytest.approx(f1_score(yte[keep_te], clf.predict(xte[keep_te])), abs=1e-9)
    # No positive test frame: sklearn's (and so the evaluator's) 0; no labelled frame: NaN.
    zeros = np.zeros_like(yte)
    assert linear_probe(xtr, ytr, xte, zeros)["f1"] == 0.0 == f1_score(zeros, clf.predict(xte))
    assert np.isnan(linear_probe(xtr, ytr, xte, np.full_like(yte, np.nan))["f1"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shared_moments_equal_one_fit_per_task_and_sklearn(dtype):
    """linear_probes (one Gram pass shared by the tasks) = linear_probe per task = sklearn,
    for a balanced, a rare (1 %), a majority (87 %) and a partly unlabelled binary task, a
    multi-class task, a one-class task and a continuous one."""
    rng = np.random.default_rng(8)
    n, d = 8000, 16
    x = (rng.standard_normal((n, d)) * rng.uniform(0.2, 2.0, d) + 3.0).astype(dtype)
    score = x[:, :3].sum(1) + rng.standard_normal(n)
    ys = [(score > np.quantile(score, q)).astype(np.float64) for q in (0.5, 0.99, 0.13)]
    partial = ys[0].copy()
    partial[rng.random(n) < 0.3] = np.nan
    multi = np.digitize(x[:, 0] + rng.standard_normal(n), [2.0, 3.0, 4.0]).astype(np.float64)
    cont = x @ np.linspace(-1, 1, d)
    y = np.stack([*ys, partial, multi, np.zeros(n), cont])
    types = ["Discrete"] * 6 + ["Continuous"]
    cut = 6400
    shared = linear_probes(x[:cut], y[:, :cut], x[cut:], y[:, cut:], types)
    for k, (res, ty) in enumerate(zip(shared, types)):
        alone = linear_probe(x[:cut], y[k, :cut], x[cut:], y[k, cut:], ty)
        assert res.keys() == alone.keys()
        for key in ("f1", "mse", "precision", "recall", "n_train", "n_test"):
            if key in alone:
                assert res[key] == pytest.approx(alone[key], nan_ok=True), (k, key)
        if ty == "Discrete" and len(np.unique(y[k, :cut][~np.isnan(y[k, :cut])])) > 1:
            a, b = ~np.isnan(y[k, :cut]), ~np.isnan(y[k, cut:])
            clf = RidgeClassifier(class_weight="balanced", alpha=1.0).fit(x[:cut][a], y[k, :cut][a])
            avg = "binary" if len(clf.classes_) == 2 else "macro"
            expected = f1_score(y[k, cut:][b], clf.predict(x[cut:][b]), average=avg)
            assert res["f1"] == pytest.approx(expected, abs=1e-3), k
    # the weights themselves, not just the F1 they give
    m = Moments(x[:cut])
    for k in range(5):
        lab = ~np.isnan(y[k, :cut])
        c1, w1, b1 = fit_ridge_classifier(x[:cut][lab], y[k, :cut][lab])
        c2, w2, b2 = m.ridge_classifier(y[k, :cut])
        assert np.array_equal(c1, c2)
        tol = 1e-9 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(w2, w1, atol=tol * np.abs(w1).max())
        np.testing.assert_allclose(b2, b1, atol=tol * max(1.0, np.abs(b1).max()))


def test_knn_on_separated_clusters_is_perfect():
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((2, 16)) * 5
    y = rng.integers(0, 2, 1200).astype(float)
    x = centres[y.astype(int)] + 0.1 * rng.standard_normal((1200, 16))
    res = knn_scores(knn_neighbours(x[:1000], x[1000:], k=7), y[:1000], y[1000:])
    assert res["accuracy"] == 1.0 and res["balanced_accuracy"] == 1.0


@pytest.mark.parametrize("pos_rate", [0.5, 0.1])
def test_balanced_knn_accuracy_is_chance_on_noise_whatever_the_balance(pos_rate):
    rng = np.random.default_rng(3)
    y = (rng.random(6000) < pos_rate).astype(float)
    noise = rng.standard_normal((6000, 16))
    res = knn_scores(knn_neighbours(noise[:5000], noise[5000:], k=20), y[:5000], y[5000:])
    # the majority vote of 20 noise neighbours is the majority class: plain accuracy is its
    # share (0.9 for a 90/10 task), the balanced one the mean of recalls 1 and 0
    assert abs(res["balanced_accuracy"] - 0.5) < 0.03
    assert abs(res["accuracy"] - max(pos_rate, 1 - pos_rate)) < 0.03
    perfect = np.concatenate([y[:, None] * 4, rng.standard_normal((6000, 2)) * 0.1], axis=1)
    res = knn_scores(knn_neighbours(perfect[:5000], perfect[5000:], k=20), y[:5000], y[5000:])
    assert res["balanced_accuracy"] == 1.0


def test_per_class_scores_are_sklearns():
    from sklearn.metrics import precision_recall_fscore_support

    from twbyol.probe import classification_scores

    rng = np.random.default_rng(4)
    for labels in ([0.0, 1.0], [0.0, 1.0, 2.0]):
        y_true, y_pred = rng.choice(labels, 500), rng.choice(labels, 500)
        res = classification_scores(y_true, y_pred)
        classes = [1.0] if len(labels) == 2 else labels
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=classes, zero_division=0
        )
        for c, pc, rc, fc in zip(classes, p, r, f):
            got = res["per_class"][str(int(c))]
            assert got == pytest.approx({"f1": fc, "precision": pc, "recall": rc})
