"""Stage `report`: the study's answer as markdown, generated from the artifacts alone.

    twbyol report --experiment results/smoke/experiment.json --stats-dir results/smoke/stats \\
        --figures-manifest results/smoke/images/manifest.json --out results/smoke/report.md \\
        --code-version "$(git describe --always --dirty)"

Sections: what was run (description, sha256 of experiment.json, code version, seeds, runs),
the verdict in a sentence, headline metrics (mean +- sd over seeds) and the same metrics
against the untrained control, t-tests against the baseline (with the smallest effect each
can detect), the six criteria with what each rests on, calibration against the control and
the upper bound (and whether the seeds have the power the verdict needs), efficiency, and
the figures (linked relative to the report's folder).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import markdown

from twbyol import criteria_text, io
from twbyol.fmt import missing, num, points, pval, sig
from twbyol.tables import Table, headline, run_label, run_order

HEADLINE_COLS = (
    ("mean_f1", "mean F1 (private)"),
    ("mean_f1_public", "mean F1 (public)"),
    ("knn_balanced_accuracy", "kNN bal. acc."),
    ("rare_action_f1", "rare-action F1"),
    ("few_shot_f1/0.1", "F1 @10 % labels"),
    ("spearman_rho", "Spearman rho"),
    ("retrieval_mrr", "retrieval MRR"),
)
NAN = float("nan")


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table; a '|' inside a cell would end it, so it becomes '/'."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows), ""]


def code_version(given: str | None) -> str:
    """--code-version, else `git describe --always --dirty` of this checkout, else 'unknown'."""
    if given:
        return given
    try:
        return (
            subprocess.run(
                ["git", "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).parent,
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def verdict_sentence(exp: dict, crit: dict) -> str:
    """What the evidence supports, from criterion 1, the tally of verdicts and calibration."""
    items = crit.get("criteria", [])
    tally = {v: sum(c["verdict"] == v for c in items) for v in ("PASS", "FAIL", "NOT RUN")}
    c1 = next((c for c in items if c["id"] == "f1_gain"), None)
    prop, base = run_label(exp, crit.get("proposed")), run_label(exp, crit.get("baseline"))
    if c1 is None or not c1.get("test") or missing(c1["test"]["mean_diff"]):
        why = criteria_text.detail(exp, crit, c1) if c1 else "no criteria"
        head = f"The headline comparison of {prop} with {base} was not run ({why})."
    else:
        t = c1["test"]
        d = t["mean_diff"]
        p_txt = f"one-sided p = {pval(t['p'])}, n = {t['n']} seeds" + (
            f"; {t['reason']}" if t["reason"] else ""
        )
        if c1["verdict"] == "PASS":
            head = (
                f"{prop} beat {base} on mean F1 by {points(d)} points ({p_txt}), meeting the "
                f"pre-registered +2 points at p < 0.05."
            )
        elif d > 0:
            head = (
                f"{prop} scored {points(d)} F1 points above {base} ({p_txt}), short of the "
                f"pre-registered +2 points at one-sided p < 0.05."
            )
        else:
            head = (
                f"{prop} did not beat {base} on mean F1 (difference {points(d)} points, {p_txt})."
            )
        pw = c1.get("power")
        if pw and not pw["reason"] and c1["verdict"] != "PASS":
            head += (
                f" At {pw['n']} seeds the test detects {points(pw['mde'])} points with "
                f"{pw['power']:.0%} power (+2 points: power {pw['power_at_target']:.2f}, "
                f"{pw['seeds_needed_text']} seeds needed), so "
                + (
                    "a +2-point gain could have been missed."
                    if pw["mde"] > pw["target_effect"]
                    else "a +2-point gain would likely have been seen."
                )
            )
    if tally["PASS"] == len(items) == 6:
        overall = "all six criteria pass: the evidence supports the hypothesis"
    else:
        overall = (
            f"{tally['PASS']} of {len(items)} criteria pass, {tally['FAIL']} fail and "
            f"{tally['NOT RUN']} were not run, so the study's pass condition (all six) is "
            f"{'not met' if tally['FAIL'] else 'not established'}"
        )
    san = crit.get("sanity", {})
    runs = exp.get("runs", {})
    caveats = [
        f"{run_label(exp, r)} does not beat the untrained control on {ds}"
        for ds, per_run in san.get("vs_control", {}).items()
        for r, c in per_run.items()
        if c["beats"] is False and runs.get(r, {}).get("method") != "supervised"
    ]
    caveats += [
        f"on {ds}, every run solves {', '.join(t)} (uninformative)"
        for ds, t in san.get("trivial_tasks", {}).items()
    ]
    caveats += [
        f"on {ds}, {run_label(exp, san.get('upper_bound'))} sits only {points(pw['headroom'])} "
        f"points above {base}, less than twice the smallest effect the seeds detect "
        f"({points(pw['mde'])}): too little room for a detectable gain"
        for ds, pw in san.get("power", {}).items()
        if pw.get("enough") is False
    ]
    caveat = f" Caveats on the benchmark's calibration: {'; '.join(caveats)}." if caveats else ""
    return f"{head} Overall, {overall}.{caveat}"


# ---- sections -----------------------------------------------------------------------------


def _what_was_run(exp: dict, exp_sha: str, version: str) -> list[str]:
    study, runs = exp.get("study") or {}, exp.get("runs", {})
    roles = "; ".join(
        f"{k.replace('_', ' ')}: {run_label(exp, study.get(k))}"
        for k in ("baseline", "proposed", "control", "upper_bound")
    )
    keys = ["method", "weighting", "tau", "crop_policy", "data_fraction"]
    return [
        "## What was run",
        "",
        " ".join(str(exp.get("description", "")).split()),
        "",
        f"- experiment record: sha256 `{exp_sha}`",
        f"- code version: `{version}`",
        f"- seeds: {', '.join(map(str, exp.get('seeds', [])))}",
        (
            f"- pretraining dataset: {exp.get('pretrain_dataset')}; "
            f"evaluated on: {', '.join(exp.get('eval_datasets', []))}"
        ),
        f"- {roles}",
        "",
        *markdown_table(
            ["run", "label", *keys],
            [
                [r, run_label(exp, r)] + [str(runs[r].get(k, "")) for k in keys]
                for r in run_order(exp, runs)
            ],
        ),
    ]


REFERENCE_LABELS = {
    "always_positive": "(reference) every frame positive",
    "coin_flip": "(reference) prevalence coin flip",
    "ceiling": "(reference) ceiling: window's ground truth",
}


def _reference_rows(references: dict) -> list[list[str]]:
    """The reference lines' rows of the headline table: mean F1 (private) only."""
    rows = []
    for ds, lines in references.items():
        for line, label in REFERENCE_LABELS.items():
            if line in lines["mean"]:
                cells = [num(lines["mean"][line])] + [""] * (len(HEADLINE_COLS) - 1)
                rows.append([label, ds, "", *cells])
    return rows


