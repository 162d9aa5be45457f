"""Stage `stats`: paired t-tests across seeds and the study's six pass criteria.

    twbyol stats --experiment results/smoke/experiment.json \\
        --evaluations results/smoke/evaluate/*/seed*/*.json \\
        --efficiency results/smoke/pretrain/*/seed*/efficiency.json \\
        --step-benchmark results/smoke/stats/step_benchmark.json --out-dir results/smoke/stats

Outputs in --out-dir:
- comparison.tsv: run_id, seed, dataset, metric, value — one row per number. Metrics: the
  headline scalars of each evaluation (HEADLINE), `f1/<task>` and `mse/<task>` per task,
  `knn_accuracy/<task>`, and `efficiency/<key>` per pretraining run (dataset = the
  pretraining dataset). Run and seed of an efficiency.json are read from its path,
  .../{run}/seed{s}/efficiency.json (fields run_id/seed in the file win if present).
- ttests.json: every run against the baseline, per dataset, paired by seed, on every
  HEADLINE metric (one-sided "greater", two-sided p, 95 % t-interval of the mean
  difference), plus per-task wins/ties/losses of mean F1 over seeds (a tie is a mean
  difference within --tie-tol). p-values are not corrected for multiple comparisons: only
  criterion 1's test is pre-registered; the rest is descriptive. Each comparison has a
  `power` (power_summary): at its observed paired SD, the smallest difference the one-sided
  test detects with 80 % power (`mde`, noncentral t with n - 1 df) and the seeds a target
  effect needs (`seeds_needed`: +2 points, or +10 % of the baseline's rho; null beyond 100).
- criteria.json: {"criteria": [six entries], "sanity": {...}}. Each criterion is
  {"id", "criterion", "value", "threshold", "verdict", "detail", "evidence"} (+ "test",
  "power" where there is one); `evidence` = {"basis", "test", "n", "power"}: the number the
  verdict reads, the test behind it (or that there is none), its n and what it can detect.
  A verdict is FAIL when any measured condition fails, NOT RUN when a condition cannot be
  measured (a run, seed or number is missing) and none fails, PASS only when every condition
  is measured and holds. F1 is in [0, 1] throughout: "+2 F1 points" is +0.02.
  What PASS means where the study names no test: criterion 4 (cost) reads GPU-hours when
  the runs trained on GPUs, else the isolated step benchmark's median step-time ratio (never
  shared-machine wall time); criterion 5 (seed variance) passes only when the Pitman-Morgan
  test shows the variance lower (one-sided p < 0.05; at equal variances 5 % of the time, not
  the half of a point comparison), which 3 seeds can almost never show; criterion 6 fails
  when criterion 1's gain is <= 0 (no gain to retain).
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
from twbyol.fmt import num, sci
from twbyol.statistics import (  # criterion 1 tests at ALPHA; MDEs at POWER
    ALPHA,
    MAX_SEEDS,
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
    run_label,
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
    cid: str, text: str, value, threshold, conditions: list[bool | None], detail: str, **extra
) -> dict:
    return {
        "id": cid,
        "criterion": text,
        "value": value,
        "threshold": threshold,
        "verdict": _verdict(conditions),
        "detail": detail,
        **extra,
    }


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
    why: str  # non-empty when the proposed or the baseline run has no evaluation
    step_bench: dict | None = None  # step_benchmark.json (twbyol.benchmark), if given

    @property
    def missing(self) -> bool:
        return bool(self.why)


def _evidence(basis: str, test: str, n, power: str) -> dict:
    """What a verdict rests on: the number, the test (or that there is none), n, power."""
    return {"basis": basis, "test": test, "n": n, "power": power}


def _power_text(pw: dict, unit: str = "points", scale: float = 100.0, digits: int = 2) -> str:
    """One line of a power_summary: the MDE at its power and what the target effect needs."""
    if pw["reason"]:
        return f"no power analysis: {pw['reason']}"
    text = (
        f"smallest effect detectable with {pw['power']:.0%} power at {pw['n']} seeds: "
        f"{pw['mde'] * scale:+.{digits}f} {unit} (paired SD {pw['sd_diff'] * scale:.{digits}f})"
    )
    if pw["target_effect"] is not None:
        text += (
            f"; {pw['target_effect'] * scale:+.{digits}f} {unit} has power "
            f"{pw['power_at_target']:.2f} and needs {pw['seeds_needed_text']} seeds"
        )
    return text


def _ds_tasks(s: _Study) -> list[str]:
    """The per-frame tasks of the criteria's dataset that have an F1 (the frame_tasks of the
    whole experiment span every evaluated dataset; a task without a positive test frame has
    none and is out of mean_f1 too)."""
    if s.missing or s.ds is None:
        return []
    return [t for t in s.frame_tasks if s.table.values(s.base, s.ds, f"f1/{t}")]


def _c1_f1_gain(s: _Study) -> dict:
    n = len(_ds_tasks(s))
    text = (
        f"mean F1 over the {f'{n} ' if n else ''}per-frame tasks{f' of {s.ds}' if s.ds else ''} "
        f">= +{F1_GAIN} (+2 points, F1 in [0, 1]) vs baseline, paired t-test over seeds "
        f"p < {ALPHA} (one-sided)"
    )
    threshold = {"mean_diff": F1_GAIN, "p": ALPHA}
    test = "paired t-test over seeds, one-sided (scipy ttest_rel)"
    if s.missing:
        ev = _evidence("mean F1, paired by seed", test, 0, "n/a")
        return _criterion(
            "f1_gain", text, None, threshold, [None], s.why, test=None, power=None, evidence=ev
        )
    c = compare(s.table, s.prop, s.base, s.ds, "mean_f1")
    pw = comparison_power("mean_f1", c)
    detail = (
        f"{run_label(s.exp, s.prop)} {num(c['mean_run'])} vs {run_label(s.exp, s.base)} "
        f"{num(c['mean_ref'])}: {c['mean_diff'] * 100:+.2f} points, 95 % CI "
        f"[{c['ci95'][0] * 100:+.2f}, {c['ci95'][1] * 100:+.2f}], t = {num(c['t'], 2)}, "
        f"p = {num(c['p'])} (n = {c['n']} seeds)" + (f"; {c['reason']}" if c["reason"] else "")
    )
    conds = [
        None if c["n"] == 0 else c["mean_diff"] >= F1_GAIN,
        None if math.isnan(c["p"]) else c["p"] < ALPHA,
    ]
    ev = _evidence(f"mean F1 on {s.ds}, paired by seed", test, c["n"], _power_text(pw))
    return _criterion(
        "f1_gain", text, c["mean_diff"], threshold, conds, detail, test=c, power=pw, evidence=ev
    )


def _c2_task_wins(s: _Study) -> dict:
    text = f"at least {TASK_SHARE:.0%} of the per-frame tasks improve or tie (the study's 6 of 8)"
    pt = None if s.missing else per_task(s.table, s.prop, s.base, s.ds, s.frame_tasks, s.tol)
    ev = _evidence(
        "per-task F1, mean paired difference over seeds",
        f"a count of wins and ties (tie: within +-{s.tol}); no test",
        None,
        "none: descriptive; a task's seed noise decides its near-ties",
    )
    if not pt or not pt["n_tasks"]:
        why = s.why or "no per-task F1"
        return _criterion("task_wins", text, None, TASK_SHARE, [None], why, evidence=ev)
    share = (pt["wins"] + pt["ties"]) / pt["n_tasks"]
    ev["n"] = {"tasks": pt["n_tasks"], "seeds": min(t["n_seeds"] for t in pt["tasks"].values())}
    detail = (
        f"{pt['wins'] + pt['ties']}/{pt['n_tasks']} tasks improve or tie (wins {pt['wins']}, "
        f"ties {pt['ties']}, losses {pt['losses']}; tie = mean F1 difference within +-{s.tol})"
    )
    return _criterion(
        "task_wins", text, share, TASK_SHARE, [share >= TASK_SHARE], detail, evidence=ev
    )


def _c3_temporal_rho(s: _Study) -> dict:
    text = f"Spearman rho(embedding distance, frame gap) improves by >= {RHO_GAIN:.0%} relative"
    c = None if s.missing else compare(s.table, s.prop, s.base, s.ds, "spearman_rho")
    test = "point comparison of the mean relative change (the study's wording; no test stated)"
    if not c or not c["n"] or c["mean_ref"] == 0:
        why = s.why or "no paired rho, or the baseline's rho is 0 (relative change undefined)"
        ev = _evidence("Spearman rho, mean over paired seeds", test, c["n"] if c else 0, "n/a")
        return _criterion("temporal_rho", text, None, RHO_GAIN, [None], why, evidence=ev)
    rel = (c["mean_run"] - c["mean_ref"]) / abs(c["mean_ref"])
    pw = comparison_power("spearman_rho", c)
    detail = (
        f"rho {num(c['mean_run'])} vs {num(c['mean_ref'])} (mean of {c['n']} paired seeds): "
        f"{rel:+.1%} relative; paired t-test p = {num(c['p'])}"
    )
    ev = _evidence(
        "Spearman rho on the pretraining dataset, mean over paired seeds",
        test + f"; paired t-test p = {num(c['p'])} beside it",
        c["n"],
        _power_text(pw, unit="rho", scale=1.0, digits=3),
    )
    return _criterion(
        "temporal_rho", text, rel, RHO_GAIN, [rel >= RHO_GAIN], detail, power=pw, evidence=ev
    )


def _c4_cost(s: _Study) -> dict:
    """GPU-hours when both runs trained on GPUs (every seed's efficiency.json has GPU-hours
    > 0; train.py writes 0 on CPU); otherwise the isolated step benchmark, never the wall
    time of runs that shared a machine with other jobs."""
    text = f"GPU-hours of pretraining increase by <= {COST_GAIN:.0%} vs baseline"
    gpu = [s.table.values(r, s.ds, "efficiency/gpu_hours") for r in (s.prop, s.base)]
    bench = _step_benchmark_result(s)
    if all(g and min(g.values()) > 0 for g in gpu):
        seeds, a, b = s.table.paired(s.prop, s.base, s.ds, "efficiency/gpu_hours")
        rel = float(a.mean() / b.mean() - 1)
        sd = [float(np.std(v, ddof=1)) / b.mean() if len(v) > 1 else float("nan") for v in (a, b)]
        detail = (
            f"{a.mean():.4g} vs {b.mean():.4g} GPU-hours, mean of {len(seeds)} paired seeds: "
            f"{rel:+.1%}"
        )
        if bench and not bench.get("reason"):
            detail += f"; isolated step benchmark beside it: {bench['text']}"
        ev = _evidence(
            "GPU-hours of pretraining (efficiency.json; the runs trained on GPUs)",
            "point comparison of the means over seeds (the study's measure)",
            len(seeds),
            f"no test; seed-to-seed SD {sd[0]:.1%} and {sd[1]:.1%} of the baseline's mean",
        )
        return _criterion(
            "gpu_hours", text, rel, COST_GAIN, [rel <= COST_GAIN], detail, evidence=ev
        )
    on_cpu = "the runs trained on CPU (0 GPU-hours)" if all(gpu) else "no GPU-hours of both runs"
    if bench is None or bench.get("reason"):
        why = s.why or (
            f"{on_cpu}, and {bench['reason'] if bench else 'no step benchmark was given'}: the "
            f"wall time of runs on a shared CPU machine is no evidence of cost (stats "
            f"--step-benchmark results/{{exp}}/stats/step_benchmark.json)"
        )
        ev = _evidence("isolated training-step benchmark", "none", 0, "n/a")
        return _criterion("gpu_hours", text, None, COST_GAIN, [None], why, evidence=ev)
    rel = bench["median_ratio"] - 1
    detail = f"{on_cpu}: isolated step benchmark, {bench['text']}"
    if bench["ci95"][0] - 1 <= COST_GAIN < bench["ci95"][1] - 1:
        detail += (
            f"; its CI spans +{COST_GAIN:.0%}: rerun it with more steps to resolve the verdict"
        )
    ev = _evidence(
        f"training-step time (step_benchmark.json, on {bench['device']}): both runs' models in one "
        "process, steps interleaved and repeated",
        "median of the per-step time ratios with its distribution-free 95 % CI (order statistics)",
        bench["n"],
        f"CI [{bench['ci95'][0] - 1:+.1%}, {bench['ci95'][1] - 1:+.1%}] around the {rel:+.1%} "
        f"the verdict reads",
    )
    return _criterion("gpu_hours", text, rel, COST_GAIN, [rel <= COST_GAIN], detail, evidence=ev)


def _step_benchmark_result(s: _Study) -> dict | None:
    """The step benchmark's proposed / baseline comparison with a line of text, or None when
    none was given; `reason` when it does not compare the study's two runs."""
    b = s.step_bench
    if not b:
        return None
    pair = (b.get("proposed"), b.get("baseline"))
    if pair != (s.prop, s.base):
        return {
            "reason": f"the step benchmark compares {pair[0]} with {pair[1]}, not the study's runs"
        }
    c = b["comparison"]
    text = (
        f"median per-step time ratio {run_label(s.exp, s.prop)} / {run_label(s.exp, s.base)} "
        f"{c['median_ratio']:.3f} ({c['median_ratio'] - 1:+.1%}), 95 % CI [{c['ci95'][0]:.3f}, "
        f"{c['ci95'][1]:.3f}], {c['n_pairs']} interleaved step pairs; median step "
        f"{b['runs'][s.prop]['median_s'] * 1e3:.1f} vs {b['runs'][s.base]['median_s'] * 1e3:.1f} "
        f"ms ({b['device']}, backbone {b['backbone'].get('name')}, batch {b['batch']})"
    )
    return {**c, "n": c["n_pairs"], "device": b["device"], "text": text, "reason": None}


