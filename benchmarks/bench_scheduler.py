"""The Snakemake process's own cost on a local run, with and without its job-rate limiter.

    python benchmarks/bench_scheduler.py [--jobs 200] [--sleep 1.0] [--cores 2] [--repeats 1]

Writes a workflow of `--jobs` independent `sleep` jobs in a temp folder and runs it twice
per repeat, interleaved: as Snakemake runs it by default, and with the workflow's
workflow/rules/scheduling.smk included (the limiter off on local runs). Prints per mode the
wall time, the CPU seconds of Snakemake and its jobs (getrusage of the child), and the
scheduling passes (the scheduler's "Ready jobs" debug lines: one per pass that had ready
jobs), and the ratios. The jobs themselves cost the same in both modes, so the CPU
difference is Snakemake's. Asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEDULING = Path(__file__).resolve().parent.parent / "workflow" / "rules" / "scheduling.smk"

SNAKEFILE = """\
{include}
rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))

rule one:
    output: "out/{{i}}.txt"
    shell: "sleep {sleep}; echo {{wildcards.i}} > {{output}}"
"""


def run(folder: Path, jobs: int, sleep: float, cores: int, limiter_off: bool) -> dict:
    """One run of the sleep workflow in a fresh `folder`: wall s, CPU s (Snakemake and its
    jobs), scheduling passes."""
    folder.mkdir(parents=True)
    include = f'include: "{SCHEDULING}"' if limiter_off else ""
    (folder / "Snakefile").write_text(SNAKEFILE.format(include=include, jobs=jobs, sleep=sleep))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(cores), "--verbose", "--nolock"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise RuntimeError(f"snakemake failed in {folder}:\n{out.stderr[-3000:]}")
    done = len(list((folder / "out").glob("*.txt")))
    if done != jobs:
        raise RuntimeError(f"{folder}: {done} of {jobs} jobs wrote their output")
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "passes": sum(line.startswith("Ready jobs") for line in out.stderr.splitlines()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=1.0, help="seconds each job sleeps")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args(argv)
    rows: dict[str, list[dict]] = {"default": [], "limiter off": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for mode in rows:
                folder = Path(tmp) / f"{mode.replace(' ', '_')}{r}"
                rows[mode].append(run(folder, a.jobs, a.sleep, a.cores, mode != "default"))
    print(f"{a.jobs} jobs of sleep {a.sleep} s, --cores {a.cores}, {a.repeats} repeat(s)")
    for mode, rs in rows.items():
        for r in rs:
            print(
                f"  {mode:12s} wall {r['wall_s']:7.1f} s  CPU {r['cpu_s']:6.1f} s  "
                f"passes {r['passes']}"
            )
    for i, (d, f) in enumerate(zip(rows["default"], rows["limiter off"])):
        print(
            f"repeat {i}: limiter off / default: CPU {f['cpu_s'] / d['cpu_s']:.2f}, "
            f"wall {f['wall_s'] / d['wall_s']:.2f}, passes {f['passes']} / {d['passes']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