def _headline(exp: dict, table: Table, tt: dict) -> list[str]:
    rows = [
        [run_label(exp, r), ds, str(n), *(f"{num(m)} +- {num(sd)}" for m, sd in cells)]
        for r, ds, n, cells in headline(table, (c for c, _ in HEADLINE_COLS))
    ]
    rows += _reference_rows(tt.get("references", {}))
    return [
        "## Headline metrics",
        "",
        (
            "Mean +- sd over seeds (n = seeds). Linear probes follow the MABe22 evaluator's "
            "protocol (per task and probe seed, fitted on 90 % of SubmissionTrain; the seeds' "
            "predictions aggregated): **private** = privateTest + publicTest, the leaderboard's "
            "score and the headline; public = publicTest. F1 in [0, 1], 0 where the test frames "
            "hold no positive, as in the evaluator. Mean F1 = mean over the headline tasks "
            f"({', '.join(tt.get('frame_tasks', []))}); the other Discrete tasks "
            f"({', '.join(tt.get('sequence_tasks', [])) or 'none'}) are in the per-task table. "
            "kNN: balanced accuracy (mean recall over classes; chance 0.5 for a behaviour "
            "whatever its frequency). Rare-action F1: mean private F1 over the rarest 20 % of "
            "the behaviour labels (precision and recall beside it in the evaluation JSON). "
            "Spearman rho (embedding distance vs frame gap) and retrieval MRR count only frame "
            "pairs whose input windows do not overlap, over the gaps the training crops span. "
            "Reference rows (the same test frames and tasks): the F1 of calling every frame "
            "positive, the expected F1 of a coin flip at each behaviour's train prevalence, and "
            "on generated data the ceiling: the same probes fitted on the ground truth of each "
            "frame's input window (the share of its frames showing each behaviour). A run near "
            "the first two has learned nothing the probe can use."
        ),
        "",
        *markdown_table(["run", "dataset", "n", *(c for _, c in HEADLINE_COLS)], rows),
        "",
    ]


