"""The criteria in words: the report layer's sentences for criteria.json's records.

stats.py writes each criterion as values (twbyol.stats.criteria: value, threshold,
conditions, verdict, the facts and evidence it rests on); this module says what they mean:
`statement` (the criterion), `detail` (what was measured), `rests_on` (the evidence: the
number read, the test, n and what the test can detect) and `intro` (what a verdict means).
report.py and benchmarks/readme_results.py render through it, so the two cannot disagree.
"""

from __future__ import annotations

from twbyol.fmt import num, pct, points, sci, sig
from twbyol.tables import run_label

# What criterion 5's verdict means; said here alone.
SEED_VARIANCE_RULE = (
    "criterion 5 passes only when the Pitman-Morgan test shows the seed variance lower "
    "(one-sided p < 0.05), which at equal variances happens 5 % of the time instead of the "
    "half a point comparison gives, and which 3 seeds can almost never show"
)
VARIANCE_FINDING = {
    "lower": "shown lower",
    "higher": "shown higher",
    "neither": "not shown either way (neither lower nor higher at p < 0.05): 'not higher' is "
    "not established",
}
ON_CPU = {
    "zero": "the runs trained on CPU (0 GPU-hours)",
    "absent": "no GPU-hours of both runs",
}


def intro(exp: dict, crit: dict) -> str:
    """The paragraph above the criteria: the pair compared and what each verdict means."""
    return (
        f"Proposed {run_label(exp, crit.get('proposed'))} vs baseline "
        f"{run_label(exp, crit.get('baseline'))} on {crit.get('dataset')}. "
        "FAIL if any measured "
        "condition fails; NOT RUN if an input is missing (never counted as a pass). PASS "
        "means the evidence in 'rests on' shows the criterion: criterion 4 reads GPU-hours "
        "when the runs trained on GPUs, else an isolated step benchmark (never the wall time "
        f"of runs on a shared machine); {SEED_VARIANCE_RULE}; criterion 6 fails when "
        "criterion 1's gain is <= 0."
    )


# ---- the criterion ------------------------------------------------------------------------


def statement(c: dict) -> str:
    """What criterion `c` asks, with its threshold."""
    thr, cid = c["threshold"], c["id"]
    if cid == "f1_gain":
        n, ds = c.get("n_tasks"), c.get("dataset")
        return (
            f"mean F1 over the {f'{n} ' if n else ''}per-frame tasks{f' of {ds}' if ds else ''} "
            f">= +{thr['mean_diff']} (+2 points, F1 in [0, 1]) vs baseline, paired t-test over "
            f"seeds p < {thr['p']} (one-sided)"
        )
    return {
        "task_wins": (
            f"at least {thr:.0%} of the per-frame tasks improve or tie (the study's 6 of 8)"
        ),
        "temporal_rho": (
            f"Spearman rho(embedding distance, frame gap) improves by >= {thr:.0%} relative"
        ),
        "gpu_hours": f"GPU-hours of pretraining increase by <= {thr:.0%} vs baseline",
        "seed_variance": "variance of mean F1 across seeds not higher than the baseline's: PASS "
        "when shown (Pitman-Morgan test of paired variances, one-sided p < 0.05)",
        "robustness": f">= {thr:.0%} of the mean-F1 gain retained for every tau-sweep run and "
        "with 50 % of the unlabelled video (gain = mean paired difference to the matching "
        "baseline)",
    }[cid]


# ---- what was measured --------------------------------------------------------------------