def _c5_seed_variance(s: _Study) -> dict:
    """PASS only when the test shows the proposed run's seed variance lower (Pitman-Morgan,
    one-sided p < ALPHA, i.e. the one-sided 95 % upper bound of the ratio below 1): at equal
    variances that happens 5 % of the time, where a point comparison passes half the time.
    FAIL otherwise, the detail saying whether the variance was shown higher or nothing was
    shown either way, and what the test can detect at these seeds."""
    text = (
        "variance of mean F1 across seeds not higher than the baseline's: PASS when shown "
        f"(Pitman-Morgan test of paired variances, one-sided p < {ALPHA})"
    )
    test = "Pitman-Morgan test of equal variances of paired seeds, one-sided"
    if s.missing:
        ev = _evidence("mean F1 per seed", test, 0, "n/a")
        return _criterion("seed_variance", text, None, 1.0, [None], s.why, evidence=ev)
    seeds, a, b = s.table.paired(s.prop, s.base, s.ds, "mean_f1")
    pm = pitman_morgan(a, b)
    vt = dict(variance_test_power(pm["n"]))
    power = (
        f"at {pm['n']} seeds the test detects a 2-fold variance difference with power "
        f"{vt['power_at_ratio']:.2f}; {vt['power']:.0%} power needs a "
        f"{vt['detectable_ratio']:.3g}-fold one, or {vt['seeds_needed'] or f'> {MAX_SEEDS}'} seeds "
        f"for 2-fold (the runs' seeds taken as uncorrelated)"
        if pm["n"] >= 3
        else "n/a"
    )
    ev = _evidence("sample variance of mean F1 over the paired seeds", test, pm["n"], power)
    points = f"sample variance {sci(pm['var_x'])} vs {sci(pm['var_y'])} ({pm['n']} paired seeds)"
    if pm["reason"]:
        return _criterion(
            "seed_variance",
            text,
            None,
            1.0,
            [None],
            f"{points}; {pm['reason']}",
            test=pm,
            evidence=ev,
        )
    lower, higher = pm["p_less"] < ALPHA, pm["p_greater"] < ALPHA
    finding = (
        "shown lower"
        if lower
        else "shown higher"
        if higher
        else "not shown either way (neither lower nor higher at p < 0.05): 'not higher' is "
        "not established"
    )
    detail = (
        f"{points}, ratio {pm['ratio']:.3g}, one-sided 95 % bounds [{pm['ratio_lower']:.3g}, "
        f"{pm['ratio_upper']:.3g}]; Pitman-Morgan p = {num(pm['p_less'])} for 'lower', "
        f"{num(pm['p_greater'])} for 'higher': {finding}"
    )
    return _criterion(
        "seed_variance", text, pm["ratio"], 1.0, [lower], detail, test=pm, evidence=ev
    )