def _vs_control(exp: dict, table: Table) -> list[str]:
    """The headline metrics of each run minus the untrained control's, paired by seed, with
    the control's own values: what training added to what the architecture gives for free."""
    control = (exp.get("study") or {}).get("control")
    out = ["## Against the untrained control", ""]
    if not control or control not in table.runs:
        return [
            *out,
            "No control run evaluated: no metric can be read against an untrained network.",
            "",
        ]
    out += [
        (
            f"Each run's headline metrics minus those of {run_label(exp, control)}, mean over "
            "the seeds both have (n = seeds); first row: the control's own mean +- sd. The "
            "temporal metrics compare only windows with disjoint input, so an embedding that "
            "knows nothing of time beyond its input window scores rho ~ 0 and MRR at chance "
            "(`retrieval_mrr_chance` in the evaluation JSON); what the control scores above "
            "that, the untrained architecture gives for free."
        ),
        "",
    ]
    cols = [c for c, _ in HEADLINE_COLS]
    for ds in table.datasets:
        ref = [table.summary(control, ds, m) for m in cols]
        if not any(n for *_, n in ref):
            continue
        rows = [
            [
                f"{run_label(exp, control)} (value)",
                str(max(n for *_, n in ref)),
                *(f"{num(m)} +- {num(sd)}" for m, sd, _ in ref),
            ]
        ]
        for r in run_order(exp, table.runs):
            pairs = [table.paired(r, control, ds, m) for m in cols]
            if r == control or not any(seeds for seeds, _, _ in pairs):
                continue
            rows.append(
                [
                    run_label(exp, r),
                    str(max(len(seeds) for seeds, _, _ in pairs)),
                    *(f"{float((a - b).mean()):+.3f}" if seeds else "n/a" for seeds, a, b in pairs),
                ]
            )
        out += [
            f"**{ds}**",
            "",
            *markdown_table(["run", "n", *(f"d {c}" for _, c in HEADLINE_COLS)], rows),
        ]
    return out


def _per_task(
    exp: dict, table: Table, protocols: dict[str, dict], references: dict | None = None
) -> list[str]:
    """Per task of each dataset's protocol: private / public score (mean over seeds) of the
    study's main runs, the clip-pooled private score of sequence-level tasks, and the
    behaviours' reference lines (private F1)."""
    references = references or {}
    study = exp.get("study") or {}
    runs = [
        r
        for r in dict.fromkeys(
            study.get(k) for k in ("baseline", "proposed", "control", "upper_bound")
        )
        if r
    ] or run_order(exp, table.runs)  # no study: every run
    out = [
        "## Per-task scores (MABe22 protocol)",
        "",
        "Mean over seeds of the private / public score per task (F1, or MSE for continuous "
        "tasks; pooled = the evaluator's clip-pooled private score of a sequence-level task). "
        "Reference lines of each behaviour (private F1; see Headline metrics): every frame "
        "positive, a prevalence coin flip and, on generated data, the ground-truth ceiling.",
        "",
    ]
    for ds, proto in protocols.items():
        ref = references.get(ds, {"mean": {}, "tasks": {}})
        lines = [line for line in REFERENCE_LABELS if line in ref["mean"]]
        rows = []
        for task in proto.get("tasks", []):
            cells = []
            for r in runs:
                vals = []
                for metric in ("f1", "mse"):
                    priv = table.summary(r, ds, f"{metric}/{task}")
                    if priv[2]:
                        pub = table.summary(r, ds, f"{metric}_public/{task}")
                        vals.append(f"{num(priv[0])} / {num(pub[0])}")
                cells.append(vals[0] if vals else "n/a")
            kind = "sequence" if task in proto.get("sequence_level", []) else "frame"
            task_ref = ref["tasks"].get(task, {})
            refs = [num(task_ref[line]) if line in task_ref else "" for line in lines]
            rows.append([task, kind, *cells, *refs])
        ref_head = [REFERENCE_LABELS[line].removeprefix("(reference) ") for line in lines]
        out += [
            f"**{ds}** ({proto.get('source', '?')})",
            "",
            *markdown_table(["task", "level", *(run_label(exp, r) for r in runs), *ref_head], rows),
            "",
        ]
    return out


