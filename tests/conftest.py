"""Shared pytest fixtures.

``slurm_cluster`` brings up the local single-node SLURM of tests/cluster/up.sh once
per session (a no-op taking well under a second when it is already up) and returns
the environment variables that profiles/slurm reads. The cluster is left running
afterwards so reruns are fast; set TWBYOL_CLUSTER_TEARDOWN=1 to stop it at the end
of the session (tests/cluster/down.sh).

When up.sh fails the tests that use the fixture fail (CI=true) or are skipped with
up.sh's output as the reason (anywhere else, e.g. a laptop without root).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLUSTER_DIR = REPO / "tests" / "cluster"
UP_SH = CLUSTER_DIR / "up.sh"
DOWN_SH = CLUSTER_DIR / "down.sh"

# up.sh installs Debian packages on a fresh machine: allow for apt.
UP_TIMEOUT_S = int(os.environ.get("TWBYOL_CLUSTER_UP_TIMEOUT", "1800"))

_EXPORT_RE = re.compile(r"^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _parse_exports(stdout: str) -> dict[str, str]:
    env = {}
    for line in stdout.splitlines():
        m = _EXPORT_RE.match(line.strip())
        if m:
            env[m.group(1)] = m.group(2).strip("'\"")
    return env


def _up_failed(msg: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def slurm_cluster(request) -> dict[str, str]:
    """Start (or reuse) the local SLURM cluster; return the profile's env vars.

    Returns e.g. ``{"TWBYOL_SLURM_ACCOUNT": "twbyol", "TWBYOL_SLURM_PARTITION":
    "debug", "TWBYOL_SLURM_STATUS_SECONDS": "8"}``; merge it into the environment of
    ``snakemake --profile profiles/slurm`` (see :func:`slurm_env`).
    """
    try:
        proc = subprocess.run(
            ["bash", str(UP_SH)],
            check=False,
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        _up_failed(
            f"tests/cluster/up.sh timed out after {UP_TIMEOUT_S}s\n--- stderr ---\n{e.stderr or ''}"
        )
    except OSError as e:  # no bash
        _up_failed(f"cannot run tests/cluster/up.sh: {e}")
    if proc.returncode != 0:
        _up_failed(
            f"tests/cluster/up.sh failed (exit {proc.returncode})\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    env = _parse_exports(proc.stdout)
    env.setdefault("TWBYOL_SLURM_ACCOUNT", "twbyol")
    env.setdefault("TWBYOL_SLURM_PARTITION", "debug")

    if os.environ.get("TWBYOL_CLUSTER_TEARDOWN") == "1":

        def _down() -> None:
            subprocess.run(["bash", str(DOWN_SH)], check=False, stdin=subprocess.DEVNULL)

        request.addfinalizer(_down)
    return env


@pytest.fixture
def slurm_env(slurm_cluster) -> dict[str, str]:
    """A full environment for subprocesses that submit to the local cluster.

    os.environ + the cluster's variables, with this interpreter's bin directory
    first on PATH (jobs inherit the submitter's environment through sbatch's default
    --export=ALL, so `python`/`twbyol` in rules resolve to the repo's venv), and
    SLURM_* variables of an enclosing job removed.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(slurm_cluster)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env