def _c6_robustness(s: _Study, c1: dict) -> dict:
    """Each tau-sweep run vs the baseline and the 50 %-data run vs its own baseline keep
    >= 75 % of criterion 1's gain; FAIL when that gain is <= 0 (no gain to retain: it never
    passes vacuously); a missing run makes it NOT RUN unless a measured retention fails."""
    text = (
        f">= {RETAINED:.0%} of the mean-F1 gain retained for every tau-sweep run and with 50 % of "
        f"the unlabelled video (gain = mean paired difference to the matching baseline)"
    )
    gain = c1["value"] if c1["value"] is not None else float("nan")
    study = s.exp.get("study") or {}
    pairs = [(r, s.base) for r in (study.get("tau_sweep") or [])]
    pairs.append((study.get("half_data"), study.get("half_data_baseline")))
    conds: list[bool | None] = [] if study.get("tau_sweep") else [None]
    parts = [] if study.get("tau_sweep") else ["tau sweep not configured"]
    ns: dict[str, int] = {}
    worst = None
    for run, ref in pairs:
        seeds, a, b = s.table.paired(run, ref, s.ds, "mean_f1") if run and ref else ([], [], [])
        if not seeds:
            conds.append(None)
            parts.append(
                "50 % data runs not configured"
                if not (run and ref)
                else f"{run} vs {ref}: no paired evaluations"
            )
            continue
        g = float(np.mean(a - b))
        ns[run] = len(seeds)
        tau = s.exp.get("runs", {}).get(run, {}).get("tau")
        name = f"{run} (tau {tau})" if tau is not None else run
        if math.isnan(gain) or gain <= 0:
            conds.append(None)  # decided below, from the reference gain
            parts.append(f"{name} vs {ref}: {g * 100:+.2f} points")
            continue
        ret = g / gain
        worst = ret if worst is None else min(worst, ret)
        conds.append(ret >= RETAINED)
        parts.append(f"{name} vs {ref}: {g * 100:+.2f} points = {ret:.0%} retained")
    pw = c1.get("power") or {}
    noise = ""
    if gain > 0 and pw.get("mde", float("nan")) > gain:
        noise = (
            f"criterion 1's gain ({gain * 100:+.2f} points) is below its MDE "
            f"({pw['mde'] * 100:+.2f}): retention ratios of it are mostly seed noise"
        )
    ev = _evidence(
        "each run's mean paired F1 difference to its baseline, over criterion 1's gain",
        "point ratios; no test",
        ns,
        noise or "none: a ratio of two seed-noisy differences",
    )
    if math.isnan(gain):
        why = s.why or f"the reference gain ({s.prop} vs {s.base}) is unmeasured"
        return _criterion("robustness", text, None, RETAINED, [None], why, evidence=ev)
    if gain <= 0:
        detail = (
            f"no gain to retain: criterion 1's gain is {gain * 100:+.2f} points, so no "
            f"improvement can persist" + (f" ({'; '.join(parts)})" if parts else "")
        )
        return _criterion("robustness", text, None, RETAINED, [False], detail, evidence=ev)
    detail = "; ".join(parts) + (f"; {noise}" if noise else "")
    return _criterion("robustness", text, worst, RETAINED, conds, detail, evidence=ev)