def _per_behaviour(exp: dict, table: Table, protocols: dict[str, dict]) -> list[str]:
    """Per behaviour of each evaluated dataset, every run's probe precision, recall and F1
    (private test frames; mean +- sd over seeds) and the positive test frames they count."""
    out = [
        "## Per-behaviour scores",
        "",
        "Each run's linear probes per behaviour on the private test frames (privateTest + "
        "publicTest): precision, recall and F1 of the positive class, mean +- sd over seeds "
        "(n = seeds; sd n/a for one seed), and the test frames labelled positive (the count "
        "the scores rest on).",
        "",
    ]
    datasets = list(protocols) or sorted({r["dataset"] for r in table.rows})
    runs = run_order(exp, table.runs)
    any_rows = False
    for ds in datasets:
        tasks = (protocols.get(ds) or {}).get("tasks") or sorted(
            {r["metric"].split("/", 1)[1] for r in table.rows if r["metric"].startswith("f1/")}
        )
        rows = []
        for task in tasks:
            for r in runs:
                f1 = table.summary(r, ds, f"f1/{task}")
                if not f1[2]:
                    continue
                cells = [table.summary(r, ds, f"{m}/{task}") for m in ("precision", "recall")]
                pos = table.summary(r, ds, f"n_pos/{task}")[0]
                rows.append(
                    [
                        task,
                        run_label(exp, r),
                        str(f1[2]),
                        *(f"{num(m)} +- {num(sd)}" for m, sd, _ in (*cells, f1)),
                        "n/a" if missing(pos) else f"{pos:.0f}",
                    ]
                )
        if rows:
            any_rows = True
            head = ["behaviour", "run", "n", "precision", "recall", "F1", "positive frames"]
            out += [f"**{ds}**", "", *markdown_table(head, rows), ""]
    return out if any_rows else []


def _time_budgets(budgets: list[str], report_dir: Path) -> list[str]:
    """The time budget across the predicted videos of each predicted run (the export stage's
    {dataset}.time_budget.csv), linked with its bouts table and per-video exports."""
    if not budgets:
        return []
    out = [
        "## Time budgets of the predicted videos",
        "",
        "Per behaviour over every predicted video of the dataset (labelled and unlabelled): "
        "videos with a bout, total time called (s), its percent of all the videos' duration "
        "(behaviours may co-occur), bouts and their mean duration (s). Per video: the bouts "
        "table, time budget, BORIS tabular events and NWB file in the linked folder "
        "(docs/artifacts.md).",
        "",
    ]
    for p in budgets:
        path = Path(p)
        with open(path, newline="") as f:
            recs = list(csv.DictReader(f))
        stem = path.name.removesuffix(".time_budget.csv")
        folder = path.parent / stem
        rel = Path(os.path.relpath(path.parent, report_dir)).as_posix()
        run_seed = "/".join(path.parent.parts[-2:])
        rows = [
            [
                r["behaviour"],
                r["videos"],
                num(float(r["total_s"]), 1),
                num(float(r["percent"]), 1),
                r["bouts"],
                num(float(r["mean_bout_s"]) if r["mean_bout_s"] else NAN, 2),
            ]
            for r in recs
        ]
        out += [
            f"**{run_seed}, {stem}** ([bouts]({rel}/{stem}.bouts.csv), "
            f"[per video]({rel}/{folder.name}/), [time budget]({rel}/{path.name}))",
            "",
            *markdown_table(
                ["behaviour", "videos", "total (s)", "% of time", "bouts", "mean bout (s)"], rows
            ),
            "",
        ]
    return out


