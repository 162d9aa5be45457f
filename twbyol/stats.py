"""Stage `stats`: paired t-tests across seeds and the study's six pass criteria.

    twbyol stats --experiment results/smoke/experiment.json \\
        --evaluations results/smoke/evaluate/*/seed*/*.json \\
        --efficiency results/smoke/pretrain/*/seed*/efficiency.json \\
        --step-benchmark results/smoke/stats/step_benchmark.json --out-dir results/smoke/stats

Outputs in --out-dir:
- comparison.tsv: run_id, seed, dataset, metric, value — one row per number. Metrics: the
  headline scalars of each evaluation (HEADLINE), `f1/<task>` and `mse/<task>` per task,
  a binary task's `precision/<task>` and `recall/<task>` (its positive class, private test
  frames) and `n_pos/<task>` (positive test frames), `knn_accuracy/<task>`, and
  `efficiency/<key>` per pretraining run (dataset = the pretraining dataset). Run and seed
  of an efficiency.json are read from its path, .../{run}/seed{s}/efficiency.json (fields
  run_id/seed in the file win if present).
- ttests.json: every run against the baseline, per dataset, paired by seed, on every
  HEADLINE metric (one-sided "greater", two-sided p, 95 % t-interval of the mean
  difference), plus per-task wins/ties/losses of mean F1 over seeds (a tie is a mean
  difference within --tie-tol). p-values are not corrected for multiple comparisons: only
  criterion 1's test is pre-registered; the rest is descriptive. Each comparison has a
  `power` (power_summary): at its observed paired SD, the smallest difference the one-sided
  test detects with 80 % power (`mde`, noncentral t with n - 1 df) and the seeds a target
  effect needs (`seeds_needed`: +2 points, or +10 % of the baseline's rho; null beyond 100).
- criteria.json: {"criteria": [six entries], "sanity": {...}, "calibration": [...]}. Each
  criterion is a record of values, no sentences: {"id", "value", "threshold", "conditions"
  (True / False / None: unmeasured), "verdict", "evidence"} and the facts the verdict rests
  on (the comparison `test`, its `power`, criterion 5's `finding`, criterion 6's `pairs`, a
  `reason` {"code", ...} where it is NOT RUN); `evidence` = {"basis", "test" (identifiers),
  "n", "power" (numbers)}. A verdict is FAIL when any measured condition fails, NOT RUN when
  a condition cannot be measured (a run, seed or number is missing) and none fails, PASS only
  when every condition is measured and holds. F1 is in [0, 1] throughout: "+2 F1 points" is
  +0.02. The sentences, and what each PASS means: twbyol.criteria_text.
- sanity.power: per dataset, criterion 1's comparison's MDE against the upper bound's
  headroom over the baseline (headroom_power: enough when headroom >= 2 x MDE).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twbyol import io
from twbyol.bootstrap import clip_bootstrap
from twbyol.fmt import num, sig
from twbyol.statistics import (  # criterion 1 tests at ALPHA; MDEs at POWER
    ALPHA,
    paired_ttest,
    pitman_morgan,
    power_summary,
    variance_test_power,
)
from twbyol.tables import (
    HEADLINE,
    Table,
    collect_clip_counts,
    collect_references,
    comparison_rows,
    headline,
    headline_dataset,
    load_efficiency,
    load_evaluations,
    run_order,
    task_kinds,
)

F1_GAIN = 0.02  # criterion 1: +2 F1 points
TASK_SHARE = 0.75  # criterion 2: 6 of 8 tasks
RHO_GAIN = 0.10  # criterion 3: +10 % relative
COST_GAIN = 0.05  # criterion 4: +5 % GPU-hours
RETAINED = 0.75  # criterion 6: 75 % of the gain


# ---- inputs -----------------------------------------------------------------------------


# ---- comparisons ------------------------------------------------------------------------


def compare(
    table: Table, run: str, ref: str, dataset: str, metric: str, alternative: str = "greater"
) -> dict:
    """paired_ttest(run, ref) over their common seeds, with the seeds and both means."""
    seeds, a, b = table.paired(run, ref, dataset, metric)
    return {
        **paired_ttest(a, b, alternative),
        "seeds": seeds,
        "mean_run": float(a.mean()) if len(a) else float("nan"),
        "mean_ref": float(b.mean()) if len(b) else float("nan"),
    }


def per_task(table: Table, run: str, ref: str, dataset: str, tasks: list[str], tol: float) -> dict:
    """Wins/ties/losses of run vs ref: mean over common seeds of the per-task F1 difference;
    |diff| <= tol is a tie. Tasks without values on both sides are left out."""
    out: dict = {"wins": 0, "ties": 0, "losses": 0, "tolerance": tol, "tasks": {}}
    for task in tasks:
        seeds, a, b = table.paired(run, ref, dataset, f"f1/{task}")
        if not seeds:
            continue
        diff = float(np.mean(a - b))
        outcome = "tie" if abs(diff) <= tol else ("win" if diff > 0 else "loss")
        out[{"win": "wins", "tie": "ties", "loss": "losses"}[outcome]] += 1
        out["tasks"][task] = {"diff": diff, "outcome": outcome, "n_seeds": len(seeds)}
    out["n_tasks"] = len(out["tasks"])
    return out


def target_effect(metric: str, mean_ref: float) -> tuple[float | None, str]:
    """The effect a comparison's power analysis asks about, and why that one: criterion 3's
    +10 % of the baseline's mean for spearman_rho, criterion 1's +2 points (0.02 on a [0, 1]
    score) for every other metric."""
    if metric == "spearman_rho":
        ok = math.isfinite(mean_ref) and mean_ref != 0
        return (RHO_GAIN * abs(mean_ref) if ok else None), (
            f"criterion 3: +{RHO_GAIN:.0%} of the baseline's rho"
        )
    return F1_GAIN, "criterion 1's +2 points (0.02 on a [0, 1] score)"


def comparison_power(metric: str, c: dict) -> dict:
    """power_summary of a compare() result at the metric's target_effect."""
    return power_summary(c["sd_diff"], c["n"], *target_effect(metric, c["mean_ref"]))


