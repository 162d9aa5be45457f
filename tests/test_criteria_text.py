"""The criteria in words (twbyol.criteria_text): the sentences the report and the results
blocks of docs/results.md say for the records stats.criteria writes, in the cases whose wording
matters."""

import json

import numpy as np
import pytest

from tests.test_stats import (
    TASKS,
    _experiment,
    _pair_table,
    _rows,
    _run,
    _step_bench,
    _table,
    _table_rows,
)
from twbyol import criteria_text
from twbyol.stats import calibration, criteria
from twbyol.tables import Table


def _words(exp, table, **kw) -> dict[str, dict]:
    """Each criterion's statement, detail and evidence line, read back from JSON as the report
    reads criteria.json."""
    crit = json.loads(
        json.dumps({"proposed": "tw", "baseline": "base", "criteria": criteria(exp, table, **kw)})
    )
    return {
        c["id"]: {
            "statement": criteria_text.statement(c),
            "detail": criteria_text.detail(exp, crit, c),
            "rests_on": criteria_text.rests_on(crit, c),
            "evidence": criteria_text.evidence(crit, c),
        }
        for c in crit["criteria"]
    }


def test_criterion_one_names_its_tasks_runs_and_power():
    rats = _rows("base", {f"f1/{t}": [0.5] * 3 for t in ("Pinning", "Solitary")}, dataset="rats")
    w = _words(_experiment(), Table([*_table_rows(), *rats]), frame_tasks=TASKS, tol=0.005)
    assert "over the 8 per-frame tasks of mice >= +0.02" in w["f1_gain"]["statement"]
    assert w["f1_gain"]["detail"].startswith("tw 0.648 vs base 0.610: +3.83 points, 95 % CI")
    assert "(n = 3 seeds)" in w["f1_gain"]["detail"]
    assert "+2.00 points has power" in w["f1_gain"]["rests_on"]
    assert "needs 3 seeds" in w["f1_gain"]["evidence"]["power"]


def test_missing_runs_are_named():
    exp = _experiment(tau_sweep=["tw15", "tw_60_missing"])
    exp["study"]["proposed"] = "not_evaluated"
    w = _words(exp, _table(), frame_tasks=TASKS, tol=0.005)
    for cid in ("f1_gain", "task_wins", "temporal_rho", "seed_variance", "robustness"):
        assert w[cid]["detail"] == "not run: no evaluation of proposed run 'not_evaluated' on mice"
    assert w["f1_gain"]["evidence"]["basis"] == "mean F1, paired by seed"
    w = _words(_experiment(tau_sweep=["tw15", "tw_60_missing"]), _table(), frame_tasks=TASKS, tol=0)
    assert "tw_60_missing vs base: no paired evaluations" in w["robustness"]["detail"]
    assert "50 % data runs not configured" in w["robustness"]["detail"]


def test_seed_variance_says_what_the_test_showed():
    rng = np.random.default_rng(3)
    base = rng.normal(0.6, 0.02, 40)
    steady = _words(
        _experiment(), _pair_table(rng.normal(0.62, 0.005, 40), base), frame_tasks=TASKS, tol=0.005
    )["seed_variance"]
    assert steady["detail"].endswith(": shown lower")
    noisy = _words(
        _experiment(), _pair_table(rng.normal(0.62, 0.06, 40), base), frame_tasks=TASKS, tol=0.005
    )["seed_variance"]
    assert noisy["detail"].endswith(": shown higher")
    three = _words(
        _experiment(),
        _pair_table([0.62, 0.63, 0.625], [0.6, 0.65, 0.58]),
        frame_tasks=TASKS,
        tol=0.005,
    )["seed_variance"]
    assert "'not higher' is not established" in three["detail"]
    assert "2-fold variance difference with power 0.08" in three["evidence"]["power"]
    assert "54 seeds for 2-fold" in three["rests_on"]
    two = _words(
        _experiment(), _pair_table([0.6, 0.61], [0.6, 0.65]), frame_tasks=TASKS, tol=0.005
    )["seed_variance"]
    assert "(2 paired seeds); " in two["detail"] and two["evidence"]["power"] == "n/a"


def test_robustness_says_there_is_no_gain_to_retain():
    rows = _rows("base", {"mean_f1": [0.60, 0.62, 0.61]})
    rows += _rows("tw", {"mean_f1": [0.58] * 3}) + _rows("tw15", {"mean_f1": [0.65, 0.66, 0.64]})
    detail = _words(_experiment(tau_sweep=["tw15"]), Table(rows), frame_tasks=TASKS, tol=0.005)[
        "robustness"
    ]["detail"]
    assert detail.startswith("no gain to retain: criterion 1's gain is -3.00 points")
    assert "tw15 (tau 15) vs base: +4.00 points" in detail and "retained" not in detail