def criteria(
    exp: dict, table: Table, frame_tasks: list[str], tol: float, step_bench: dict | None = None
) -> list[dict]:
    """The study's six pass criteria, proposed vs baseline on the pretraining dataset (the
    first evaluated one when it has no labels: headline_dataset); `step_bench`
    (step_benchmark.json) is criterion 4's evidence for runs trained on CPU."""
    study = exp.get("study") or {}
    ds = headline_dataset(exp)
    have = {r for r in table.runs if table.values(r, ds, "mean_f1")}
    missing = [
        f"{k} run {study.get(k)!r}" if study.get(k) else f"study.{k}"
        for k in ("baseline", "proposed")
        if study.get(k) not in have
    ]
    why = f"not run: no evaluation of {' and '.join(missing)} on {ds}" if missing else ""
    s = _Study(
        exp,
        table,
        frame_tasks,
        tol,
        study.get("baseline"),
        study.get("proposed"),
        ds,
        why,
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
# check on the headline dataset's mean F1, in F1 units: (id, text, threshold).
CALIBRATION = (
    ("room", "ceiling - every frame positive >= 0.30", 0.30),
    ("learns", "baseline - every frame positive >= 0.10", 0.10),
    ("beats_control", "baseline - untrained control >= +5 points, one-sided p < 0.01", 0.05),
    ("headroom", "upper bound - baseline >= +3 points", 0.03),
    ("positive_control", "positive control - its baseline >= +2 points, one-sided p < 0.05", 0.02),
    ("anti_control", "anti control - its baseline < 0, one-sided p < 0.05", 0.0),
    ("negative_control", "negative control - baseline: two-sided p > 0.05", 0.0),
)


def calibration(exp: dict, table: Table, references: dict, ds: str | None) -> list[dict]:
    """The CALIBRATION checks on dataset `ds`: {id, check, value, threshold, p, n, verdict
    (PASS / FAIL / NOT RUN), detail}. Differences are paired by seed (`compare`); a check
    whose runs or reference lines are missing is NOT RUN, never a pass."""
    study = exp.get("study") or {}
    lines = (references.get(ds) or {}).get("mean", {})
    base = study.get("baseline")
    nan = float("nan")

    def mean(run):
        v = table.values(run, ds, "mean_f1") if run else {}
        return float(np.mean(list(v.values()))) if v else nan

    def result(cid, text, threshold, value, ok, c=None, why=""):
        measured = not (value is None or math.isnan(value))
        return {
            "id": cid,
            "check": text,
            "value": value if measured else nan,
            "threshold": threshold,
            "p": c["p"] if c else nan,
            "n": c["n"] if c else 0,
            "verdict": ("PASS" if ok else "FAIL") if measured and ok is not None else "NOT RUN",
            "detail": why,
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
    for cid, text, thr in CALIBRATION:
        if cid in ("room", "learns"):  # against the reference lines
            if cid == "room":
                value = lines.get("ceiling", nan) - lines.get("always_positive", nan)
                why = "reference lines (ttests.json `references`)"
            else:
                value = mean(base) - lines.get("always_positive", nan)
                why = f"mean over {base}'s seeds"
            out.append(result(cid, text, thr, value, value >= thr, why=why))
            continue
        run, ref, role, alternative, ok = paired_checks[cid]
        evaluated = (
            run and ref and table.values(run, ds, "mean_f1") and table.values(ref, ds, "mean_f1")
        )
        c = compare(table, run, ref, ds, "mean_f1", alternative) if evaluated else None
        if c is None or (c.get("reason") and cid != "headroom"):  # the headroom needs no p
            if c is not None:
                why = c["reason"]
            elif not (run and ref):
                why = f"the study names no {role}"
            else:
                why = f"no evaluation of {run} and {ref} on {ds}"
            out.append(result(cid, text, thr, None, None, why=why))
            continue
        why = (
            f"{run} - {ref}: {100 * c['mean_diff']:+.2f} points, 95 % CI "
            f"[{100 * c['ci95'][0]:+.2f}, {100 * c['ci95'][1]:+.2f}], p {c['p']:.3g} "
            f"({alternative}), n = {c['n']}"
        )
        out.append(result(cid, text, thr, c["mean_diff"], bool(ok(c, thr)), c, why))
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
    for c in crit:
        print(f"[{c['verdict']:>7}] {c['id']:<14} {c['detail']}")
        print(f"{'':<24} power: {c['evidence']['power']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
