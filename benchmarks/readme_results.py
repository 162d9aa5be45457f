"""Regenerate a study's results block in docs/results.md from its artifacts (never hand-edited).

    python benchmarks/readme_results.py synthetic            # print the block
    python benchmarks/readme_results.py synthetic --write    # replace it in docs/results.md

Reads results/{exp}/experiment.json, stats/{comparison.tsv, ttests.json, criteria.json} and
report.md (for the code version the report recorded), and the newest Snakemake log that ran
the target (for the study's wall time and job count). Writes, between the markers
`<!-- results:{exp}:begin -->` and `<!-- results:{exp}:end -->` of docs/results.md (or
--doc), a header (date of the
report, code version, wall time, and the machine this script runs on: run it where the
study ran), one row per run (pretraining dataset's headline
metrics, mean +- sd over seeds; the paired difference from the baseline with its 95 % CI,
p and detectable effect; transfer mean F1), the six criteria, the controls and the power
line: the same numbers and helpers as the report (twbyol.report), so the two cannot
disagree. The reading of the numbers stays prose outside the markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twbyol import criteria_text, io  # noqa: E402
from twbyol.fmt import num, points, pval, sig  # noqa: E402
from twbyol.report import (  # noqa: E402
    REFERENCE_LABELS,
    calibration_lines,
    markdown_table,
    mde_text,
)
from twbyol.tables import Table, run_label, run_order  # noqa: E402

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_DONE = re.compile(r"^(\d+) of (\d+) steps \(100%\) done$")


def study_time(log_dir: Path, target: str) -> tuple[float, int, str] | None:
    """(wall seconds, jobs, log name) of the newest complete Snakemake run of `target`:
    first to last timestamp of a log whose job stats list the target (or that built its
    report, `snakemake results/{target}/report.md`) and that ran to 100 %."""
    report = f"results/{target}/report.md"
    for log in sorted(log_dir.glob("*.snakemake.log"), reverse=True):
        text = log.read_text(errors="replace").splitlines()
        if not any(
            line.split()[:2] == [target, "1"] or line.strip() == f"output: {report}"
            for line in text
            if line.strip()
        ):
            continue
        done = [m for m in map(_DONE.match, text) if m]
        stamps = [
            dt.datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            for m in map(_STAMP.match, text)
            if m
        ]
        if done and len(stamps) >= 2:
            return (stamps[-1] - stamps[0]).total_seconds(), int(done[-1].group(2)), log.name
    return None


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, {platform.system()}"


def _hms(s: float) -> str:
    h, rem = divmod(int(round(s)), 3600)
    return f"{h} h {rem // 60} min {rem % 60} s" if h else f"{rem // 60} min {rem % 60} s"


def block(exp_name: str, results: Path, log_dir: Path) -> str:
    d = results / exp_name
    exp = io.read_json(d / "experiment.json")
    table = Table.read(d / "stats" / "comparison.tsv")
    tt = io.read_json(d / "stats" / "ttests.json")
    crit = io.read_json(d / "stats" / "criteria.json")
    report = (d / "report.md").read_text()
    m = re.search(r"^- code version: `([^`]*)`", report, re.M)
    version = m.group(1) if m else "unknown"
    when = dt.datetime.fromtimestamp((d / "report.md").stat().st_mtime, dt.timezone.utc)
    timing = study_time(log_dir, exp_name)
    timing_txt = (
        f"**{_hms(timing[0])}** for {timing[1]} jobs (`snakemake --cores {os.cpu_count()} "
        f"{exp_name}` or its report, log {timing[2]})"
        if timing
        else "wall time not found in the logs"
    )
    study = exp.get("study") or {}
    base, pre = study.get("baseline"), exp.get("pretrain_dataset")
    others = [ds for ds in exp.get("eval_datasets", []) if ds != pre]
    tests = tt.get("tests", {}).get(pre, {})

    def cell(run: str, ds: str, metric: str, digits: int = 3) -> str:
        mean, sd, n = table.summary(run, ds, metric)
        return "n/a" if not n else f"{num(mean, digits)} +- {num(sd, digits)}"

    rows = []
    for r in run_order(exp, table.runs):
        f1 = tests.get(r, {}).get("metrics", {}).get("mean_f1", {})
        ci = f1.get("ci95", [float("nan")] * 2)
        boot = (f1.get("clip_bootstrap") or {}).get("ci")
        vs = (
            ""
            if r == base or not f1
            else f"{points(f1.get('mean_diff'))} [{points(ci[0])}, {points(ci[1])}], p = "
            f"{pval(f1.get('p_two_sided'))}; MDE {mde_text(f1.get('power'))}"
            + (f"; seeds + clips [{points(boot[0])}, {points(boot[1])}]" if boot else "")
        )
        n = table.summary(r, pre, "mean_f1")[2]
        rows.append(
            [
                run_label(exp, r),
                str(n),
                cell(r, pre, "mean_f1"),
                vs,
                cell(r, pre, "knn_balanced_accuracy"),
                cell(r, pre, "rare_action_f1"),
                cell(r, pre, "spearman_rho"),
                cell(r, pre, "retrieval_mrr"),
                *(cell(r, ds, "mean_f1") for ds in others),
            ]
        )
    refs = tt.get("references", {})
    for line, label in REFERENCE_LABELS.items():  # what a constant, a coin, the truth score
        if line in refs.get(pre, {}).get("mean", {}):
            f1s = [num(refs.get(ds, {}).get("mean", {}).get(line)) for ds in others]
            rows.append([label, "", num(refs[pre]["mean"][line]), "", "", "", "", "", *f1s])
    header = [
        "run",
        "seeds",
        f"{pre} mean F1",
        f"vs {run_label(exp, base)} (pts, 95 % CI, p two-sided; MDE)",
        "kNN bal. acc.",
        "rare-action F1",
        "Spearman rho",
        "retrieval MRR",
        *(f"{ds} mean F1 (transfer)" for ds in others),
    ]
    crit_lines = [
        f"{i + 1}. **{c['verdict']}** {criteria_text.statement(c)}: "
        f"{criteria_text.detail(exp, crit, c)} (value {sig(c['value'])}, "
        f"threshold {sig(c['threshold'])})"
        for i, c in enumerate(crit.get("criteria", []))
    ]
    passed = sum(c["verdict"] == "PASS" for c in crit.get("criteria", []))
    calib = [line for line in calibration_lines(exp, crit) if line.startswith("- ")]
    return (
        "\n".join(
            [
                f"Generated by `python benchmarks/readme_results.py {exp_name} --write` from "
                f"results/{exp_name}/ (report of {when:%Y-%m-%d %H:%M} UTC; code `{version}`; "
                f"{machine()}). The study took {timing_txt}.",
                "",
                f"Linear-probe mean F1 (the evaluator's protocol, private score) over the "
                f"per-frame tasks of {pre}, mean +- sd over seeds; differences paired by seed in "
                "F1 points with the 95 % t-interval over seeds (the test clips held fixed), the "
                "smallest difference the one-sided test detects at 80 % power (MDE) and the 95 % "
                "interval of a bootstrap over seeds and test clips (seeds + clips); temporal "
                "metrics over windows with disjoint input (noise: rho ~ 0, MRR at chance "
                f"{_chance(d, pre, base)}).",
                "",
                *markdown_table(header, rows),
                f"Criteria ({run_label(exp, study.get('proposed'))} vs {run_label(exp, base)} on "
                f"{crit.get('dataset')}): {passed} of {len(crit_lines)} pass.",
                "",
                *crit_lines,
                "",
                "Controls and power (stats' `sanity`):",
                "",
                *calib,
            ]
        )
        + "\n"
    )


def _chance(d: Path, ds: str, run: str | None) -> str:
    for f in sorted((d / "evaluate").glob(f"{run}/seed*/{ds}.json")):
        c = io.read_json(f).get("retrieval_mrr_chance")
        if c is not None:
            return f"{c:.3f}"
    return "n/a"


def replace_block(readme: str, exp_name: str, text: str) -> str:
    begin, end = f"<!-- results:{exp_name}:begin -->", f"<!-- results:{exp_name}:end -->"
    if begin not in readme or end not in readme:
        raise SystemExit(f"markers {begin} / {end} not found: add them where the block belongs")
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{text}{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("exp")
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--snakemake-logs", default=str(ROOT / ".snakemake" / "log"))
    ap.add_argument(
        "--doc",
        "--readme",  # its name before the blocks moved to docs/results.md
        dest="doc",
        default=str(ROOT / "docs" / "results.md"),
        help="the markdown file that holds the marked block (default docs/results.md)",
    )
    ap.add_argument("--write", action="store_true", help="replace the block in --doc")
    a = ap.parse_args(argv)
    text = block(a.exp, Path(a.results), Path(a.snakemake_logs))
    if not a.write:
        print(text, end="")
        return 0
    doc = Path(a.doc)
    io.write_text(doc, replace_block(doc.read_text(), a.exp, text))
    print(f"{doc}: results:{a.exp} block rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