def test_robustness_counts_each_retention():
    exp = _experiment(tau_sweep=["tw15", "tw"], half_data="half", half_data_baseline="half_base")
    w = _words(exp, _table(), frame_tasks=TASKS, tol=0.005)["robustness"]
    assert "half (tau 30) vs half_base: +3.33 points = 87% retained" in w["detail"]
    assert w["evidence"]["power"] == "none: a ratio of two seed-noisy differences"


def test_cost_names_its_evidence():
    exp = _experiment()
    gpu_rows = _rows("base", _run([0.60, 0.62, 0.61], [0.0] * 8, [0.3] * 3, [9, 9, 9], gpu=4.0))
    gpu_rows += _rows(
        "tw", _run([0.64, 0.65, 0.655], [0.03] * 8, [0.36] * 3, [30, 40, 50], gpu=4.1)
    )
    slow = _step_bench([1.2] * 20)
    w = _words(exp, Table(gpu_rows), frame_tasks=TASKS, tol=0.005, step_bench=slow)["gpu_hours"]
    assert w["detail"].startswith("4.1 vs 4 GPU-hours, mean of 3 paired seeds: +2.5%")
    assert (
        "; isolated step benchmark beside it: median per-step time ratio tw / base" in w["detail"]
    )
    assert w["evidence"]["basis"].startswith("GPU-hours of pretraining")
    cpu = _table()
    w = _words(exp, cpu, frame_tasks=TASKS, tol=0.005)["gpu_hours"]
    assert w["detail"].startswith("the runs trained on CPU (0 GPU-hours), and no step benchmark")
    assert "is no evidence of cost" in w["detail"]
    noisy = _step_bench([0.9, 1.0, 1.02, 1.1, 1.2] * 4)
    w = _words(exp, cpu, frame_tasks=TASKS, tol=0.005, step_bench=noisy)["gpu_hours"]
    assert "its CI spans +5%: rerun it with more steps" in w["detail"]
    assert "(cpu, backbone tiny, batch 8)" in w["detail"]
    other = _step_bench([1.0] * 20, prop="tw15")
    w = _words(exp, cpu, frame_tasks=TASKS, tol=0.005, step_bench=other)["gpu_hours"]
    assert "the step benchmark compares tw15 with base, not the study's runs" in w["detail"]


def test_the_seed_variance_rule_is_said_once_in_the_intro():
    exp = _experiment()
    crit = {"proposed": "tw", "baseline": "base", "dataset": "mice", "criteria": []}
    text = criteria_text.intro(exp, crit)
    assert text.startswith("Proposed tw vs baseline base on mice.")
    assert text.count("Pitman-Morgan") == 1 and criteria_text.SEED_VARIANCE_RULE in text


@pytest.mark.parametrize("cid", ["task_wins", "temporal_rho"])
def test_descriptive_criteria_say_what_they_counted(cid):
    w = _words(_experiment(), _table(), frame_tasks=TASKS, tol=0.005)[cid]
    expected = {
        "task_wins": "7/8 tasks improve or tie (wins 5, ties 2, losses 1;",
        "temporal_rho": "rho 0.350 vs 0.300 (mean of 3 paired seeds): +16.7% relative",
    }[cid]
    assert w["detail"].startswith(expected)


def test_calibration_lines_say_what_each_check_read():
    rows = _table_rows() + _rows("sup", {"mean_f1": [0.65, 0.67, 0.66]})
    exp = _experiment(control="ctrl", upper_bound="sup")
    refs = {"mice": {"mean": {"always_positive": 0.32, "ceiling": 0.95}}}
    checks = json.loads(json.dumps(calibration(exp, Table(rows), refs, "mice")))
    lines = {c["id"]: criteria_text.calibration_line(c) for c in checks}
    assert lines["room"] == (
        "- calibration room: **PASS** (ceiling - every frame positive >= 0.30): 0.63; "
        "reference lines (ttests.json `references`)"
    )
    assert lines["learns"].endswith("0.29; mean over base's seeds")
    assert "; sup - base: +5.00 points, 95 % CI [" in lines["headroom"]
    assert lines["headroom"].endswith("(greater), n = 3")
    assert lines["positive_control"].endswith(
        "NOT RUN** (positive control - its baseline >= "
        "+2 points, one-sided p < 0.05): n/a; the study "
        "names no positive_control"
    )
    exp["study"]["positive_control"] = "pos"
    line = criteria_text.calibration_line(
        next(
            c for c in calibration(exp, Table(rows), refs, "mice") if c["id"] == "positive_control"
        )
    )
    assert line.endswith("; no evaluation of pos and base on mice")