def _datasets(protocols: dict[str, dict]) -> list[str]:
    """What each evaluated dataset held: protocol source, split sizes, probe seeds, clips left
    out for a missing video (named and counted), trimmed, video-only."""
    out = ["## Datasets", ""]
    for ds, p in protocols.items():
        sizes = {}
        for split in p.get("splits", {}).values():
            for k, v in split.items():
                sizes[k] = max(sizes.get(k, 0), len(v))
        missing = p.get("missing_videos", [])
        out.append(
            f"- **{ds}**: protocol from {p.get('source', '?')}; {len(p.get('tasks', []))} tasks, "
            f"probe seeds {p.get('seeds')}; clips "
            f"SubmissionTrain {sizes.get('SubmissionTrain', 0)}, "
            f"publicTest {sizes.get('publicTest', 0)}, privateTest {sizes.get('privateTest', 0)}; "
            f"{len(p.get('video_only', []))} video-only (pretraining only); "
            f"{len(p.get('trimmed', []))} videos trimmed by their trailing frame; "
            f"**{len(missing)} labelled clip(s) left out for a missing video**"
            + (f": {', '.join(missing)}" if missing else "")
        )
    return out + [""]


def _ttests(exp: dict, tt: dict) -> list[str]:
    rows = []
    for ds, per_run in tt.get("tests", {}).items():
        for r in run_order(exp, per_run):
            f1 = per_run[r]["metrics"].get("mean_f1", {})
            rho = per_run[r]["metrics"].get("spearman_rho", {})
            ci = f1.get("ci95", [NAN, NAN])
            boot = (f1.get("clip_bootstrap") or {}).get("ci", [NAN, NAN])
            pt = per_run[r]["per_task"]
            rows.append(
                [
                    run_label(exp, r),
                    ds,
                    str(f1.get("n", 0)),
                    points(f1.get("mean_diff", NAN)),
                    f"[{points(ci[0])}, {points(ci[1])}]",
                    f"[{points(boot[0])}, {points(boot[1])}]",
                    pval(f1.get("p", NAN)),
                    pval(f1.get("p_two_sided", NAN)),
                    mde_text(f1.get("power")),
                    (f1.get("power") or {}).get("seeds_needed_text", "n/a"),
                    sig(rho.get("mean_diff", NAN)),
                    pval(rho.get("p", NAN)),
                    f"{pt['wins']}/{pt['ties']}/{pt['losses']}",
                ]
            )
    header = [
        "run",
        "dataset",
        "n",
        "d mean F1 (pts)",
        "95 % CI (seeds)",
        "95 % CI (seeds + clips)",
        "p (>)",
        "p (2-sided)",
        "MDE (pts)",
        "seeds for +2",
        "d rho",
        "p (>)",
        "tasks W/T/L",
    ]
    return [
        "## Paired t-tests against the baseline",
        "",
        (
            f"Baseline: {run_label(exp, tt.get('baseline'))}. Paired by seed; one-sided p for "
            "'run > baseline', two-sided p, 95 % t-interval of the mean difference (F1 points = "
            "F1 x 100), which holds the test clips fixed; beside it the percentile interval of a "
            "bootstrap that resamples seeds and test clips, paired (twbyol.bootstrap). Per-task: "
            "wins/ties/losses of mean F1, a tie being a difference within "
            f"+-{tt.get('tie_tolerance')}. No multiple-comparison correction: only criterion 1 is "
            "pre-registered, the rest is descriptive. MDE: the smallest mean-F1 difference the "
            "one-sided test detects with 80 % power at these seeds and their observed paired SD "
            "(noncentral t); seeds for +2: the seeds +2 points would need at that SD."
        ),
        "",
        *(
            markdown_table(header, rows)
            if rows
            else ["No comparisons: the baseline was not evaluated.", ""]
        ),
    ]