def reason(crit: dict, c: dict) -> str:
    """Why criterion `c` was not measured, from its `reason` record."""
    r = c["reason"]
    code = r["code"]
    if code == "not_evaluated":
        runs = [
            f"{x['role']} run {x['run']!r}" if x["run"] else f"study.{x['role']}" for x in r["runs"]
        ]
        return f"not run: no evaluation of {' and '.join(runs)} on {r['dataset']}"
    if code == "no_cost_evidence":
        b = c["step_benchmark"]
        bench = (
            f"the step benchmark compares {b['proposed']} with {b['baseline']}, not the study's "
            "runs"
            if b
            else "no step benchmark was given"
        )
        return (
            f"{ON_CPU[c['gpu']]}, and {bench}: the wall time of runs on a shared CPU machine is "
            "no evidence of cost (stats --step-benchmark results/{exp}/stats/step_benchmark.json)"
        )
    if code == "gain_unmeasured":
        return (
            f"the reference gain ({crit.get('proposed')} vs {crit.get('baseline')}) is unmeasured"
        )
    return {
        "no_per_task_f1": "no per-task F1",
        "no_relative_rho": "no paired rho, or the baseline's rho is 0 (relative change undefined)",
    }[code]


def detail(exp: dict, crit: dict, c: dict) -> str:
    """What criterion `c` measured (criteria.json `crit` names the runs), or why it could not."""
    if c.get("reason"):
        return reason(crit, c)
    return _DETAIL[c["id"]](exp, crit, c)


def _f1_gain(exp: dict, crit: dict, c: dict) -> str:
    t = c["test"]
    return (
        f"{run_label(exp, crit.get('proposed'))} {num(t['mean_run'])} vs "
        f"{run_label(exp, crit.get('baseline'))} {num(t['mean_ref'])}: {points(t['mean_diff'])} "
        f"points, 95 % CI [{points(t['ci95'][0])}, {points(t['ci95'][1])}], t = {num(t['t'], 2)}, "
        f"p = {num(t['p'])} (n = {t['n']} seeds)" + (f"; {t['reason']}" if t["reason"] else "")
    )


def _task_wins(exp: dict, crit: dict, c: dict) -> str:
    pt = c["per_task"]
    return (
        f"{pt['wins'] + pt['ties']}/{pt['n_tasks']} tasks improve or tie (wins {pt['wins']}, "
        f"ties {pt['ties']}, losses {pt['losses']}; tie = mean F1 difference within "
        f"+-{c['tolerance']})"
    )


def _temporal_rho(exp: dict, crit: dict, c: dict) -> str:
    t = c["test"]
    return (
        f"rho {num(t['mean_run'])} vs {num(t['mean_ref'])} (mean of {t['n']} paired seeds): "
        f"{pct(c['value'])} relative; paired t-test p = {num(t['p'])}"
    )


def step_benchmark_text(exp: dict, b: dict) -> str:
    """The step benchmark's comparison of the study's two runs in one line."""
    r, ci, ms = b["median_ratio"], b["ci95"], b["median_s"]
    return (
        f"median per-step time ratio {run_label(exp, b['proposed'])} / "
        f"{run_label(exp, b['baseline'])} {r:.3f} ({pct(r - 1)}), 95 % CI [{ci[0]:.3f}, "
        f"{ci[1]:.3f}], {b['n_pairs']} interleaved step pairs; median step "
        f"{ms['proposed'] * 1e3:.1f} vs {ms['baseline'] * 1e3:.1f} ms ({b['device']}, backbone "
        f"{b['backbone']}, batch {b['batch']})"
    )


def _gpu_hours(exp: dict, crit: dict, c: dict) -> str:
    b = c["step_benchmark"]
    if c["gpu"] == "measured":
        h, n = c["gpu_hours"], c["evidence"]["n"]
        text = (
            f"{h['proposed']:.4g} vs {h['baseline']:.4g} GPU-hours, mean of {n} paired seeds: "
            f"{pct(c['value'])}"
        )
        beside = b and b["study_pair"]
        return text + (
            f"; isolated step benchmark beside it: {step_benchmark_text(exp, b)}" if beside else ""
        )
    text = f"{ON_CPU[c['gpu']]}: isolated step benchmark, {step_benchmark_text(exp, b)}"
    if c["ci_spans_threshold"]:
        text += (
            f"; its CI spans +{c['threshold']:.0%}: rerun it with more steps to resolve the verdict"
        )
    return text