def ttests(
    table: Table,
    baseline: str | None,
    frame_tasks: list[str],
    tol: float,
    clip_counts: dict[str, dict] | None = None,
) -> dict:
    """Every run vs the baseline on every HEADLINE metric, per dataset (ttests.json), each
    with its power analysis (`power`: comparison_power); mean_f1 also with the clip
    bootstrap (`clip_bootstrap`, twbyol.bootstrap) where `clip_counts`
    (tables.collect_clip_counts) has both runs' per-clip counts."""
    tests: dict = {}
    clip_counts = clip_counts or {}
    for ds in table.datasets:
        for run in table.runs:
            if baseline is None or run == baseline:
                continue
            metrics = {
                m: {**(c := compare(table, run, baseline, ds, m)), "power": comparison_power(m, c)}
                for m in HEADLINE
                if table.values(run, ds, m) and table.values(baseline, ds, m)
            }
            counts = clip_counts.get(ds, {"runs": {}})
            if "mean_f1" in metrics and {run, baseline} <= set(counts["runs"]):
                metrics["mean_f1"]["clip_bootstrap"] = clip_bootstrap(
                    counts["runs"][run], counts["runs"][baseline], counts["tasks"]
                )
            if metrics:
                tests.setdefault(ds, {})[run] = {
                    "metrics": metrics,
                    "per_task": per_task(table, run, baseline, ds, frame_tasks, tol),
                }
    return {
        "baseline": baseline,
        "alternative": "greater",
        "tie_tolerance": tol,
        "frame_tasks": frame_tasks,
        "note": "paired by seed; p one-sided (run > baseline) and two-sided; ci95 = two-sided 95 % "
        "t-interval of the mean difference; no multiple-comparison correction; power: at the "
        "observed paired SD, the smallest difference the one-sided test detects with 80 % power "
        "(mde, noncentral t) and the seeds a target effect needs (seeds_needed); "
        "mean_f1's clip_bootstrap: the percentile interval of the difference with seeds and "
        "test clips resampled (twbyol.bootstrap), where the t-interval holds the test set fixed",
        "tests": tests,
    }


# ---- criteria ---------------------------------------------------------------------------


def _verdict(conditions: list[bool | None]) -> str:
    """FAIL if any measured condition fails; NOT RUN if one could not be measured; else PASS."""
    if any(c is False for c in conditions):
        return "FAIL"
    return "NOT RUN" if any(c is None for c in conditions) or not conditions else "PASS"


