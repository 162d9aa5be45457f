"""Write an experiment's design record (results/{exp}/experiment.json) for stats, figures, report.

The workflow passes the record (name, description, seeds, datasets, runs, study roles,
recipe) as inline JSON; this stage validates that the study roles name defined runs and
writes it atomically.
"""

from __future__ import annotations

import argparse
import sys

from twbyol import io


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--record", required=True, help="the record, inline JSON or a JSON file")
    a = ap.parse_args(argv)
    record = io.json_arg(a.record)
    runs = record.get("runs", {})
    for role, value in record.get("study", {}).items():
        for run in value if isinstance(value, list) else [value]:
            if run not in runs:
                raise ValueError(f"{a.out}: study.{role} names run {run!r}, which is not in runs")
    io.write_json(a.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