def _seed_variance(exp: dict, crit: dict, c: dict) -> str:
    pm = c["test"]
    text = f"sample variance {sci(pm['var_x'])} vs {sci(pm['var_y'])} ({pm['n']} paired seeds)"
    if pm["reason"]:
        return f"{text}; {pm['reason']}"
    return (
        f"{text}, ratio {pm['ratio']:.3g}, one-sided 95 % bounds [{pm['ratio_lower']:.3g}, "
        f"{pm['ratio_upper']:.3g}]; Pitman-Morgan p = {num(pm['p_less'])} for 'lower', "
        f"{num(pm['p_greater'])} for 'higher': {VARIANCE_FINDING[c['finding']]}"
    )


def _pair(row: dict) -> str:
    """One robustness pair: its gain and, where there is a gain to retain, the share kept."""
    run, ref = row["run"], row["reference"]
    if not (run and ref):
        return "50 % data runs not configured"
    if not row["n"]:
        return f"{run} vs {ref}: no paired evaluations"
    name = f"{run} (tau {row['tau']})" if row["tau"] is not None else run
    kept = f" = {row['retained']:.0%} retained" if row["retained"] is not None else ""
    return f"{name} vs {ref}: {points(row['gain'])} points{kept}"


def _robustness(exp: dict, crit: dict, c: dict) -> str:
    parts = ([] if c["tau_sweep"] else ["tau sweep not configured"]) + [
        _pair(r) for r in c["pairs"]
    ]
    if c["gain"] <= 0:
        return (
            f"no gain to retain: criterion 1's gain is {points(c['gain'])} points, so no "
            f"improvement can persist" + (f" ({'; '.join(parts)})" if parts else "")
        )
    noise = _retention_noise(c["evidence"]["power"])
    return "; ".join(parts) + (f"; {noise}" if noise else "")


_DETAIL = {
    "f1_gain": _f1_gain,
    "task_wins": _task_wins,
    "temporal_rho": _temporal_rho,
    "gpu_hours": _gpu_hours,
    "seed_variance": _seed_variance,
    "robustness": _robustness,
}


# ---- what it rests on ---------------------------------------------------------------------


def power_line(pw: dict, unit: str = "points", scale: float = 100.0, digits: int = 2) -> str:
    """A power_summary in a sentence: the MDE at its power and what the target effect needs."""
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


def _retention_noise(pw: dict) -> str:
    """Whether criterion 1's gain is below its MDE (ratios of it are then mostly noise)."""
    if not pw["gain_below_mde"]:
        return ""
    return (
        f"criterion 1's gain ({points(pw['gain'])} points) is below its MDE "
        f"({points(pw['mde'])}): retention ratios of it are mostly seed noise"
    )


def _variance_power(n: int, vt: dict) -> str:
    needed = vt["seeds_needed"] or f"> {vt['max_seeds']}"
    return (
        f"at {n} seeds the test detects a 2-fold variance difference with power "
        f"{vt['power_at_ratio']:.2f}; {vt['power']:.0%} power needs a "
        f"{vt['detectable_ratio']:.3g}-fold one, or {needed} seeds for 2-fold (the runs' seeds "
        "taken as uncorrelated)"
    )


def evidence(crit: dict, c: dict) -> dict[str, str]:
    """Criterion `c`'s evidence in words: {"basis", "test", "n", "power"}."""
    ev, measured = c["evidence"], c["value"] is not None
    pw, n = ev["power"], ev["n"]
    if c["id"] == "f1_gain":
        on = f" on {c['dataset']}" if c["test"] else ""
        basis, test = (
            f"mean F1{on}, paired by seed",
            "paired t-test over seeds, one-sided (scipy ttest_rel)",
        )
        power = power_line(pw) if pw else "n/a"
    elif c["id"] == "task_wins":
        basis = "per-task F1, mean paired difference over seeds"
        test = f"a count of wins and ties (tie: within +-{c['tolerance']}); no test"
        power = "none: descriptive; a task's seed noise decides its near-ties"
    elif c["id"] == "temporal_rho":
        on = " on the pretraining dataset" if measured else ""
        basis = f"Spearman rho{on}, mean over paired seeds"
        test = "point comparison of the mean relative change (the study's wording; no test stated)"
        if measured:
            test += f"; paired t-test p = {num(c['test']['p'])} beside it"
        power = power_line(pw, unit="rho", scale=1.0, digits=3) if pw else "n/a"
    elif c["id"] == "gpu_hours":
        basis, test, power = _cost_evidence(c)
    elif c["id"] == "seed_variance":
        basis = "sample variance of mean F1 over the paired seeds"
        test = "Pitman-Morgan test of equal variances of paired seeds, one-sided"
        power = _variance_power(n, pw) if pw else "n/a"
    else:
        basis = "each run's mean paired F1 difference to its baseline, over criterion 1's gain"
        test = "point ratios; no test"
        power = _retention_noise(pw) or "none: a ratio of two seed-noisy differences"
    return {"basis": basis, "test": test, "n": n, "power": power}