def _criterion(
    cid: str, value, threshold, conditions: list[bool | None], evidence: dict, **facts
) -> dict:
    """A criterion as values: the number the verdict reads, its threshold, the conditions
    (True / False / None: unmeasured), the verdict, the evidence and the facts it rests on.
    Its sentences are the report layer's (twbyol.criteria_text)."""
    return {
        "id": cid,
        "value": value,
        "threshold": threshold,
        "conditions": conditions,
        "verdict": _verdict(conditions),
        "evidence": evidence,
        **facts,
    }


def _evidence(basis: str, test: str | None, n, power: dict | None = None) -> dict:
    """What a verdict rests on: the number read (`basis`), the test behind it (None: none), n,
    and what it can detect (`power`: numbers; None where there are none)."""
    return {"basis": basis, "test": test, "n": n, "power": power}


@dataclass
class _Study:
    """What every criterion needs: the table, the two runs, the dataset, the step benchmark."""

    exp: dict
    table: Table
    frame_tasks: list[str]
    tol: float
    base: str | None
    prop: str | None
    ds: str | None
    not_evaluated: list[dict]  # {"role", "run"}: the proposed or baseline run without evaluation
    step_bench: dict | None = None  # step_benchmark.json (twbyol.benchmark), if given

    @property
    def missing(self) -> bool:
        return bool(self.not_evaluated)

    def reason(self, code: str = "not_evaluated", **facts) -> dict:
        """Why a criterion is not measured: the runs without an evaluation, else `code`."""
        if self.missing:
            return {"code": "not_evaluated", "runs": self.not_evaluated, "dataset": self.ds}
        return {"code": code, **facts}


def _ds_tasks(s: _Study) -> list[str]:
    """The per-frame tasks of the criteria's dataset that have an F1 (the frame_tasks of the
    whole experiment span every evaluated dataset; a task without a positive test frame has
    none and is out of mean_f1 too)."""
    if s.missing or s.ds is None:
        return []
    return [t for t in s.frame_tasks if s.table.values(s.base, s.ds, f"f1/{t}")]


def _c1_f1_gain(s: _Study) -> dict:
    threshold = {"mean_diff": F1_GAIN, "p": ALPHA}
    facts = {"dataset": s.ds, "n_tasks": len(_ds_tasks(s))}
    if s.missing:
        ev = _evidence("mean_f1", "paired_t", 0)
        reason = s.reason()
        return _criterion(
            "f1_gain", None, threshold, [None], ev, test=None, power=None, reason=reason, **facts
        )
    c = compare(s.table, s.prop, s.base, s.ds, "mean_f1")
    pw = comparison_power("mean_f1", c)
    conds = [
        None if c["n"] == 0 else c["mean_diff"] >= F1_GAIN,
        None if math.isnan(c["p"]) else c["p"] < ALPHA,
    ]
    ev = _evidence("mean_f1", "paired_t", c["n"], pw)
    return _criterion("f1_gain", c["mean_diff"], threshold, conds, ev, test=c, power=pw, **facts)


def _c2_task_wins(s: _Study) -> dict:
    pt = None if s.missing else per_task(s.table, s.prop, s.base, s.ds, s.frame_tasks, s.tol)
    ev = _evidence("per_task_f1", None, None)
    if not pt or not pt["n_tasks"]:
        reason = s.reason("no_per_task_f1")
        return _criterion(
            "task_wins", None, TASK_SHARE, [None], ev, per_task=pt, tolerance=s.tol, reason=reason
        )
    share = (pt["wins"] + pt["ties"]) / pt["n_tasks"]
    ev["n"] = {"tasks": pt["n_tasks"], "seeds": min(t["n_seeds"] for t in pt["tasks"].values())}
    conds = [share >= TASK_SHARE]
    return _criterion("task_wins", share, TASK_SHARE, conds, ev, per_task=pt, tolerance=s.tol)


def _c3_temporal_rho(s: _Study) -> dict:
    c = None if s.missing else compare(s.table, s.prop, s.base, s.ds, "spearman_rho")
    if not c or not c["n"] or c["mean_ref"] == 0:
        ev = _evidence("spearman_rho", "relative_change", c["n"] if c else 0)
        reason = s.reason("no_relative_rho")  # no paired rho, or the baseline's rho is 0
        return _criterion(
            "temporal_rho", None, RHO_GAIN, [None], ev, test=c, power=None, reason=reason
        )
    rel = (c["mean_run"] - c["mean_ref"]) / abs(c["mean_ref"])
    pw = comparison_power("spearman_rho", c)
    ev = _evidence("spearman_rho", "relative_change", c["n"], pw)
    return _criterion("temporal_rho", rel, RHO_GAIN, [rel >= RHO_GAIN], ev, test=c, power=pw)


