"""Predictions: the evaluation's probes saved and applied to features reproduce the
evaluation's own calls and F1 (through the PCA too); files and CSVs; bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_protocol import _dataset
from twbyol import io
from twbyol.embed import pca_reduce
from twbyol.evaluate import protocol_scores
from twbyol.predictions import read_predictions, write_predictions
from twbyol.predictor import load_probes, save_probes
from twbyol.probe import classification_scores


def _identity(tmp_path):
    p = tmp_path / "projection.npz"
    io.write_npz(p, mean=np.zeros(0), axes=np.zeros((0, 0)))
    return p


def _test_rows(lab, protocol, task):
    split = protocol.split_of(task)
    return np.concatenate(
        [lab.rows(sorted(split[k], key=lab.clips.index)) for k in ("privateTest", "publicTest")]
    )


def test_saved_probes_reproduce_the_evaluations_calls_and_f1(tmp_path):
    emb, lab, protocol = _dataset()
    fitted: dict = {}
    tasks = protocol_scores(emb, lab, protocol, fitted=fitted)
    # per-frame Discrete tasks only, one probe per probe seed
    assert sorted(fitted) == ["behave", "rare"] and all(len(v) == 2 for v in fitted.values())
    meta = {"frames": {"size": 48, "fit": "letterbox"}, "window_stride": 1}
    names = save_probes(tmp_path / "p.npz", fitted, _identity(tmp_path), meta)
    probes = load_probes(tmp_path / "p.npz")
    assert names == probes.behaviours == ["behave", "rare"]
    calls, scores = probes.predict(emb)
    for k, t in enumerate(names):
        te = _test_rows(lab, protocol, t)
        y = lab.label_array[lab.tasks.index(t), te]
        ok = ~np.isnan(y)
        f1 = classification_scores(y[ok], calls[te][ok, k].astype(float))["f1"]
        assert f1 == pytest.approx(tasks[t]["f1"], abs=1e-12)
        # a call is the evaluator's any-seed aggregate; the score the seeds' mean decision
        each = [p.predict(np.asarray(emb, np.float64)) for p in fitted[t]]
        np.testing.assert_array_equal(calls[:, k], np.max(each, axis=0) > 0)
    assert tasks["behave"]["f1"] > 0.6  # the planted signal is found


def test_probes_compose_with_the_pca_of_the_embed_stage(tmp_path):
    emb, lab, protocol = _dataset()
    rng = np.random.default_rng(3)
    features = np.concatenate([emb, rng.normal(size=(len(emb), 20))], axis=1) @ rng.normal(
        size=(emb.shape[1] + 20,) * 2
    )
    reduced, mean, axes = pca_reduce(features.astype(np.float32), 8)
    np.testing.assert_allclose(reduced, (features - mean) @ axes, rtol=1e-4, atol=1e-3)
    io.write_npz(tmp_path / "proj.npz", mean=mean, axes=axes)
    fitted: dict = {}
    protocol_scores(reduced, lab, protocol, fitted=fitted)
    save_probes(tmp_path / "p.npz", fitted, tmp_path / "proj.npz", {"window_stride": 1})
    probes = load_probes(tmp_path / "p.npz")
    assert probes.coef.shape == (2, 2, features.shape[1])  # on the backbone's features
    _, scores = probes.predict(features)
    for k, t in enumerate(probes.behaviours):
        direct = np.mean([(reduced @ p.coef[:, 0] + p.intercept[0]) for p in fitted[t]], axis=0)
        np.testing.assert_allclose(scores[:, k], direct, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="features are 8-D, the probes expect 32-D"):
        probes.predict(reduced)


def test_probes_of_untrained_features_score_as_chance(tmp_path):
    """The null: probes fitted on noise features call behaviours no better than chance."""
    emb, lab, protocol = _dataset()
    noise = np.random.default_rng(5).normal(size=emb.shape)
    fitted: dict = {}
    tasks = protocol_scores(noise, lab, protocol, fitted=fitted)
    save_probes(tmp_path / "p.npz", fitted, _identity(tmp_path), {"window_stride": 1})
    calls, _ = load_probes(tmp_path / "p.npz").predict(noise)
    te = _test_rows(lab, protocol, "behave")
    y = lab.label_array[0, te]
    ok = ~np.isnan(y)
    f1 = classification_scores(y[ok], calls[te][ok, 0].astype(float))["f1"]
    rate = np.mean(y[ok] == 1)
    assert f1 == pytest.approx(tasks["behave"]["f1"])
    assert f1 < 2 * rate / (1 + rate) + 0.1  # F1 of calling at random at the base rate, + slack


def test_predictions_csv_roundtrip_and_bad_probe_files(tmp_path):
    calls = np.array([[1, 0], [0, 0], [1, 1]], np.uint8)
    scores = np.array([[0.5, -1.0], [-0.25, -0.5], [2.0, 0.125]], np.float32)
    write_predictions(tmp_path / "c.csv", ["sniff, nose", "groom"], calls, scores, 15.0)
    text = (tmp_path / "c.csv").read_text().splitlines()
    assert text[0] == 'frame,time_s,"sniff, nose",groom,"sniff, nose_score",groom_score'
    assert text[3].startswith("2,0.1333,1,1,")
    names, c, s = read_predictions(tmp_path / "c.csv")
    assert names == ["sniff, nose", "groom"]
    np.testing.assert_array_equal(c, calls)
    np.testing.assert_allclose(s, scores)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz: not a twbyol probes file"):
        load_probes(tmp_path / "bad.npz")
    io.write_npz(tmp_path / "other.npz", coef=np.zeros(1), meta=np.array('{"format": "x"}'))
    with pytest.raises(ValueError, match="other.npz: not a twbyol probes file.*format 'x'"):
        load_probes(tmp_path / "other.npz")


def test_seeds_whose_train_frames_held_one_class_call_it_everywhere(tmp_path):
    """As the evaluator's RidgeClassifier on one class: that class on every frame; the
    seeds' calls are then aggregated (any seed calls it)."""
    from twbyol.probe import FittedProbe

    coef = np.array([[1.0], [0.0]])
    two = FittedProbe(coef, np.array([-0.5]), np.array([0.0, 1.0]), 10)
    zeros = FittedProbe(coef, np.array([-9.0]), np.array([0.0]), 10)
    ones = FittedProbe(coef, np.array([-9.0]), np.array([1.0]), 10)
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    for probes, want in (([two, zeros], [0, 1]), ([two, ones], [1, 1]), ([zeros], [0, 0])):
        save_probes(tmp_path / "p.npz", {"b": probes}, _identity(tmp_path), {})
        calls, scores = load_probes(tmp_path / "p.npz").predict(x)
        assert calls[:, 0].tolist() == want
        np.testing.assert_allclose(
            scores[:, 0], np.mean([x @ p.coef[:, 0] + p.intercept[0] for p in probes], axis=0)
        )