def mde_text(pw: dict | None) -> str:
    """A power_summary's MDE in F1 points, or why there is none."""
    if not pw:
        return "n/a"
    if pw["reason"]:
        return f"n/a ({pw['reason']})"
    upper = pw.get("mde_sd_upper")
    return points(pw["mde"]) + (f" (at the SD's 95 % bound {points(upper)})" if upper else "")


def _criteria(exp: dict, crit: dict) -> list[str]:
    rows = [
        [
            str(i + 1),
            criteria_text.statement(c),
            f"**{c['verdict']}**",
            sig(c["value"]),
            sig(c["threshold"]),
            criteria_text.detail(exp, crit, c),
            criteria_text.rests_on(crit, c),
        ]
        for i, c in enumerate(crit.get("criteria", []))
    ]
    return [
        "## Pass criteria",
        "",
        criteria_text.intro(exp, crit),
        "",
        *markdown_table(
            ["#", "criterion", "verdict", "value", "threshold", "detail", "rests on"], rows
        ),
    ]


def calibration_lines(exp: dict, crit: dict) -> list[str]:
    san = crit.get("sanity", {})
    rows = []
    for ds, per_run in san.get("vs_control", {}).items():
        for r in run_order(exp, per_run):
            c, up = per_run[r], san.get("vs_upper_bound", {}).get(ds, {}).get(r)
            rows.append(
                [
                    run_label(exp, r),
                    ds,
                    points(c["mean_diff"]),
                    pval(c["p"]),
                    {True: "yes", False: "**no**"}.get(c["beats"], f"n/a ({c['reason']})"),
                    f"{points(-up['mean_diff'])} (p {pval(up['p'])})" if up else "n/a",
                ]
            )
    out = ["## Calibration: control and upper bound", ""]
    if rows:
        out += markdown_table(
            [
                "run",
                "dataset",
                f"d mean F1 vs {run_label(exp, san.get('control'))} (pts)",
                "p (>)",
                "beats control (p < 0.05)",
                f"d vs {run_label(exp, san.get('upper_bound'))} (pts)",
            ],
            rows,
        )
    else:
        out += [
            (
                "No control run evaluated: nothing shows that the benchmark tells trained from "
                "untrained features."
            ),
            "",
        ]
    out += [_power_line(exp, ds, pw) for ds, pw in san.get("power", {}).items()]
    out += [criteria_text.calibration_line(c) for c in crit.get("calibration", [])]
    wants = {
        "positive_control": "must beat",
        "anti_control": "must score below",
        "negative_control": "should not beat",
    }
    for ds, controls in san.get("controls", {}).items():
        for role, c in controls.items():
            want = wants[role]
            out.append(
                f"- {ds}: {role.replace('_', ' ')} {run_label(exp, c['run'])} vs "
                f"{run_label(exp, c['reference'])} ({want} it): {points(c['mean_diff'])} points "
                f"(95 % CI [{points(c['ci95'][0])}, {points(c['ci95'][1])}], "
                f"one-sided p {pval(c['p'])}, n = {c['n']}): "
                f"**{'beats' if c['beats'] else 'does not beat'}**"
                + (
                    f"; detectable at 80 % power: {points(c['power']['mde'])} points"
                    if not c["power"].get("reason")
                    else ""
                )
            )
    out += [
        f"- {ds}: tasks every run solves (F1 >= 0.99 on every seed; uninformative): {', '.join(t)}"
        for ds, t in san.get("trivial_tasks", {}).items()
    ]
    out += [
        f"- {ds}: per-task mean F1 across runs (min-max): "
        + ", ".join(f"{t} {num(s['min'], 2)}-{num(s['max'], 2)}" for t, s in spread.items())
        for ds, spread in san.get("task_spread", {}).items()
    ]
    return [*out, ""]


