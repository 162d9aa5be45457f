"""Compare two results folders of the same study: what a refactor must leave unchanged.

    python benchmarks/compare_results.py results_before/smoke results/smoke

Walks both trees and compares every artifact of the same relative path:
- JSON (.json, .done, .jsonl line by line): parsed and compared value by value (floats
  exactly, NaN equal to NaN); the keys that hold measurements of the machine, not results of
  the study (`MEASURED_KEYS`: wall and step times, throughputs, memory, GPU-hours, hosts,
  dates), are skipped wherever they sit, and so is the cost criterion (it reads the step
  benchmark's timing on CPU); the differing paths are listed.
- TSV: compared cell by cell, rows whose `metric` column names a measured key skipped.
- .pt (torch): loaded and compared tensor by tensor (torch.save's archive holds the temp
  file's name, so the bytes of equal models differ).
- .md: line by line, without the code version line, the Efficiency section and the cost
  criterion's row; .pdf: bytes without the creation date.
- Anything else (npy, npz, png, csv): byte for byte.
Not compared: what only measures or logs (`SKIPPED`: logs/, benchmarks/, submitit/ job
files, *.log, the step benchmark and the efficiency figure).
Prints one line per differing or one-sided file and a summary; exits 1 when anything
differs, 0 when the two studies' results are equal.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import re
import sys
from pathlib import Path

# keys (JSON) / metric names (TSV, after "efficiency/") that measure the machine, not the study
MEASURED_KEYS = re.compile(
    r"^(timings?_s|wall(_time)?(_s)?|.*_seconds?|.*_s_per_.*|seconds|elapsed.*|.*samples_per_s|"
    r"clips_per_s|.*per_second|step_time.*|.*_time_s|gpu_hours|cpu_hours|.*memory.*|"
    r"max_rss.*|peak_.*|hostname|host|node|date|created|started|finished|time|job_id|"
    r"slurm_.*|pid)$"
)
SKIPPED = re.compile(
    r"^(logs|benchmarks)/|/submitit/|\.log$|^stats/step_benchmark\.json$|^images/efficiency\."
)
MEASURED_CRITERIA = ("gpu_hours",)  # criterion 4 reads GPU-hours, or on CPU a step timing
MEASURED_MD = re.compile(r"^- code version:|^\| 4 \| GPU-hours")


def _measured(key: str) -> bool:
    return bool(MEASURED_KEYS.match(key.rsplit("/", 1)[-1]))


def diff_json(a, b, path: str = "") -> list[str]:
    """Paths at which two parsed JSON values differ, measured keys skipped."""
    if isinstance(a, dict) and a.get("id") in MEASURED_CRITERIA:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if _measured(k):
                continue
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'second' if k not in a else 'first'}")
                continue
            out += diff_json(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff_json(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def diff_tsv(a: Path, b: Path) -> list[str]:
    """Rows (by number) at which two TSVs differ; rows whose metric is measured skipped."""

    def rows(p: Path) -> list[dict]:
        with open(p, newline="") as f:
            return [
                r
                for r in csv.DictReader(f, delimiter="\t")
                if not _measured(str(r.get("metric") or ""))
            ]

    ra, rb = rows(a), rows(b)
    if len(ra) != len(rb):
        return [f"{len(ra)} rows != {len(rb)} rows"]
    return [f"row {i + 2}: {x} != {y}" for i, (x, y) in enumerate(zip(ra, rb)) if x != y]


def diff_torch(a: Path, b: Path) -> list[str]:
    """Where two torch.save files differ, tensor by tensor."""
    import torch

    def walk(x, y, path: str) -> list[str]:
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            return [] if x.shape == y.shape and torch.equal(x, y) else [f"{path}: tensors differ"]
        if isinstance(x, dict) and isinstance(y, dict):
            if set(x) != set(y):
                return [f"{path}: keys {sorted(set(x) ^ set(y), key=str)} on one side only"]
            return [d for k in x if not _measured(str(k)) for d in walk(x[k], y[k], f"{path}/{k}")]
        if isinstance(x, str) and isinstance(y, str) and x.startswith("{") and y.startswith("{"):
            return diff_json(json.loads(x), json.loads(y), path)  # the history's JSON records
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)) and len(x) == len(y):
            return [d for i, (u, v) in enumerate(zip(x, y)) for d in walk(u, v, f"{path}[{i}]")]
        return diff_json(x, y, path)

    load = functools.partial(torch.load, map_location="cpu", weights_only=False)
    return walk(load(a), load(b), "")


def diff_md(a: Path, b: Path) -> list[str]:
    """Lines at which two reports differ, the measured ones left out."""

    def lines(p: Path) -> list[str]:
        out, skip = [], False
        for line in p.read_text().splitlines():
            if line.startswith("## "):
                skip = line.startswith("## Efficiency")
            if not skip and not MEASURED_MD.match(line):
                out.append(line)
        return out

    la, lb = lines(a), lines(b)
    if len(la) != len(lb):
        return [f"{len(la)} lines != {len(lb)} lines"]
    return [f"{x!r} != {y!r}" for x, y in zip(la, lb) if x != y]


def _without_pdf_dates(data: bytes) -> bytes:
    return re.sub(rb"/(CreationDate|ModDate) \(D:[^)]*\)", b"", data)


def compare(first: Path, second: Path) -> list[str]:
    """One line per file that differs or exists on one side only."""

    def files(root: Path) -> set[str]:
        return {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not SKIPPED.search(p.relative_to(root).as_posix())
        }

    fa, fb = files(first), files(second)
    out = [f"{r}: only in {first}" for r in sorted(fa - fb)]
    out += [f"{r}: only in {second}" for r in sorted(fb - fa)]
    for rel in sorted(fa & fb):
        a, b = first / rel, second / rel
        if rel.endswith((".json", ".done")):
            diffs = diff_json(json.loads(a.read_text()), json.loads(b.read_text()))
        elif rel.endswith(".jsonl"):
            ja, jb = ([json.loads(x) for x in p.read_text().splitlines()] for p in (a, b))
            diffs = diff_json(ja, jb)
        elif rel.endswith(".tsv"):
            diffs = diff_tsv(a, b)
        elif rel.endswith(".pt"):
            diffs = diff_torch(a, b)
        elif rel.endswith(".md"):
            diffs = diff_md(a, b)
        elif rel.endswith(".pdf"):
            same = _without_pdf_dates(a.read_bytes()) == _without_pdf_dates(b.read_bytes())
            diffs = [] if same else ["bytes differ (creation dates aside)"]
        else:
            diffs = [] if a.read_bytes() == b.read_bytes() else ["bytes differ"]
        out += [f"{rel}: {d}" for d in diffs[:5]]
        if len(diffs) > 5:
            out.append(f"{rel}: ... {len(diffs) - 5} more")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    args = ap.parse_args(argv)
    for p in (args.first, args.second):
        if not p.is_dir():
            ap.error(f"{p}: not a folder")
    diffs = compare(args.first, args.second)
    for line in diffs:
        print(line)
    n = sum(
        1
        for p in args.first.rglob("*")
        if p.is_file() and not SKIPPED.search(p.relative_to(args.first).as_posix())
    )
    print(f"{len(diffs)} differences; {n} files of {args.first} compared")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