def test_evaluate_cli_saves_probes_and_converts_a_gap_in_seconds(tmp_path):
    """`evaluate --probes-out` writes the probes its F1s come from (with the frames' size and
    fit for `predict --videos`), and `--crop-gap-s` becomes frames at the dataset's 30 fps."""
    from tests.test_figures_report import _write_dataset, config
    from twbyol import evaluate

    labels, index, lab = _write_dataset(tmp_path, "mice", 0)
    emb = np.random.default_rng(1).normal(size=(lab.shape[1], 8)).astype(np.float32)
    emb[:, 0] += 2 * np.nan_to_num(lab[0])
    io.write_npy(tmp_path / "e.npy", emb)
    io.write_npz(tmp_path / "e.projection.npz", mean=np.zeros(0), axes=np.zeros((0, 0)))
    args = ["--embedding", str(tmp_path / "e.npy"), "--labels", str(labels)]
    args += [
        "--index",
        str(index),
        "--protocol",
        str(labels).removesuffix(".npz") + ".protocol.json",
    ]
    args += ["--out", str(tmp_path / "ev.json"), "--run-id", "r", "--seed", "0"]
    args += ["--dataset", "mice", "--method", "byol"]
    quick = dict(test_size=0.25, crop_policy="max_gap", n_pairs=500, n_queries=50)
    quick.update(few_shot_draws=1)
    probes = ["--probes-out", str(tmp_path / "p.npz")]
    with pytest.raises(SystemExit):  # --probes-out without what it records
        evaluate.main([*args, *probes, *config(**quick)])
    probes_args = [*probes, "--projection", str(tmp_path / "e.projection.npz")]
    probes_args += config(**quick, frames_size=12, frames_fit="crop", crop_gap_s=0.5)
    assert evaluate.main([*args, *probes_args]) == 0
    ev = io.read_json(tmp_path / "ev.json")
    assert ev["crop_policy"] == {
        "policy": "max_gap",
        "rho": 2,
        "gap": 15,
        "gap_s": 0.5,
        "fps": 30.0,
    }
    probes = load_probes(tmp_path / "p.npz")
    assert probes.behaviours == ev["probes"] == ev["headline_tasks"]
    assert (
        probes.meta["frames"] == {"size": 12, "fit": "crop"} and probes.meta["window_stride"] == 1
    )
    assert probes.meta["f1"] == {t: ev["tasks"][t]["f1"] for t in probes.behaviours}


def test_the_output_folder_is_replaced_whole_and_only_if_it_holds_predictions(tmp_path):
    from twbyol.predict import _fill_dir
    from twbyol.predictions import SUMMARY

    def write(d):
        (d / "a.csv").write_text("frame\n")
        (d / SUMMARY).write_text("{}")

    out = tmp_path / "out"
    _fill_dir(out, write)
    _fill_dir(out, write)  # an earlier predictions folder: replaced
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", SUMMARY]

    def fail(d):
        (d / "half.csv").write_text("frame\n")
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError):
        _fill_dir(out, fail)
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", SUMMARY]  # the old one intact
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left
    mine = tmp_path / "my recordings"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="my recordings: a folder that is not an earlier"):
        _fill_dir(mine, write)
    assert (mine / "notes.txt").read_text() == "keep me"
