"""The study's tables: the evaluation and efficiency records loaded, one comparison table
(run, seed, dataset, metric, value: stats' comparison.tsv), runs in the study's order with
their labels, and the headline rows. What stats, figures and report share; kept apart from
the tests and criteria (twbyol.stats) so that a criterion's threshold reruns neither the
figures nor the tables' readers.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from twbyol import io

# Scalar metrics of an evaluation JSON that are compared between runs (mean_f1 first: the
# pre-registered primary metric).
HEADLINE = (
    "mean_f1",
    "mean_f1_public",
    "mean_f1_all",
    "knn_balanced_accuracy",
    "rare_action_f1",
    "few_shot_f1/0.01",
    "few_shot_f1/0.1",
    "spearman_rho",
    "retrieval_mrr",
)


EFFICIENCY = ("gpu_hours", "wall_s", "samples_per_s", "peak_mem_mb", "n_gpus")


def headline_dataset(exp: dict) -> str | None:
    """The dataset the headline comparisons and criteria read: the pretraining dataset when
    the experiment evaluates it, else the first evaluated one (a pretraining-only dataset of
    unlabelled videos has nothing to score)."""
    ds, evaluated = exp.get("pretrain_dataset"), list(exp.get("eval_datasets") or [])
    return ds if ds in evaluated or not evaluated else evaluated[0]


def run_seed_from_path(path: str | Path) -> tuple[str, int]:
    """(run, seed) of a path .../{run}/seed{s}/<file> (pretrain, embed and evaluate layout)."""
    p = Path(path)
    m = re.fullmatch(r"seed(\d+)", p.parent.name)
    if not m:
        raise ValueError(f"{path}: expected .../{{run}}/seed{{s}}/{p.name}")
    return p.parent.parent.name, int(m.group(1))


def load_efficiency(paths: Iterable[str | Path]) -> list[dict]:
    """efficiency.json files as dicts with run_id and seed (from the file, else its path)."""
    out = []
    for path in paths:
        eff = io.read_json(path)
        run, seed = run_seed_from_path(path)
        out.append({**eff, "run_id": eff.get("run_id", run), "seed": int(eff.get("seed", seed))})
    return out


def load_evaluations(paths: Iterable[str | Path]) -> list[dict]:
    """Evaluation JSONs, checked for the keys stats needs and for duplicates."""
    out, seen = [], {}
    for path in paths:
        ev = io.read_json(path)
        for key in ("run_id", "seed", "dataset", "tasks", "mean_f1"):
            if key not in ev:
                raise ValueError(f"{path}: missing {key!r} (written by an older twbyol evaluate?)")
        k = (ev["run_id"], int(ev["seed"]), ev["dataset"])
        if k in seen:
            raise ValueError(f"{path} and {seen[k]} both hold run {k[0]} seed {k[1]} on {k[2]}")
        seen[k] = path
        out.append(ev)
    return out


def task_kinds(evaluations: list[dict]) -> tuple[list[str], list[str]]:
    """(headline Discrete tasks, the other Discrete tasks), in first-seen order. The headline
    tasks are those of each evaluation's `headline_tasks` (the per-frame behaviour tasks, or
    every Discrete task when a task list has no behaviour); criterion 2 and the headline mean
    count only those."""
    frame, seq = {}, {}
    for ev in evaluations:
        head = set(ev.get("headline_tasks", []))
        for name, r in ev["tasks"].items():
            if r.get("type") == "Discrete":
                in_head = name in head if "headline_tasks" in ev else not r.get("sequence_level")
                (frame if in_head else seq)[name] = None
    return list(frame), [t for t in seq if t not in frame]


def collect_references(evaluations: list[dict]) -> dict[str, dict]:
    """{dataset: {"mean": {line: F1}, "tasks": {task: {line: F1}}}}: the reference lines of
    the evaluations (twbyol.reference.reference_lines), functions of a dataset's labels and
    protocol alone, so the same in every run's evaluation of it (compared as JSON, where NaN
    equals NaN); a disagreement means the evaluations were scored on different labels, and
    is an error naming the two."""
    out: dict[str, dict] = {}
    first: dict[str, tuple] = {}
    for ev in evaluations:
        if "reference_mean_f1" not in ev:
            continue
        lines = {
            "mean": ev["reference_mean_f1"],
            "tasks": {t: r["reference_f1"] for t, r in ev["tasks"].items() if "reference_f1" in r},
        }
        ds, who = ev["dataset"], (ev["run_id"], ev["seed"])
        if ds not in out:
            out[ds], first[ds] = lines, who
        elif json.dumps(lines, sort_keys=True) != json.dumps(out[ds], sort_keys=True):
            raise ValueError(
                f"{ds}: the reference lines of run {who[0]} seed {who[1]} differ from those of "
                f"run {first[ds][0]} seed {first[ds][1]}: scored on different labels?"
            )
    return out


def collect_clip_counts(evaluations: list[dict]) -> dict[str, dict]:
    """{dataset: {"tasks": its headline tasks, "runs": {run: {seed: {task: clip_counts}}}}}:
    each evaluation's per-clip (tp, fp, fn) of its binary per-frame tasks
    (twbyol.probe.clip_counts), for the clip bootstrap of its mean F1."""
    out: dict[str, dict] = {}
    for ev in evaluations:
        counts = {t: r["clip_counts"] for t, r in ev["tasks"].items() if "clip_counts" in r}
        ds = out.setdefault(
            ev["dataset"], {"tasks": list(ev.get("headline_tasks", [])), "runs": {}}
        )
        ds["runs"].setdefault(ev["run_id"], {})[int(ev["seed"])] = counts
    return out


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def run_order(exp: dict, runs: Iterable[str]) -> list[str]:
    """Display order: baseline, proposed, then the experiment's order, then unknown runs."""
    study = exp.get("study") or {}
    first = [study.get("baseline"), study.get("proposed")] + list(exp.get("runs", {}))
    rank = {r: i for i, r in enumerate(dict.fromkeys(r for r in first if r))}
    return sorted(dict.fromkeys(runs), key=lambda r: (rank.get(r, len(rank)), r))