def _cost_evidence(c: dict) -> tuple[str, str, str]:
    pw = c["evidence"]["power"]
    if c["gpu"] == "measured":
        sd = pw["sd_over_baseline"]
        return (
            "GPU-hours of pretraining (efficiency.json; the runs trained on GPUs)",
            "point comparison of the means over seeds (the study's measure)",
            f"no test; seed-to-seed SD {pct(sd[0], signed=False)} and "
            f"{pct(sd[1], signed=False)} of the baseline's mean",
        )
    if c["value"] is None:
        return "isolated training-step benchmark", "none", "n/a"
    return (
        f"training-step time (step_benchmark.json, on {c['step_benchmark']['device']}): both "
        "runs' models in one process, steps interleaved and repeated",
        "median of the per-step time ratios with its distribution-free 95 % CI (order statistics)",
        f"CI [{pct(pw['ci95'][0])}, {pct(pw['ci95'][1])}] around the {pct(c['value'])} the "
        "verdict reads",
    )


def rests_on(crit: dict, c: dict) -> str:
    """A criterion's evidence in one line: the number, the test, n and power."""
    ev = evidence(crit, c)
    n = ev["n"]
    n_txt = ", ".join(f"{k} {v}" for k, v in n.items()) if isinstance(n, dict) else str(n)
    return f"{ev['basis']}; {ev['test']}; n = {n_txt or 'n/a'}; power: {ev['power']}"


# ---- the benchmark's calibration ----------------------------------------------------------

CALIBRATION_CHECKS = {
    "room": "ceiling - every frame positive >= 0.30",
    "learns": "baseline - every frame positive >= 0.10",
    "beats_control": "baseline - untrained control >= +5 points, one-sided p < 0.01",
    "headroom": "upper bound - baseline >= +3 points",
    "positive_control": "positive control - its baseline >= +2 points, one-sided p < 0.05",
    "anti_control": "anti control - its baseline < 0, one-sided p < 0.05",
    "negative_control": "negative control - baseline: two-sided p > 0.05",
}


def calibration_detail(c: dict) -> str:
    """What a calibration check (stats.calibration) read, or why it was not run."""
    r = c.get("reason")
    if r and r["code"] == "no_role":
        return f"the study names no {r['role']}"
    if r and r["code"] == "not_evaluated":
        return f"no evaluation of {' and '.join(r['runs'])} on {r['dataset']}"
    if r:  # the comparison's own reason
        return r["text"]
    if c.get("basis") == "reference_lines":
        return "reference lines (ttests.json `references`)"
    if c.get("basis") == "run_mean":
        return f"mean over {c['run']}'s seeds"
    return (
        f"{c['run']} - {c['reference']}: {points(c['value'])} points, 95 % CI "
        f"[{points(c['ci95'][0])}, {points(c['ci95'][1])}], p {c['p']:.3g} "
        f"({c['alternative']}), n = {c['n']}"
    )


def calibration_line(c: dict) -> str:
    """A calibration check as a list item: its verdict, what it checks, its value and basis."""
    detail = calibration_detail(c)
    return (
        f"- calibration {c['id']}: **{c['verdict']}** ({CALIBRATION_CHECKS[c['id']]}): "
        f"{sig(c['value'])}" + (f"; {detail}" if detail else "")
    )