def _c4_cost(s: _Study) -> dict:
    """GPU-hours when both runs trained on GPUs (every seed's efficiency.json has GPU-hours
    > 0; train.py writes 0 on CPU); otherwise the isolated step benchmark, never the wall
    time of runs that shared a machine with other jobs. `gpu`: "zero" (the runs trained on
    CPU), "absent" (no GPU-hours of both runs) or "measured"."""
    gpu = [s.table.values(r, s.ds, "efficiency/gpu_hours") for r in (s.prop, s.base)]
    bench = _step_benchmark_result(s)
    if all(g and min(g.values()) > 0 for g in gpu):
        seeds, a, b = s.table.paired(s.prop, s.base, s.ds, "efficiency/gpu_hours")
        rel = float(a.mean() / b.mean() - 1)
        sd = [float(np.std(v, ddof=1)) / b.mean() if len(v) > 1 else float("nan") for v in (a, b)]
        hours = {"proposed": float(a.mean()), "baseline": float(b.mean())}
        ev = _evidence("gpu_hours", "mean_ratio", len(seeds), {"sd_over_baseline": sd})
        return _criterion(
            "gpu_hours",
            rel,
            COST_GAIN,
            [rel <= COST_GAIN],
            ev,
            gpu="measured",
            gpu_hours=hours,
            step_benchmark=bench,
        )
    gpu_state = "zero" if all(gpu) else "absent"
    if bench is None or not bench["study_pair"]:
        ev = _evidence("step_benchmark", None, 0)
        reason = s.reason("no_cost_evidence")
        return _criterion(
            "gpu_hours",
            None,
            COST_GAIN,
            [None],
            ev,
            gpu=gpu_state,
            step_benchmark=bench,
            reason=reason,
        )
    rel = bench["median_ratio"] - 1
    ci = [bench["ci95"][0] - 1, bench["ci95"][1] - 1]
    ev = _evidence("step_benchmark", "median_ratio", bench["n"], {"ci95": ci})
    return _criterion(
        "gpu_hours",
        rel,
        COST_GAIN,
        [rel <= COST_GAIN],
        ev,
        gpu=gpu_state,
        step_benchmark=bench,
        ci_spans_threshold=ci[0] <= COST_GAIN < ci[1],
    )


def _step_benchmark_result(s: _Study) -> dict | None:
    """The step benchmark's proposed / baseline comparison, or None when none was given;
    `study_pair` False (and no comparison) when it does not time the study's two runs."""
    b = s.step_bench
    if not b:
        return None
    pair = {"proposed": b.get("proposed"), "baseline": b.get("baseline")}
    if (pair["proposed"], pair["baseline"]) != (s.prop, s.base):
        return {**pair, "study_pair": False}
    return {
        **b["comparison"],
        **pair,
        "study_pair": True,
        "n": b["comparison"]["n_pairs"],
        "median_s": {k: b["runs"][run]["median_s"] for k, run in pair.items()},
        "device": b["device"],
        "backbone": b["backbone"].get("name"),
        "batch": b["batch"],
    }


def _c5_seed_variance(s: _Study) -> dict:
    """PASS only when the Pitman-Morgan test shows the proposed run's seed variance lower
    (one-sided p < ALPHA); `finding`: "lower", "higher" or "neither" (what that means:
    twbyol.criteria_text)."""
    if s.missing:
        ev = _evidence("seed_variance", "pitman_morgan", 0)
        reason = s.reason()
        return _criterion(
            "seed_variance", None, 1.0, [None], ev, test=None, finding=None, reason=reason
        )
    seeds, a, b = s.table.paired(s.prop, s.base, s.ds, "mean_f1")
    pm = pitman_morgan(a, b)
    power = dict(variance_test_power(pm["n"])) if pm["n"] >= 3 else None
    ev = _evidence("seed_variance", "pitman_morgan", pm["n"], power)
    if pm["reason"]:
        return _criterion("seed_variance", None, 1.0, [None], ev, test=pm, finding=None)
    lower, higher = pm["p_less"] < ALPHA, pm["p_greater"] < ALPHA
    finding = "lower" if lower else "higher" if higher else "neither"
    return _criterion("seed_variance", pm["ratio"], 1.0, [lower], ev, test=pm, finding=finding)


