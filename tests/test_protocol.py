"""The evaluation protocol: our scores equal a plain sklearn implementation of the public
MABe22 evaluator's protocol (damaggu/MABe2022 round2/training) on the same embedding and
splits; derived splits; the headline; the submission file."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.metrics import f1_score, mean_squared_error
from sklearn.model_selection import train_test_split

from twbyol.data.artifacts import Labels
from twbyol.evaluate import EvaluateConfig, evaluate, headline_tasks, protocol_scores
from twbyol.split import Protocol, derived_protocol
from twbyol.submission import check_submission, submission_array

N_CLIPS, T, D = 40, 30, 12


def _dataset(seed: int = 0):
    """An embedding with signal, labels of five tasks (two splits), NaNs and a rare task."""
    rng = np.random.default_rng(seed)
    clips = [f"C{i:03d}" for i in range(N_CLIPS)]
    starts = np.arange(N_CLIPS) * T
    n = N_CLIPS * T
    latent = rng.normal(size=(n, 3))
    emb = np.concatenate([latent, rng.normal(size=(n, D - 3))], axis=1) @ rng.normal(size=(D, D))
    clip_of = np.repeat(np.arange(N_CLIPS), T)
    cond = rng.integers(0, 2, N_CLIPS)[clip_of].astype(float)  # a per-clip condition
    emb[:, 0] += 1.5 * cond
    y = np.stack(
        [
            (latent[:, 0] > 0.3).astype(float),  # behaviour
            (latent[:, 1] > 1.6).astype(float),  # rare behaviour
            cond,  # sequence-level, Discrete
            latent[:, 2] * 2 + rng.normal(size=n) * 0.3,  # per-frame continuous
            (rng.uniform(0, 24, N_CLIPS)[clip_of]),  # sequence-level continuous
        ]
    )
    y[0, rng.random(n) < 0.2] = np.nan  # unlabelled frames
    y[1, clip_of < 5] = np.nan  # a task labelled on a subset
    lab = Labels(
        ["behave", "rare", "strain", "speed", "time_of_day"],
        ["Discrete", "Discrete", "Discrete", "Continuous", "Continuous"],
        np.array([False, False, True, False, True]),
        y.astype(np.float32),
        clips,
        starts,
        starts + T,
    )
    order = rng.permutation(clips).tolist()  # split files list clips in no particular order
    a = {"SubmissionTrain": order[:28], "publicTest": order[28:34], "privateTest": order[34:]}
    order2 = rng.permutation(clips).tolist()
    b = {"SubmissionTrain": order2[:30], "publicTest": order2[30:35], "privateTest": order2[35:]}
    protocol = Protocol(
        lab.tasks,
        ["strain", "time_of_day"],
        [42, 7],
        {"a": a, "b": b},
        {"behave": "a", "rare": "a", "strain": "b", "speed": "a", "time_of_day": "b"},
        source="test",
    )
    return emb.astype(np.float64), lab, protocol


def _evaluator(emb, lab, protocol, task):
    """The evaluator's protocol written plainly with sklearn (train_and_eval.py, trainer.py,
    dataloader.py), the pooled score aligned by clip."""
    k = lab.tasks.index(task)
    kind = lab.task_types[k]
    split = protocol.split_of(task)
    y = lab.label_array[k].astype(np.float64)

    def mask(clips):
        m = np.zeros(len(y), bool)
        for c in clips:
            i = lab.clips.index(c)
            m[lab.starts[i] : lab.ends[i]] = True
        return m

    def fit(seed):
        train, _ = train_test_split(split["SubmissionTrain"], test_size=0.1, random_state=seed)
        m = mask(train) & ~np.isnan(y)
        model = (
            RidgeClassifier(class_weight="balanced", alpha=1.0)
            if kind == "Discrete"
            else Ridge(alpha=1.0)
        )
        return model.fit(emb[m], y[m])

    models = [fit(s) for s in protocol.seeds]

    def predict(clips):
        m = mask(clips) & ~np.isnan(y)
        preds = [mdl.predict(emb[m]) for mdl in models]
        return y[m], preds

    def agg(preds):
        if kind == "Discrete":
            return np.float32(np.mean(np.concatenate([preds]), axis=0) > 0)
        return np.mean(np.concatenate([preds]), axis=0)

    def metric(a, b):
        return f1_score(a, b, average="binary") if kind == "Discrete" else mean_squared_error(a, b)

    pub_true, pub_preds = predict(split["publicTest"])
    priv_true, priv_preds = predict(split["privateTest"])
    both = [np.concatenate([p, q]) for p, q in zip(priv_preds, pub_preds)]
    both_true = np.concatenate([priv_true, pub_true])
    out = {
        "private": metric(both_true, agg(both)),
        "public": metric(pub_true, agg(pub_preds)),
        "no_ensemble": np.mean([metric(both_true, p) for p in both]),
    }
    if task in protocol.sequence_level:
        gt, pr = [], []
        for c in split["privateTest"] + split["publicTest"]:
            m = mask([c]) & ~np.isnan(y)
            if m.any():
                pred = agg([mdl.predict(emb[m]) for mdl in models])
                g, p = np.mean(y[m]), np.mean(pred)
                if kind == "Discrete":
                    g, p = int(g >= 0.5), int(p >= 0.5)
                gt.append(g)
                pr.append(p)
        out["pooled"] = metric(gt, pr)
    return out


def test_scores_equal_a_plain_sklearn_implementation_of_the_evaluator():
    emb, lab, protocol = _dataset()
    ours = protocol_scores(emb, lab, protocol, test_size=0.1)
    assert list(ours) == protocol.tasks
    for task in protocol.tasks:
        ref = _evaluator(emb, lab, protocol, task)
        m = "f1" if lab.task_types[lab.tasks.index(task)] == "Discrete" else "mse"
        got = ours[task]
        assert got[m] == pytest.approx(ref["private"], rel=1e-9, abs=1e-12), task
        assert got[f"{m}_public"] == pytest.approx(ref["public"], rel=1e-9, abs=1e-12), task
        assert got[f"{m}_no_ensemble"] == pytest.approx(ref["no_ensemble"], rel=1e-9), task
        if "pooled" in ref:
            assert got[f"{m}_pooled"] == pytest.approx(ref["pooled"], rel=1e-9), task
        else:
            assert f"{m}_pooled" not in got
        if m == "f1" and task not in protocol.sequence_level:
            # per test clip, in privateTest + publicTest order; their sums give the F1
            c, split = got["clip_counts"], protocol.split_of(task)
            assert sorted(c["clips"]) == sorted(split["privateTest"] + split["publicTest"])
            tp, fp, fn = (sum(c[k]) for k in ("tp", "fp", "fn"))
            assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(ref["private"], rel=1e-12)
        else:
            assert "clip_counts" not in got
    # the checks are not vacuous: the embedding carries the signal, the rare task is rare
    assert ours["behave"]["f1"] > 0.6 and ours["strain"]["f1"] > 0.6
    assert 0 < ours["rare"]["pos_rate"] < 0.15


def test_a_test_set_without_positives_scores_zero_as_in_the_evaluator():
    emb, lab, protocol = _dataset()
    y = lab.label_array.copy()
    for c in protocol.split_of("rare")["publicTest"] + protocol.split_of("rare")["privateTest"]:
        i = lab.clips.index(c)
        y[1, lab.starts[i] : lab.ends[i]] = 0
    lab = Labels(lab.tasks, lab.task_types, lab.sequence_level, y, lab.clips, lab.starts, lab.ends)
    res = protocol_scores(emb, lab, protocol)["rare"]
    assert res["n_pos_test"] == 0 and res["f1"] == 0.0 and res["f1_public"] == 0.0


def test_one_probe_seed_aggregates_to_that_probe_and_any_seed_calls_a_frame():
    emb, lab, protocol = _dataset()
    one = Protocol(**{**protocol.to_json(), "seeds": [42]})
    two = protocol_scores(emb, lab, protocol)
    single = protocol_scores(emb, lab, one)
    for task in ("behave", "speed"):
        m = "f1" if task == "behave" else "mse"
        assert single[task][m] == pytest.approx(single[task][f"{m}_no_ensemble"])
    # "any seed": the aggregate of two probes calls at least as many frames as either probe;
    # with a rare behaviour that raises recall of the positive class
    # (not vacuous: the rare task has positive test frames and one probe finds some of them)
    assert single["rare"]["n_pos_test"] > 0 and single["rare"]["recall"]["1"] > 0
    assert two["rare"]["recall"]["1"] >= single["rare"]["recall"]["1"]


def test_headline_is_the_behaviour_tasks_or_every_discrete_task_without_any():
    emb, lab, protocol = _dataset()
    res = evaluate(
        emb,
        lab,
        protocol,
        EvaluateConfig(
            knn_max_train=500, knn_max_test=200, n_pairs=500, n_queries=50, few_shot_draws=1
        ),
    )
    assert res["headline_tasks"] == ["behave", "rare"]
    assert res["mean_f1"] == pytest.approx(
        np.mean([res["tasks"][t]["f1"] for t in ("behave", "rare")])
    )
    assert res["mean_f1_public"] == pytest.approx(
        np.mean([res["tasks"][t]["f1_public"] for t in ("behave", "rare")])
    )
    # the round-2 task list holds conditions only: they become the headline, scored per frame
    cond = Protocol(**{**protocol.to_json(), "tasks": ["strain", "time_of_day"]})
    res = evaluate(
        emb,
        lab,
        cond,
        EvaluateConfig(
            knn_max_train=500, knn_max_test=200, n_pairs=500, n_queries=50, few_shot_draws=1
        ),
    )
    assert res["headline_tasks"] == ["strain"] and res["mean_f1"] == res["tasks"]["strain"]["f1"]
    assert headline_tasks({"x": {"type": "Continuous", "sequence_level": False}}) == []


def test_noise_scores_near_chance_and_a_perfect_embedding_scores_one():
    emb, lab, protocol = _dataset()
    noise = np.random.default_rng(5).normal(size=emb.shape)
    res = protocol_scores(noise, lab, protocol)
    pos = res["behave"]["pos_rate"]
    # balanced ridge on noise predicts ~half the frames positive: F1 ~ 2p / (1 + 2p)
    assert abs(res["behave"]["f1"] - 2 * pos / (1 + 2 * pos)) < 0.08
    y = np.nan_to_num(lab.label_array[0])
    perfect = np.stack([y, np.random.default_rng(1).normal(size=len(y))], axis=1)
    assert protocol_scores(perfect, lab, protocol)["behave"]["f1"] == pytest.approx(1.0)


def test_derived_protocol_has_the_release_shares_and_is_deterministic():
    clips = [f"c{i}" for i in range(1830)]
    p = derived_protocol(clips, ["t"], [], 42)
    split = p.split_of("t")
    assert [len(split[k]) for k in ("SubmissionTrain", "publicTest", "privateTest")] == [
        1307,
        261,
        262,
    ]
    assert p == derived_protocol(clips, ["t"], [], 42) and p.seeds == [42]
    p.validate(clips, "x")
    small = derived_protocol(clips[:6], ["t"], [], 0).split_of("t")
    assert all(small[k] for k in ("SubmissionTrain", "publicTest", "privateTest"))
    with pytest.raises(ValueError, match="x: split 'all' .*GHOST"):
        Protocol(
            ["t"], [], [42], {"all": {**split, "publicTest": ["GHOST"]}}, {"t": "all"}, "s"
        ).validate(clips, "x")


def test_submission_is_the_frame_map_with_missing_clips_zero():
    emb = np.arange(12, dtype=np.float32).reshape(6, 2) + 1
    fmap = {"A": [0, 2], "B": [2, 4], "C": [4, 7]}
    sub, filled = submission_array(emb[:5], ["A", "C"], np.array([0, 2]), np.array([2, 5]), fmap)
    assert filled == ["B"] and sub.shape == (7, 2) and sub.dtype == np.float32
    np.testing.assert_array_equal(sub[:2], emb[:2])
    np.testing.assert_array_equal(sub[2:4], 0)
    np.testing.assert_array_equal(sub[4:7], emb[2:5])
    check_submission(sub, 7, "s.npy")
    for bad, match in (
        (sub.astype(np.float64), "float32"),
        (sub[:, :1].repeat(129, 1), "128"),
        (sub[:5], "rows"),
    ):
        with pytest.raises(ValueError, match=f"s.npy.*{match}"):
            check_submission(bad, 7, "s.npy")
    with pytest.raises(ValueError, match="clip C: 4 embedded frames, 3 in the frame map"):
        submission_array(emb, ["A", "C"], np.array([0, 2]), np.array([2, 6]), fmap)


def _rare_labels(p: float, n: int = 20_000) -> tuple[Labels, np.ndarray]:
    """One behaviour of frequency p in 20 clips, and its labels."""
    y = (np.random.default_rng(0).random(n) < p).astype(np.float32)
    starts = np.arange(20) * (n // 20)
    lab = Labels(
        ["act"],
        ["Discrete"],
        np.array([False]),
        y[None],
        [f"c{i}" for i in range(20)],
        starts,
        starts + n // 20,
    )
    return lab, y


@pytest.mark.parametrize("p", [0.02, 0.1])
def test_rare_action_f1_does_not_reward_calling_every_frame_positive(p):
    from twbyol.evaluate import rare_actions
    from twbyol.probe import task_score

    lab, y = _rare_labels(p)
    freq = float(np.mean(y))

    def scored(pred):
        return rare_actions({"act": task_score(y, pred)}, lab, ["act"])[0]

    everything = scored(np.ones_like(y))
    assert everything["recall"] == 1.0 and everything["precision"] == pytest.approx(freq)
    assert everything["f1"] == pytest.approx(2 * freq / (1 + freq))  # low: 0.04 / 0.18
    # noise at the label's own rate scores ~p, a perfect probe 1
    guess = (np.random.default_rng(1).random(len(y)) < p).astype(float)
    assert abs(scored(guess)["f1"] - freq) < 0.03
    assert scored(y.astype(float)) == pytest.approx(
        {"task": "act", "class": 1.0, "frequency": freq, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    )


def test_rare_actions_are_the_rarest_fifth_with_their_f1_precision_recall():
    emb, lab, protocol = _dataset()
    res = evaluate(
        emb,
        lab,
        protocol,
        EvaluateConfig(
            knn_max_train=500, knn_max_test=200, n_pairs=500, n_queries=50, few_shot_draws=1
        ),
    )
    (rare,) = res["rare_actions"]  # two behaviour labels: the rarer one
    t = res["tasks"]["rare"]
    assert rare["task"] == "rare" and rare["f1"] == t["f1"] and rare["precision"] == t["precision"]
    assert rare["recall"] == t["recall"]["1"]
    assert (res["rare_action_f1"], res["rare_action_precision"], res["rare_action_recall"]) == (
        rare["f1"],
        rare["precision"],
        rare["recall"],
    )
    assert res["knn_balanced_accuracy"] == pytest.approx(
        np.mean([res["tasks"][k]["knn"]["balanced_accuracy"] for k in ("behave", "rare")])
    )
