"""Reference lines of the probe F1 (twbyol.reference) against hand computations, a
simulation, and the evaluation that carries them."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from tests.test_protocol import _dataset
from twbyol.data.artifacts import Labels
from twbyol.evaluate import EvaluateConfig, evaluate
from twbyol.reference import always_positive_f1, coin_flip_f1, window_label_features
from twbyol.temporal import Window


def test_always_positive_is_the_f1_of_calling_every_labelled_frame_positive():
    y = np.array([1, 0, 0, 1, np.nan, 0])  # 2 of 5 labelled frames positive: TP 2, FP 3
    assert always_positive_f1(y) == pytest.approx(2 * 2 / (2 * 2 + 3))
    ok = ~np.isnan(y)
    assert always_positive_f1(y) == pytest.approx(f1_score(y[ok], np.ones(ok.sum())))
    assert always_positive_f1(np.zeros(4)) == 0.0  # the evaluator's F1 without a positive


@pytest.mark.parametrize("p, q", [(0.93, 0.93), (0.05, 0.05), (0.3, 0.1), (0.5, 0.9)])
def test_coin_flip_is_what_a_prevalence_coin_scores(p, q):
    rng = np.random.default_rng(0)
    n = 400_000
    y, guess = rng.random(n) < p, rng.random(n) < q
    assert coin_flip_f1(p, q) == pytest.approx(f1_score(y, guess), abs=3e-3)
    assert coin_flip_f1(p, p) == pytest.approx(p)  # matched to the class's own prevalence


def test_window_features_are_each_behaviours_share_within_the_input_window():
    """Two clips of 6 frames, windows of 3 frames (stride 1): frame t sees t-1..t+1, clipped
    at the clip's ends; NaN frames are left out of the share; clips do not mix."""
    y = np.array([[1, 1, 0, 0, np.nan, 1, 0, 0, 0, 1, 1, 1]], np.float32)
    lab = Labels(
        ["a"], ["Discrete"], np.array([False]), y, ["c0", "c1"], np.array([0, 6]), np.array([6, 12])
    )
    got = window_label_features(lab, Window(3, 1, 1), [0])[:, 0]
    # c0: windows [0,0,1] [0,1,2] [1,2,3] [2,3,4] [3,4,5] [4,5,5] (indices clipped)
    want0 = [1, 2 / 3, 1 / 3, 0, 1 / 2, 1]  # [3,4,5] = 0, nan, 1; [4,5,5] = nan, 1, 1
    want1 = [0, 0, 1 / 3, 2 / 3, 1, 1]
    np.testing.assert_allclose(got, want0 + want1, atol=1e-6)
    # a window stride of 2: frame t takes the window of its nearest centre (0, 2, 4)
    got2 = window_label_features(lab, Window(3, 1, 2), [0])[:6, 0]
    # (frame 1 rounds to centre 0, frame 3 to centre 4: numpy rounds halves to even)
    np.testing.assert_allclose(got2, [1, 1, 1 / 3, 1 / 2, 1 / 2, 1 / 2], atol=1e-6)


def test_the_evaluation_carries_the_lines_the_same_for_every_embedding():
    """Constant and coin lines are functions of the labels alone (any embedding, even noise,
    carries the same); the ceiling, fitted on each frame's own labels (a window of one
    frame), reads a behaviour exactly; the runs' probes sit between the lines and it."""
    emb, lab, protocol = _dataset()
    kw = dict(knn_max_train=300, knn_max_test=100, n_pairs=300, n_queries=30, few_shot_draws=1)
    res = evaluate(emb, lab, protocol, EvaluateConfig(ceiling=True, **kw))
    noise = np.random.default_rng(1).normal(size=emb.shape)
    res_noise = evaluate(noise, lab, protocol, EvaluateConfig(ceiling=True, **kw))
    head = res["headline_tasks"]
    for t in head:
        lines = res["tasks"][t]["reference_f1"]
        assert lines == res_noise["tasks"][t]["reference_f1"]
        split = protocol.split_of(t)
        y = lab.label_array[lab.tasks.index(t)]
        test = y[lab.rows([*split["privateTest"], *split["publicTest"]])]
        assert lines["always_positive"] == pytest.approx(always_positive_f1(test))
        assert lines["ceiling"] == pytest.approx(1.0)
        assert res["tasks"][t]["f1"] <= lines["ceiling"]
    ref = res["reference_mean_f1"]
    for line in ("always_positive", "coin_flip", "ceiling"):
        assert ref[line] == pytest.approx(
            np.mean([res["tasks"][t]["reference_f1"][line] for t in head])
        )
    assert "ceiling" not in evaluate(emb, lab, protocol, EvaluateConfig(**kw))["reference_mean_f1"]


def test_stats_collects_one_set_of_lines_per_dataset_nan_included():
    """The lines are the same in every run's evaluation (NaN, e.g. a ceiling without a
    labelled train frame, equal to NaN); evaluations scored on other labels are refused."""
    from twbyol.tables import collect_references

    def ev(run, ceiling):
        lines = {"always_positive": 0.5, "coin_flip": 0.3, "ceiling": ceiling}
        return {
            "run_id": run,
            "seed": 0,
            "dataset": "mice",
            "reference_mean_f1": lines,
            "tasks": {"walk": {"reference_f1": lines}},
        }

    got = collect_references([ev("a", float("nan")), ev("b", float("nan"))])
    assert got["mice"]["mean"]["always_positive"] == 0.5
    with pytest.raises(ValueError, match="run b seed 0 differ from those of run a seed 0"):
        collect_references([ev("a", 0.9), ev("b", 0.8)])