def _power_line(exp: dict, ds: str, pw: dict) -> str:
    """Whether the benchmark has the power its verdict needs on `ds` (stats.headroom_power)."""
    prop, base = run_label(exp, pw.get("proposed")), run_label(exp, pw.get("baseline"))
    if pw["reason"]:
        return f"- {ds}: power of {prop} vs {base}: n/a ({pw['reason']})"
    line = (
        f"- {ds}: power of {prop} vs {base}: with {pw['n']} seeds (paired SD "
        f"{pw['sd_diff'] * 100:.2f} points) the one-sided test detects {points(pw['mde'])} points "
        f"with {pw['power']:.0%} power; +2 points has power {pw['power_at_target']:.2f} and "
        f"needs {pw['seeds_needed_text']} seeds. "
    )
    if pw["enough"] is None:
        return line + (
            f"No upper bound on {ds}: nothing shows how much room the benchmark leaves for a gain."
        )
    upper = run_label(exp, pw.get("upper_bound"))
    return line + (
        f"{upper} sits {points(pw['headroom'])} points above {base} = "
        f"{pw['headroom_over_mde']:.1f} x the MDE: "
        + (
            "**enough** power (a method closing half that distance would be detected)."
            if pw["enough"]
            else "**not enough** power: a method closing half that distance would likely go "
            "undetected (needs headroom >= 2 x MDE; more seeds or a less noisy benchmark)."
        )
    )


def _device(n_gpus: dict) -> str:
    """What a run's seeds trained on, from efficiency.json's n_gpus (0: the CPU)."""
    kinds = sorted({int(v) for v in n_gpus.values()})
    names = ["CPU" if k == 0 else f"{k} GPU" + "s" * (k > 1) for k in kinds]
    return " / ".join(names) + (" (seeds differ)" if len(kinds) > 1 else "")


def _efficiency(exp: dict, table: Table) -> list[str]:
    keys = ("gpu_hours", "wall_s", "samples_per_s", "peak_mem_mb")
    ds = exp.get("pretrain_dataset")
    rows = []
    for r in table.runs:
        vals = [table.summary(r, ds, f"efficiency/{k}") for k in keys]
        if vals[1][2]:
            device = _device(table.values(r, ds, "efficiency/n_gpus"))
            rows.append(
                [
                    run_label(exp, r),
                    str(vals[1][2]),
                    device,
                    *(f"{sig(m)} +- {sig(sd)}" for m, sd, _ in vals),
                ]
            )
    head = ["run", "seeds", "device", "GPU-hours", "wall (s)", "samples/s", "peak memory (MB)"]
    return [
        "## Efficiency",
        "",
        *(markdown_table(head, rows) if rows else ["No efficiency records.", ""]),
    ]


def _figures(manifest: dict, images_rel: str) -> list[str]:
    out = ["## Figures", ""]
    pages = manifest.get("videos_pdf", [])
    if pages:
        links = ", ".join(f"[{p}]({images_rel}/{p})" for p in pages)
        out += [
            f"Every predicted video's ethogram with its score traces, a page each: {links}.",
            "",
        ]
    for f in manifest.get("figures", []):
        out += [
            f"![{f['name']}]({images_rel}/{f['png']})",
            "",
            f"*{f['caption']}* ([PDF]({images_rel}/{f['pdf']}))",
            "",
        ]
    return out


def build(
    exp: dict,
    exp_sha: str,
    version: str,
    table: Table,
    tt: dict,
    crit: dict,
    manifest: dict,
    images_rel: str,
    protocols: dict[str, dict] | None = None,
    budgets: list[str] | None = None,
    report_dir: Path = Path("."),
) -> str:
    """The whole report; `images_rel` is the figures folder relative to the report's folder;
    `protocols` the evaluated datasets' protocol files by dataset name."""
    protocols = protocols or {}
    if not exp.get("study"):  # no pre-registered comparison: the runs' scores and outputs
        return "\n".join(
            [
                f"# TW-BYOL experiment: `{exp.get('name', '?')}`",
                "",
                *_what_was_run(exp, exp_sha, version),
                "No `study:` block: this experiment names no proposed, baseline or control "
                "run, so there are no pre-registered criteria, t-tests or verdict; below are "
                "its runs' scores and predictions.",
                "",
                *_headline(exp, table, tt),
                *_per_task(exp, table, protocols, tt.get("references")),
                *_per_behaviour(exp, table, protocols),
                *_time_budgets(budgets or [], report_dir),
                *_datasets(protocols),
                *_efficiency(exp, table),
                *_figures(manifest, images_rel),
            ]
        )
    lines = [
        f"# TW-BYOL study: `{exp.get('name', '?')}`",
        "",
        *_what_was_run(exp, exp_sha, version),
        "## Verdict",
        "",
        verdict_sentence(exp, crit),
        "",
        *_headline(exp, table, tt),
        *_vs_control(exp, table),
        *_per_task(exp, table, protocols, tt.get("references")),
        *_per_behaviour(exp, table, protocols),
        *_time_budgets(budgets or [], report_dir),
        *_datasets(protocols),
        *_ttests(exp, tt),
        *_criteria(exp, crit),
        *calibration_lines(exp, crit),
        *_efficiency(exp, table),
        *_figures(manifest, images_rel),
    ]
    return "\n".join(lines)