def comparison_rows(
    evaluations: list[dict], efficiency: list[dict], pretrain_dataset: str
) -> list[dict]:
    """Long table rows {run_id, seed, dataset, metric, value} (see module docstring)."""
    rows = []
    for ev in evaluations:
        key = {"run_id": ev["run_id"], "seed": int(ev["seed"]), "dataset": ev["dataset"]}
        flat = {**ev, **{f"few_shot_f1/{k}": v for k, v in ev.get("few_shot_f1", {}).items()}}
        rows += [{**key, "metric": m, "value": _num(flat[m])} for m in HEADLINE if m in flat]
        for name, r in ev["tasks"].items():
            for score in ("f1", "mse", "f1_public", "mse_public"):
                if score in r:
                    rows.append({**key, "metric": f"{score}/{name}", "value": _num(r[score])})
            positive = r.get("per_class", {}).get("1", {})  # a binary task's positive class
            for score in ("precision", "recall"):
                if score in positive:
                    value = _num(positive[score])
                    rows.append({**key, "metric": f"{score}/{name}", "value": value})
            if "n_pos_test" in r:
                rows.append({**key, "metric": f"n_pos/{name}", "value": _num(r["n_pos_test"])})
            if "knn" in r:
                rows.append(
                    {**key, "metric": f"knn_accuracy/{name}", "value": _num(r["knn"]["accuracy"])}
                )
    for eff in efficiency:
        key = {"run_id": eff["run_id"], "seed": int(eff["seed"]), "dataset": pretrain_dataset}
        rows += [
            {**key, "metric": f"efficiency/{k}", "value": _num(eff[k])}
            for k in EFFICIENCY
            if k in eff
        ]
    return rows


class Table:
    """comparison.tsv in memory: value lookup by (run, dataset, metric) -> {seed: value}."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self._v: dict[tuple[str, str, str], dict[int, float]] = {}
        for r in rows:
            self._v.setdefault((r["run_id"], r["dataset"], r["metric"]), {})[int(r["seed"])] = (
                float(r["value"])
            )

    @classmethod
    def read(cls, path: str | Path) -> Table:
        with open(path, newline="") as f:
            return cls(list(csv.DictReader(f, delimiter="\t")))

    def write(self, path: str | Path) -> None:
        lines = ["run_id\tseed\tdataset\tmetric\tvalue"]
        lines += [
            f"{r['run_id']}\t{r['seed']}\t{r['dataset']}\t{r['metric']}\t{float(r['value'])!r}"
            for r in self.rows
        ]
        io.write_text(path, "\n".join(lines) + "\n")

    def values(self, run: str, dataset: str, metric: str) -> dict[int, float]:
        """{seed: value} (finite values only)."""
        return {
            s: v for s, v in self._v.get((run, dataset, metric), {}).items() if not math.isnan(v)
        }

    def paired(
        self, run: str, ref: str, dataset: str, metric: str
    ) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Seeds both runs have, and their values in seed order."""
        a, b = self.values(run, dataset, metric), self.values(ref, dataset, metric)
        seeds = sorted(set(a) & set(b))
        return seeds, np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])

    def summary(self, run: str, dataset: str, metric: str) -> tuple[float, float, int]:
        """(mean, sd with ddof=1 (NaN for one seed), number of seeds)."""
        v = np.array(list(self.values(run, dataset, metric).values()))
        return (
            float(v.mean()) if len(v) else float("nan"),
            float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
            len(v),
        )

    @property
    def runs(self) -> list[str]:
        return list(dict.fromkeys(r["run_id"] for r in self.rows))

    @property
    def datasets(self) -> list[str]:
        return list(
            dict.fromkeys(
                r["dataset"] for r in self.rows if not r["metric"].startswith("efficiency/")
            )
        )


def run_label(exp: dict, run: str | None) -> str:
    """A run's display label from the experiment (`label`), else its id."""
    return str(exp.get("runs", {}).get(run, {}).get("label", run))


def headline(table: Table, metrics: Iterable[str]) -> list[tuple[str, str, int, list[tuple]]]:
    """(run, dataset, seeds, [(mean, sd) per metric]) for every run evaluated on a dataset;
    seeds counts the evaluations with a finite value of any of the metrics."""
    metrics = list(metrics)
    out = []
    for ds in table.datasets:
        for run in table.runs:
            stats = [table.summary(run, ds, m) for m in metrics]
            n = max(n for _, _, n in stats)
            if n:
                out.append((run, ds, n, [(m, sd) for m, sd, _ in stats]))
    return out