def _retention(s: _Study, run: str | None, ref: str | None, gain: float) -> dict:
    """One robustness pair: its mean paired F1 difference and the share of `gain` it keeps
    (None without paired evaluations or without a positive gain)."""
    seeds, a, b = s.table.paired(run, ref, s.ds, "mean_f1") if run and ref else ([], [], [])
    tau = s.exp.get("runs", {}).get(run, {}).get("tau")
    g = float(np.mean(a - b)) if seeds else None
    kept = g / gain if g is not None and gain > 0 else None
    return {"run": run, "reference": ref, "tau": tau, "n": len(seeds), "gain": g, "retained": kept}


def _c6_robustness(s: _Study, c1: dict) -> dict:
    """Each tau-sweep run vs the baseline and the 50 %-data run vs its own baseline keep
    >= 75 % of criterion 1's gain; FAIL when that gain is <= 0 (no gain to retain: it never
    passes vacuously); a missing run makes it NOT RUN unless a measured retention fails."""
    gain = c1["value"] if c1["value"] is not None else float("nan")
    study = s.exp.get("study") or {}
    sweep = study.get("tau_sweep") or []
    pairs = [(r, s.base) for r in sweep] + [
        (study.get("half_data"), study.get("half_data_baseline"))
    ]
    rows = [_retention(s, run, ref, gain) for run, ref in pairs]
    conds = ([] if sweep else [None]) + [
        None if r["retained"] is None else r["retained"] >= RETAINED for r in rows
    ]
    mde = (c1.get("power") or {}).get("mde", float("nan"))
    ev = _evidence(
        "retention",
        None,
        {r["run"]: r["n"] for r in rows if r["n"]},
        {"gain": gain, "mde": mde, "gain_below_mde": bool(gain > 0 and mde > gain)},
    )
    facts = {"gain": gain, "tau_sweep": bool(sweep), "pairs": rows}
    if math.isnan(gain):
        reason = s.reason("gain_unmeasured")
        return _criterion("robustness", None, RETAINED, [None], ev, reason=reason, **facts)
    if gain <= 0:  # no gain to retain
        return _criterion("robustness", None, RETAINED, [False], ev, **facts)
    kept = [r["retained"] for r in rows if r["retained"] is not None]
    worst = min(kept) if kept else None
    return _criterion("robustness", worst, RETAINED, conds, ev, **facts)


def criteria(
    exp: dict, table: Table, frame_tasks: list[str], tol: float, step_bench: dict | None = None
) -> list[dict]:
    """The study's six pass criteria, proposed vs baseline on the pretraining dataset (the
    first evaluated one when it has no labels: headline_dataset); `step_bench`
    (step_benchmark.json) is criterion 4's evidence for runs trained on CPU."""
    study = exp.get("study") or {}
    ds = headline_dataset(exp)
    have = {r for r in table.runs if table.values(r, ds, "mean_f1")}
    not_evaluated = [
        {"role": k, "run": study.get(k)}
        for k in ("baseline", "proposed")
        if study.get(k) not in have
    ]
    s = _Study(
        exp,
        table,
        frame_tasks,
        tol,
        study.get("baseline"),
        study.get("proposed"),
        ds,
        not_evaluated,
        step_bench,
    )
    c1 = _c1_f1_gain(s)
    return [
        c1,
        _c2_task_wins(s),
        _c3_temporal_rho(s),
        _c4_cost(s),
        _c5_seed_variance(s),
        _c6_robustness(s, c1),
    ]


def _significant(c: dict) -> bool | None:
    """mean_diff > 0 at one-sided p < ALPHA; None (undetermined) when p is undefined."""
    return None if math.isnan(c["p"]) else bool(c["mean_diff"] > 0 and c["p"] < ALPHA)


