"""The documentation a newcomer follows: a short README, links that resolve, make targets
that exist, the config's required keys as the schema has them, and the wrapper job that
docs/cluster.md tells a cluster user to submit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = [
    README,
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "config" / "README.md",
    REPO / "benchmarks" / "README.md",
    REPO / "tests" / "README.md",
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _text(doc: Path) -> str:
    return FENCE.sub("", doc.read_text())  # links inside code blocks are not links


def anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces -> -."""
    out = set()
    for line in _text(doc).splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= 200, f"README.md has {n} lines; reference goes to docs/"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc):
    assert doc.exists()
    bad = []
    for target in LINK.findall(_text(doc)):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    assert not bad, bad


def test_no_doc_points_at_the_shared_folder():
    """The real videos are a setting (TWBYOL_REAL_VIDEOS), documented with its default in
    tests/README.md's settings table; no other doc names the folder."""
    for doc in DOCS:
        for line in doc.read_text().splitlines():
            if "../shared" in line:
                assert doc.name == "README.md" and doc.parent.name == "tests", (doc, line)
                assert line.startswith("| `TWBYOL_REAL_VIDEOS` |"), line


def test_make_targets_named_in_readme_exist():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", README.read_text()))
    assert {"smoke", "test"} <= named
    assert named <= targets, named - targets


def test_config_readme_names_the_schemas_required_keys():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    required = schema["$defs"]["experiment"]["required"]
    line = next(
        line
        for line in (REPO / "config" / "README.md").read_text().split("\n\n")
        if line.startswith("Required keys of every experiment:")
    )
    assert re.findall(r"`(\w+)`", line) == required


def test_results_blocks_live_in_docs_results():
    """The generated blocks are in docs/results.md (where the scripts write), none in README."""
    results = (REPO / "docs" / "results.md").read_text()
    for exp in ("synthetic", "synthetic_slow", "calibration", "real", "real-knn"):
        assert results.count(f"<!-- results:{exp}:begin -->") == 1, exp
        assert results.count(f"<!-- results:{exp}:end -->") == 1, exp
    assert "<!-- results:" not in README.read_text()


# ------------------------------------------------ profiles/slurm/snakemake_job.sbatch
WRAPPER = REPO / "profiles" / "slurm" / "snakemake_job.sbatch"


def test_wrapper_job_runs_snakemake_with_the_profile(tmp_path):
    """Submitted from the checkout, it runs `snakemake --profile profiles/slurm ARGS` and
    exits with Snakemake's status (stand-ins for snakemake on PATH; no SLURM)."""
    bin_, work = _stand_ins(tmp_path, snakemake_rc=3)
    p = subprocess.run(
        ["bash", str(WRAPPER), "mabe22", "--configfile", "my cluster.yaml"],
        cwd=work,
        env=_env(bin_, work),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 3, p.stderr
    assert (work / "snakemake.args").read_text().splitlines() == [
        "--profile",
        "profiles/slurm",
        "mabe22",
        "--configfile",
        "my cluster.yaml",
    ]


def test_wrapper_job_interrupts_snakemake_and_requeues_before_its_time_limit(tmp_path):
    """SLURM's warning signal (USR1, --signal=B:USR1@600) makes the script interrupt
    Snakemake with SIGINT (so that it cancels its stage jobs and releases its lock), wait
    for it to exit, then requeue its own job."""
    bin_, work = _stand_ins(tmp_path, snakemake_rc=0, sleep=30)
    p = subprocess.Popen(
        ["bash", str(WRAPPER), "smoke"],
        cwd=work,
        env=_env(bin_, work),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as slurmd starts a batch job: SIGINT at its default, even where this test runs
        # under a shell's background job (which ignores SIGINT for all it starts, and an
        # ignored signal can be neither trapped nor reset by bash)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    while not (work / "snakemake.args").exists():
        assert time.monotonic() < deadline and p.poll() is None, p.stdout.read()
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGUSR1)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert (work / "snakemake.interrupted").exists(), out  # SIGINT reached Python
    assert (work / "scontrol.args").read_text().split() == ["requeue", "4242"]
    # requeued only after Snakemake had exited
    assert (work / "snakemake.interrupted").stat().st_mtime_ns <= (
        work / "scontrol.args"
    ).stat().st_mtime_ns


def test_wrapper_job_refuses_to_run_outside_the_checkout(tmp_path):
    bin_, _ = _stand_ins(tmp_path, snakemake_rc=0)
    p = subprocess.run(
        ["bash", str(WRAPPER), "smoke"],
        cwd=tmp_path,
        env=_env(bin_, tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 1 and "checkout" in p.stderr


def _stand_ins(tmp_path: Path, snakemake_rc: int, sleep: float = 0) -> tuple[Path, Path]:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    work = tmp_path / "checkout"
    (work / "profiles" / "slurm").mkdir(parents=True)
    (work / "Snakefile").write_text("")
    (bin_ / "snakemake").write_text(
        f"""#!/usr/bin/env python3
import signal, sys, time
from pathlib import Path
try:  # the args written inside: a SIGINT right after them is the interruption too
    Path("snakemake.args").write_text("\\n".join(sys.argv[1:]) + "\\n")
    time.sleep({sleep})
except KeyboardInterrupt:
    Path("snakemake.interrupted").write_text("")
    sys.exit(1)
sys.exit({snakemake_rc})
"""
    )
    (bin_ / "scontrol").write_text('#!/bin/sh\necho "$@" > scontrol.args\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    return bin_, work


def _env(bin_: Path, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PATH=f"{bin_}:{env['PATH']}", SLURM_JOB_ID="4242", SLURM_SUBMIT_DIR=str(work))
    return env