def as_html(text: str, base: Path, name: str) -> str:
    """report.md as one HTML page: the markdown rendered (tables included), each local image
    inlined as a data URI so that the page stands alone (as the HTML report shows it)."""
    body = markdown.markdown(text, extensions=["tables"])

    def inline(m: re.Match) -> str:
        path = base / m.group(1)
        if not path.is_file():
            return m.group(0)
        data = base64.b64encode(path.read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^":]+\.png)"', inline, body)
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;"
        "padding:2px 6px}img{max-width:100%}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>twbyol: {name}</title>'
        f"<style>{style}</style></head><body>\n{body}\n</body></html>\n"
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--experiment", required=True)
    ap.add_argument(
        "--stats-dir", required=True, help="folder with comparison.tsv, ttests.json, criteria.json"
    )
    ap.add_argument(
        "--figures-manifest",
        required=True,
        nargs="+",
        help="images/manifest.json of the figures stage, then any further manifests of the "
        "same folder (the ethograms'), their figures in that order",
    )
    ap.add_argument(
        "--protocols",
        nargs="*",
        default=[],
        help="the evaluated datasets' protocol .json files (results/{exp}/labels/"
        "{dataset}.protocol.json)",
    )
    ap.add_argument(
        "--time-budgets",
        nargs="*",
        default=[],
        help="the export stage's {dataset}.time_budget.csv of each predicted run",
    )
    ap.add_argument("--out", required=True, help="report .md to write")
    ap.add_argument(
        "--html-out",
        help="also the report as one self-contained HTML page (its figures inlined), for the "
        "HTML report of `snakemake --report`",
    )
    ap.add_argument(
        "--code-version", help="code version to record (default: git describe of this checkout)"
    )
    args = ap.parse_args(argv)

    exp = io.read_json(args.experiment)
    stats_dir = Path(args.stats_dir)
    tt, crit = io.read_json(stats_dir / "ttests.json"), io.read_json(stats_dir / "criteria.json")
    folders = {Path(m).parent for m in args.figures_manifest}
    if len(folders) != 1:
        ap.error(f"--figures-manifest: manifests of one folder only, got {sorted(folders)}")
    images_rel = Path(os.path.relpath(folders.pop(), Path(args.out).parent)).as_posix()
    manifests = [io.read_json(m) for m in args.figures_manifest]
    manifest = {
        "figures": [f for m in manifests for f in m["figures"]],
        "videos_pdf": [m["videos_pdf"] for m in manifests if "videos_pdf" in m],
    }
    text = build(
        exp,
        hashlib.sha256(Path(args.experiment).read_bytes()).hexdigest(),
        code_version(args.code_version),
        Table.read(stats_dir / "comparison.tsv"),
        tt,
        crit,
        manifest,
        images_rel,
        {Path(p).name.removesuffix(".protocol.json"): io.read_json(p) for p in args.protocols},
        args.time_budgets,
        Path(args.out).parent,
    )
    io.write_text(args.out, text + "\n")
    if args.html_out:
        io.write_text(args.html_out, as_html(text, Path(args.out).parent, exp.get("name", "")))
    print(verdict_sentence(exp, crit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
