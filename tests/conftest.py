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

import numpy as np
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
    _unavailable(msg)


def _unavailable(msg: str) -> None:
    """What a test does without a resource only CI is sure to have: fail under CI=true (a
    skip there would hide the test), skip with `msg` as the reason anywhere else."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke study run end to end, once per session (tests/test_workflow.py's
    run_smoke_study: Snakemake killed mid-run, then rerun): (folder, the rerun's process,
    outputs finished before the kill with their times, runs orphaned by the kill)."""
    from tests.test_workflow import run_smoke_study  # the workflow tests' own helpers

    return run_smoke_study(tmp_path_factory)


@pytest.fixture(scope="session")
def real_video_dir() -> Path:
    """The folder of real mouse videos (benchmarks/real_videos.py's SHARED: the setting
    TWBYOL_REAL_VIDEOS, by default ../shared/real_rodent_video beside the checkout)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import real_videos as rv  # benchmarks/ is no package: on the path for this import only

    sys.path.remove(str(REPO / "benchmarks"))
    if not (rv.SHARED / "bsoid_bottomview" / "named_clips").is_dir():
        _unavailable(
            f"{rv.SHARED}: no real mouse videos (bsoid_bottomview/named_clips); set "
            "TWBYOL_REAL_VIDEOS to their folder (tests/README.md)"
        )
    return rv.SHARED


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


# ---------------------------------------------------------------- the MABe22 release layout


def write_release(
    root: Path,
    naming: str = "caltech",
    n_clips: int = 14,
    n_user_train: int = 3,
    n_frames: int = 40,
    size: int = 48,
    seed: int = 3,
    drop_video: bool = True,
    jobs: int = 2,
) -> dict:
    """A synthetic MABe22 mouse-triplet release laid out as a user has it after download.

    `naming` "caltech": CaltechDATA file names, the videos in the nested folders an unzipped
    archive leaves, the evaluator's mouse_round2_* metadata in a sub-folder; "aicrowd": the
    AIcrowd names, flat archive folders. Every video is one frame longer than its labels
    (the trailing frame), the userTrain clips are in user_train.npy and the split files'
    UserTrain lists but not in the frame map, and with `drop_video` the first publicTest
    clip's video is missing (as R6R4SNHGFM0ZOOH9A1TN is from the resized release).
    Returns the generator's summary plus {"missing": clip id or None}.
    """
    import json
    import shutil

    from twbyol.synthetic import generate as synth

    settings = dict(n_clips=n_clips, n_frames=n_frames, size=size, seed=seed)
    settings.update(n_user_train=n_user_train, naming=naming)
    summary = synth.generate(root, "mabe22", synth.SynthConfig(**settings), jobs=jobs)
    if naming == "caltech":  # metadata unzipped into a folder of its own
        (root / "metadata").mkdir()
        for name in (
            "mouse_round2_tasks.json",
            "mouse_round2_splits",
            "mouse_round2_frame_number_map.npy",
        ):
            shutil.move(str(root / name), str(root / "metadata" / name))
    missing = None
    if drop_video:
        split_dir = next(root.rglob("mouse_round2_splits"))
        missing = json.loads(next(split_dir.glob("*.json")).read_text())["publicTest"][0]
        next(root.rglob(f"{missing}.avi")).unlink()
    return {**summary, "missing": missing}


@pytest.fixture(name="write_release", scope="session")
def _write_release_fixture():
    """`write_release` itself, for tests that need a release of their own."""
    return write_release


@pytest.fixture(scope="session")
def release(tmp_path_factory) -> dict[str, Path]:
    """Both naming schemes of the release, written once per session (read-only for tests:
    copy before changing anything)."""
    out = {}
    for naming in ("caltech", "aicrowd"):
        root = tmp_path_factory.mktemp(f"release {naming}")  # a space in the path, on purpose
        write_release(root, naming)
        out[naming] = root
    return out


@pytest.fixture()
def frames(tmp_path):
    """The training tests' frames folder: frames + index.tsv of 6 clips of 120 frames at
    24 px whose content moves (a drifting bright square)."""
    d = tmp_path / "frames"
    d.mkdir()
    rows = ["clip_id\tn_frames\tfps\tsource\tshard\tstart\tend\tlabelled\tsplits"]
    start = 0
    rng = np.random.default_rng(0)
    for i in range(6):
        t = 120
        arr = rng.integers(0, 40, (t, 24, 24), dtype=np.uint8)
        for f in range(t):
            x = (f // 4 + 3 * i) % 18
            arr[f, 6:12, x : x + 6] = 220
        np.save(d / f"c{i}.npy", arr)
        rows.append(f"c{i}\t{t}\t30.0\t/none/c{i}.mp4\t0\t{start}\t{start + t}\t1\t")
        start += t
    (d / "index.tsv").write_text("\n".join(rows) + "\n")
    return d
