"""The launcher's guards against training one run twice: a live local job of the run is
waited for, and a SLURM job id from job.json is trusted only when that job is this run's."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tests.test_train import cfg
from twbyol import launch

TWBYOL = str(Path(sys.executable).parent / "twbyol")
RESOURCES = json.dumps({"nodes": 1, "gpus_per_node": 0, "timeout_min": 10})


def fake_controller(cwd: Path, folder: str) -> subprocess.Popen:
    """A process whose command line is submitit's local controller of `folder`."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "submitit.local._local", folder],
        cwd=cwd,
    )


def test_a_live_local_job_is_recognised_only_as_this_runs_controller(tmp_path):
    folder = tmp_path / "run" / "submitit"
    folder.mkdir(parents=True)
    job_file = tmp_path / "run" / "job.json"
    mine = fake_controller(tmp_path, "run/submitit")  # relative, as the launcher passes it
    other = fake_controller(tmp_path, "other/submitit")
    try:

        def found(job_id, executor="local"):
            job_file.write_text(json.dumps({"executor": executor, "job_id": str(job_id)}))
            return launch.live_local_job(folder, job_file)

        assert found(mine.pid).pid == mine.pid
        assert found(other.pid) is None  # another run's controller
        assert found(os.getpid()) is None  # a live process that is no controller (a reused pid)
        assert found(mine.pid, executor="slurm") is None
        mine.kill()
        mine.wait()
        assert found(mine.pid) is None  # ended
    finally:
        for p in (mine, other):
            p.kill()
            p.wait()
    job_file.unlink()
    assert launch.live_local_job(folder, job_file) is None


def spans(run: Path) -> list[tuple[str, str]]:
    """(start, end) of every submitit local job of a run, from rank 0's log timestamps."""
    stamp = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\)")
    out = []
    for log in (run / "submitit").glob("*_0_log.out"):
        times = stamp.findall(log.read_text())
        out.append((times[0], times[-1]))
    return sorted(out)


def test_a_rerun_waits_for_the_local_job_its_killed_launcher_left_running(frames, tmp_path):  # noqa: F811
    """kill -9 of the launcher (as of the Snakemake above it) leaves submitit's local job
    training; a second launcher of the same run waits for that job, then resumes from its
    checkpoint: two jobs, one after the other, never at once, and the run's outputs whole."""
    out = tmp_path / "run"
    config = tmp_path / "run.json"
    config.write_text(json.dumps(asdict(cfg(frames, out, epochs=150, checkpoint_every=3))))
    cmd = [
        TWBYOL,
        "pretrain",
        "--executor",
        "local",
        "--config",
        str(config),
        "--resources",
        RESOURCES,
    ]
    first = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint.pt").exists():  # the job trains
            assert first.poll() is None and time.time() < deadline, "the first job never trained"
            time.sleep(0.05)
        # the run folder's stdout.log is live: the job's progress lines from its first step
        log = out / "stdout.log"
        while "[tw seed 0] epoch 1/150 | step 1/" not in (log.read_text() if log.exists() else ""):
            assert time.time() < deadline, "no progress line in the run's stdout.log"
            time.sleep(0.05)
        assert log.is_symlink()
        first.send_signal(signal.SIGKILL)
        first.wait()
        orphan = launch.live_local_job(out / "submitit", out / "job.json")
        assert orphan is not None, "the local job died with its launcher"
        again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
        left = launch.live_local_job(out / "submitit", out / "job.json")
        for p in [left, *left.children(recursive=True)] if left else []:
            p.kill()  # submitit's local jobs ignore SIGTERM
    assert again.returncode == 0, again.stderr[-4000:]
    assert (
        f"local job {orphan.pid} of this run (an earlier launcher's) is still running"
        in again.stderr
    )
    assert not orphan.is_running()
    (a0, a1), (b0, b1) = spans(out)
    assert a1 <= b0, f"two trainings at once: {spans(out)}"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 150 and (out / "model.pt").exists()
    # once the job ended: a copy of its log (the second job's: it found the run finished)
    assert not (out / "stdout.log").is_symlink()
    assert "Job completed successfully" in (out / "stdout.log").read_text()


def test_a_job_id_of_another_job_is_not_reattached(tmp_path, monkeypatch, capsys):
    """SLURM reuses job ids: job.json's id is trusted only when squeue/sacct report that job
    under this run's name and working folder; otherwise the launcher says why and submits."""
    monkeypatch.chdir(tmp_path)
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({"executor": "slurm", "job_id": "4242"}))
    name = "twbyol-tw-s0"
    cases = {
        None: "neither squeue nor sacct knows it",
        ("twbyol-other-s1", str(tmp_path)): "it is named 'twbyol-other-s1', not 'twbyol-tw-s0'",
        (name, "/elsewhere"): f"it runs in /elsewhere, not in {tmp_path}",
    }
    for ident, why in cases.items():
        monkeypatch.setattr(launch, "slurm_job_identity", lambda job_id, ident=ident: ident)
        assert launch._reattach(tmp_path / "submitit", job_file, 1, name) is None
        err = capsys.readouterr().err
        assert (
            f"job.json names SLURM job 4242, but {why}: not this run's job; submitting anew" in err
        )
    monkeypatch.setattr(launch, "slurm_job_identity", lambda job_id: (name, str(tmp_path)))
    assert launch._not_this_run("4242", name) == ""