def headroom_power(
    table: Table, ds: str, base: str | None, prop: str | None, upper: str | None
) -> dict:
    """Whether the benchmark can show a gain on `ds`: the MDE of proposed vs baseline (mean F1,
    80 % power, their observed paired SD) against the upper bound's headroom over the
    baseline. `enough` is headroom >= 2 x MDE: a method that closed half the distance to the
    upper bound would be detected; None when either is unmeasured."""
    pw = (
        comparison_power("mean_f1", compare(table, prop, base, ds, "mean_f1"))
        if base and prop and table.values(prop, ds, "mean_f1") and table.values(base, ds, "mean_f1")
        else power_summary(float("nan"), 0, F1_GAIN, "criterion 1's +2 points")
    )
    head = (
        compare(table, upper, base, ds, "mean_f1")["mean_diff"]
        if upper
        and base
        and table.values(upper, ds, "mean_f1")
        and table.values(base, ds, "mean_f1")
        else float("nan")
    )
    measured = not (math.isnan(head) or math.isnan(pw["mde"]))
    return {
        **pw,
        "proposed": prop,
        "baseline": base,
        "upper_bound": upper,
        "headroom": head,
        "headroom_over_mde": head / pw["mde"] if measured else float("nan"),
        "enough": bool(head >= 2 * pw["mde"]) if measured else None,
        "rule": "enough: the upper bound's headroom over the baseline >= 2 x the MDE",
    }


def sanity(exp: dict, table: Table, frame_tasks: list[str]) -> dict:
    """Calibration of the benchmark (DESIGN: the synthetic benchmark must be able to say no,
    and yes).

    Every run vs the untrained control (must beat it) and vs the supervised upper bound
    (must stay below), on mean F1 per dataset ("beats"/"below": one-sided p < 0.05, None
    when p is undefined); tasks every run solves (F1 >= 0.99 on every
    seed: trivial), the spread of per-task mean F1 across runs, and per dataset the power of
    the study's comparison against the room the upper bound leaves (`power`: headroom_power).
    """
    runs = exp.get("runs", {})
    study = exp.get("study") or {}
    control = study.get("control") or next(
        (r for r, c in runs.items() if c.get("method") == "random_init"), None
    )
    upper = study.get("upper_bound") or next(
        (r for r, c in runs.items() if c.get("method") == "supervised"), None
    )
    out: dict = {
        "control": control,
        "upper_bound": upper,
        "vs_control": {},
        "vs_upper_bound": {},
        "trivial_tasks": {},
        "task_spread": {},
        "power": {},
        "controls": {},
    }
    # The benchmark must be able to say yes: the positive control (a weighting that uses the
    # ground truth) beats its baseline; and no: the negative control (TW-BYOL's weights
    # permuted across pairs) does not.
    roles = [
        (k, study.get(k), control_reference(study, k))
        for k in ("positive_control", "anti_control", "negative_control")
    ]
    for ds in table.datasets:
        for role, run, ref in roles:
            if (
                run
                and ref
                and table.values(run, ds, "mean_f1")
                and table.values(ref, ds, "mean_f1")
            ):
                c = compare(table, run, ref, ds, "mean_f1")
                out["controls"].setdefault(ds, {})[role] = {
                    **c,
                    "run": run,
                    "reference": ref,
                    "beats": _significant(c),
                    "power": comparison_power("mean_f1", c),
                }
        out["power"][ds] = headroom_power(
            table, ds, study.get("baseline"), study.get("proposed"), upper
        )
        for run in table.runs:
            if control and run != control and table.values(control, ds, "mean_f1"):
                c = compare(table, run, control, ds, "mean_f1")
                out["vs_control"].setdefault(ds, {})[run] = {**c, "beats": _significant(c)}
            if upper and run != upper and table.values(upper, ds, "mean_f1"):
                c = compare(table, upper, run, ds, "mean_f1")
                out["vs_upper_bound"].setdefault(ds, {})[run] = {**c, "below": _significant(c)}
        for task in frame_tasks:
            per_run = {r: table.values(r, ds, f"f1/{task}") for r in table.runs}
            per_run = {r: v for r, v in per_run.items() if v}
            if not per_run:
                continue
            means = [float(np.mean(list(v.values()))) for v in per_run.values()]
            out["task_spread"].setdefault(ds, {})[task] = {
                "min": min(means),
                "max": max(means),
                "spread": max(means) - min(means),
            }
            if all(min(v.values()) >= 0.99 for v in per_run.values()):
                out["trivial_tasks"].setdefault(ds, []).append(task)
    return out


def control_reference(study: dict, role: str) -> str | None:
    """The run a control of the study is judged against: `{role}_baseline`, else (the anti
    control) the positive control's baseline, the same clips and labels, else the baseline."""
    return (
        study.get(f"{role}_baseline")
        or (study.get("positive_control_baseline") if role == "anti_control" else None)
        or study.get("baseline")
    )


# The benchmark's calibration (docs/benchmark.md), read before TW-BYOL is looked at: each
# check on the headline dataset's mean F1, in F1 units: (id, threshold); what each checks, in
# words: twbyol.criteria_text.CALIBRATION_CHECKS.
CALIBRATION = (
    ("room", 0.30),
    ("learns", 0.10),
    ("beats_control", 0.05),
    ("headroom", 0.03),
    ("positive_control", 0.02),
    ("anti_control", 0.0),
    ("negative_control", 0.0),
)


def calibration(exp: dict, table: Table, references: dict, ds: str | None) -> list[dict]:
    """The CALIBRATION checks on dataset `ds`: {id, value, threshold, p, n, verdict (PASS /
    FAIL / NOT RUN)} and what the value rests on: `basis` ("reference_lines", or "run_mean"
    of `run`), the comparison (`run`, `reference`, `alternative`, `ci95`) or, NOT RUN, a
    `reason` {"code": "no_role" (+ "role") / "not_evaluated" (+ "runs", "dataset") / "test"
    (+ "text": the comparison's own)}. Differences are paired by seed (`compare`); a check
    whose runs or reference lines are missing is NOT RUN, never a pass."""
    study = exp.get("study") or {}
    lines = (references.get(ds) or {}).get("mean", {})
    base = study.get("baseline")
    nan = float("nan")

    def mean(run):
        v = table.values(run, ds, "mean_f1") if run else {}
        return float(np.mean(list(v.values()))) if v else nan

    def result(cid, threshold, value, ok, c=None, **facts):
        measured = not (value is None or math.isnan(value))
        return {
            "id": cid,
            "value": value if measured else nan,
            "threshold": threshold,
            "p": c["p"] if c else nan,
            "n": c["n"] if c else 0,
            "verdict": ("PASS" if ok else "FAIL") if measured and ok is not None else "NOT RUN",
            **facts,
        }

    # paired checks: id -> (run, its reference, the study role named when one is missing,
    # the test's alternative, the verdict from the comparison and the threshold)
    paired_checks = {
        "beats_control": (
            base,
            study.get("control"),
            "baseline or control",
            "greater",
            lambda c, thr: c["mean_diff"] >= thr and c["p"] < 0.01,
        ),
        "headroom": (
            study.get("upper_bound"),
            base,
            "upper_bound",
            "greater",
            lambda c, thr: c["mean_diff"] >= thr,
        ),
        "positive_control": (
            study.get("positive_control"),
            control_reference(study, "positive_control"),
            "positive_control",
            "greater",
            lambda c, thr: c["mean_diff"] >= thr and c["p"] < 0.05,
        ),
        "anti_control": (
            study.get("anti_control"),
            control_reference(study, "anti_control"),
            "anti_control",
            "less",
            lambda c, thr: c["mean_diff"] < thr and c["p"] < 0.05,
        ),
        "negative_control": (
            study.get("negative_control"),
            control_reference(study, "negative_control"),
            "negative_control",
            "two-sided",
            lambda c, thr: c["p"] > 0.05,
        ),
    }
    out = []
    for cid, thr in CALIBRATION:
        if cid == "room":  # against the reference lines
            value = lines.get("ceiling", nan) - lines.get("always_positive", nan)
            out.append(result(cid, thr, value, value >= thr, basis="reference_lines"))
            continue
        if cid == "learns":
            value = mean(base) - lines.get("always_positive", nan)
            out.append(result(cid, thr, value, value >= thr, basis="run_mean", run=base))
            continue
        run, ref, role, alternative, ok = paired_checks[cid]
        evaluated = (
            run and ref and table.values(run, ds, "mean_f1") and table.values(ref, ds, "mean_f1")
        )
        c = compare(table, run, ref, ds, "mean_f1", alternative) if evaluated else None
        if c is None or (c.get("reason") and cid != "headroom"):  # the headroom needs no p
            if c is not None:
                why = {"code": "test", "text": c["reason"]}
            elif not (run and ref):
                why = {"code": "no_role", "role": role}
            else:
                why = {"code": "not_evaluated", "runs": [run, ref], "dataset": ds}
            out.append(result(cid, thr, None, None, reason=why))
            continue
        facts = {"run": run, "reference": ref, "alternative": alternative, "ci95": c["ci95"]}
        out.append(result(cid, thr, c["mean_diff"], bool(ok(c, thr)), c, **facts))
    return out


# ---- stage ------------------------------------------------------------------------------


def summary_lines(table: Table) -> list[str]:
    """Plain-text table: mean +- sd over seeds of the headline metrics per run and dataset."""
    cols = ("mean_f1", "knn_balanced_accuracy", "rare_action_f1", "spearman_rho", "retrieval_mrr")
    width = max([len(r) for r in table.runs] + [6])
    lines = [f"{'run':<{width}}  {'dataset':<8} n  " + "  ".join(f"{c:>17}" for c in cols)]
    for run, ds, n, cells in headline(table, cols):
        text = "  ".join(f"{num(m):>8} +- {num(sd):<5}" for m, sd in cells)
        lines.append(f"{run:<{width}}  {ds:<8} {n}  {text}")
    return lines


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--experiment", required=True, help="results/{exp}/experiment.json")
    ap.add_argument(
        "--evaluations",
        nargs="+",
        required=True,
        help="evaluation JSONs of every run, seed, dataset",
    )
    ap.add_argument(
        "--efficiency",
        nargs="*",
        default=[],
        help="efficiency.json files at .../pretrain/{run}/seed{s}/ (run and seed from the path)",
    )
    ap.add_argument(
        "--step-benchmark",
        help="step_benchmark.json (twbyol step-benchmark): criterion 4's evidence when the runs "
        "trained on CPU, where their wall time on a shared machine measures the machine",
    )
    ap.add_argument(
        "--out-dir", required=True, help="writes comparison.tsv, ttests.json, criteria.json here"
    )
    ap.add_argument(
        "--tie-tol",
        type=float,
        default=0.005,
        help=(
            "per-task tie: |mean F1 difference| <= this (0.5 F1 points, about the seed noise of "
            "one task)"
        ),
    )
    args = ap.parse_args(argv)

    exp = io.read_json(args.experiment)
    evaluations = load_evaluations(args.evaluations)
    unknown = sorted({ev["run_id"] for ev in evaluations} - set(exp.get("runs", {})))
    if unknown:
        print(f"warning: runs not in {args.experiment}: {', '.join(unknown)}", file=sys.stderr)
    rows = comparison_rows(
        evaluations, load_efficiency(args.efficiency), exp.get("pretrain_dataset", "")
    )
    order = {r: i for i, r in enumerate(run_order(exp, (r["run_id"] for r in rows)))}
    rows.sort(key=lambda r: (order[r["run_id"]], r["seed"], r["dataset"]))  # stable sort
    table = Table(rows)
    frame_tasks, seq_tasks = task_kinds(evaluations)
    study = exp.get("study") or {}

    out = Path(args.out_dir)
    table.write(out / "comparison.tsv")
    tt = ttests(
        table, study.get("baseline"), frame_tasks, args.tie_tol, collect_clip_counts(evaluations)
    )
    tt["sequence_tasks"] = seq_tasks
    tt["references"] = collect_references(evaluations)  # what a constant, a coin, the truth score
    io.write_json(out / "ttests.json", tt)
    step_bench = io.read_json(args.step_benchmark) if args.step_benchmark else None
    crit = criteria(exp, table, frame_tasks, args.tie_tol, step_bench)
    io.write_json(
        out / "criteria.json",
        {
            "proposed": study.get("proposed"),
            "baseline": study.get("baseline"),
            "dataset": exp.get("pretrain_dataset"),
            "criteria": crit,
            "sanity": sanity(exp, table, frame_tasks),
            "calibration": calibration(
                exp, table, tt["references"], headline_dataset(exp) or exp.get("pretrain_dataset")
            ),
        },
    )

    print("\n".join(summary_lines(table)))
    print()
    for c in crit:  # the sentences are the report's
        print(
            f"[{c['verdict']:>7}] {c['id']:<14} {sig(c['value'])} (threshold {sig(c['threshold'])})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
