"""Reliability drills against the local SLURM of tests/cluster/up.sh.

(1) a pretraining job is preempted twice — `scontrol requeue` (SLURM kills and requeues it)
    and then `scancel --signal=USR2` (submitit's checkpoint + requeue path, honoured at the
    end of the step in flight) — and ends with exactly the metrics and weights of an
    uninterrupted run of the same config, the second resume at the signalled step;
(2) the launcher (`twbyol pretrain --executor slurm`) is SIGKILLed while its job runs: the
    rerun reattaches to the same SLURM job instead of submitting a duplicate; and a job.json
    whose id SLURM has given another job is not reattached;
(3) a failing rule under `snakemake --profile profiles/slurm` is retried once (the profile's
    `retries: 1`), then reported with the path of its SLURM log.

Timing notes for this cluster: SLURM ignores nothing, but submitit's job processes ignore
SIGTERM, so after `scontrol requeue` training goes on for KillWait (5 s) until SIGKILL; a
requeued job starts again ~11 s later; `import twbyol.train` alone takes several seconds
per task on a loaded 2-core machine. The drill's steps are made slow enough (large batch of
a tiny model, not sleeps) that the job cannot finish inside KillWait.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from submitit.core import utils as submitit_utils

from tests.cluster.test_cluster import wait_for_job
from tests.test_train import cfg

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"
TWBYOL = str(Path(sys.executable).parent / "twbyol")
# what the brief's experiments ask for: one node, 2 (fake) GPUs -> 2 DDP processes (gloo)
RESOURCES = {"nodes": 1, "gpus_per_node": 2, "cpus_per_task": 1, "timeout_min": 10}
RESUMED_RE = re.compile(r"resumed from (\S+) at step (\d+)/(\d+)")


# ----------------------------------------------------------------------------- helpers
def run_config(frames_dir: Path, out: Path, run_id: str, batch_size: int) -> dict:
    """tests/test_train.py's tiny BYOL config: 3 epochs of 4 steps, a checkpoint every 4
    steps — i.e. only at epoch ends, so a resume never splits an epoch (an epoch line
    averages only the steps run since a mid-epoch resume, which would differ); a sync point
    every step, so USR2 is honoured after the step in flight (the default, every 10 steps,
    could defer it past the run's last step)."""
    return asdict(
        cfg(
            frames_dir,
            out,
            run_id=run_id,
            batch_size=batch_size,
            samples_per_epoch=4 * batch_size,
            checkpoint_every=4,
            sync_every=1,
        )
    )


def pretrain_cmd(config: dict, tmp: Path) -> list[str]:
    path = tmp / f"{config['run_id']}-{Path(config['out_dir']).name}.json"
    path.write_text(json.dumps(config))
    return [
        TWBYOL,
        "pretrain",
        "--executor",
        "slurm",
        "--config",
        str(path),
        "--resources",
        json.dumps(RESOURCES),
    ]


def start(cmd: list[str], env: dict, tmp: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """Run a launcher in the background; its stderr goes to a file (no pipe to fill up)."""
    err = tmp / f"{name}.launcher.err"
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=tmp,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err.open("w"),
    )
    return proc, err


def poll(what: str, cond, timeout: float, *, procs=(), interval: float = 0.1):
    """Wait until cond() is truthy; fail early if a background launcher already exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        for proc, err in procs:
            if proc.poll() is not None:
                pytest.fail(
                    f"launcher exited ({proc.returncode}) while waiting for {what}:\n"
                    f"{err.read_text()[-4000:]}"
                )
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def job_id_of(out: Path) -> str | None:
    try:
        return str(json.loads((out / "job.json").read_text())["job_id"])
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def squeue_state(job_id: str, env: dict) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    ).stdout.strip()


def finish(proc: subprocess.Popen, err: Path, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"launcher still running after {timeout}s:\n{err.read_text()[-4000:]}")
    text = err.read_text()
    assert proc.returncode == 0, text[-6000:]
    return text


def metrics(out: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(s).items() if k != "wall_s"}
        for s in (out / "metrics.jsonl").read_text().splitlines()
    ]


def backbone(out: Path) -> dict:
    return torch.load(out / "model.pt", weights_only=True)["backbone"]


def sacct_since(since: str, fields: str, env: dict) -> list[list[str]]:
    out = subprocess.run(
        ["sacct", "-a", "-X", "-n", "-P", "-S", since, "-o", fields],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def now() -> str:
    """sacct -S of 'since this test started' (1 s resolution: go back one second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 1))


# ----------------------------------------------------------------------------- (1)
# After `scontrol requeue` the job's tasks ignore SIGTERM (submitit) and train on until
# SIGKILL, KillWait (5 s) later, srun allowing up to 7 s: the 8 steps after the first
# checkpoint (end of epoch 1) must outlast that even on an idle machine, or the job
# completes before it is killed (seen in CI with 4 steps, and on 2026-12-02 with 768
# samples a step once training got 2.3x faster: 0.49 s a step in one process, 8 steps ~4 s,
# the job done before the first resume). 3072 samples: 2.14 s a step in one process on an
# idle core (1.2 GB), so 8 steps ~17 s; re-measure when the step gets faster again.
DRILL_BATCH = 3072


def test_preempted_pretraining_resumes_to_the_uninterrupted_result(
    frames, tmp_path, slurm_env, failing_workflow
):  # noqa: F811
    """scontrol requeue, then USR2, of a 2-task DDP job: it resumes from checkpoint.pt twice
    and ends bitwise equal to the same config run without interruption.

    The reference is also a 2-task SLURM job, not an in-process train(): with world size 2
    each rank's BatchNorm sees half the global batch (no SyncBatchNorm on CPU), so a
    1-process run of the same config differs numerically. Two jobs of the same world size,
    1 thread per task (SLURM_CPUS_PER_TASK) and gloo's 2-way all-reduce are bitwise
    reproducible. It runs concurrently with the drill (the node has 4 CPUs and 4 GPUs)."""
    ref_out, cut_out = tmp_path / "ref", tmp_path / "cut"
    ref = start(
        pretrain_cmd(run_config(frames, ref_out, "drill", DRILL_BATCH), tmp_path),
        slurm_env,
        tmp_path,
        "ref",
    )
    cut = start(
        pretrain_cmd(run_config(frames, cut_out, "drill", DRILL_BATCH), tmp_path),
        slurm_env,
        tmp_path,
        "cut",
    )
    try:
        job_id = poll("job.json of the drill run", lambda: job_id_of(cut_out), 60, procs=[cut])
        rank0_err = cut_out / "submitit" / f"{job_id}_0_log.err"

        # preemption 1: SLURM requeues the running job (SIGTERM, KillWait, SIGKILL, requeue);
        # the same pickled Trainer starts again and finds checkpoint.pt
        poll("the first checkpoint", lambda: (cut_out / "checkpoint.pt").exists(), 120, procs=[cut])
        assert not (cut_out / "model.pt").exists()
        subprocess.run(["scontrol", "requeue", job_id], check=True, env=slurm_env)
        failing_workflow.start(slurm_env)  # drill (3), in the background: see FailingWorkflow

        # preemption 2, once the restarted job has resumed: submitit's USR2 handler (what
        # SLURM sends before a time limit) calls Trainer.checkpoint and requeues the job
        poll(
            "the first resume",
            lambda: len(RESUMED_RE.findall(read(rank0_err))) >= 1,
            120,
            procs=[cut],
        )
        assert squeue_state(job_id, slurm_env) == "RUNNING"
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True, env=slurm_env)

        # After USR2, rank 0 exits and rank 1 dies in its next all-reduce ("Connection closed
        # by peer"), leaving an error result pickle. Once restarted, no stale result may be
        # left: the launcher takes the job as done as soon as every task has a result file.
        poll(
            "the second resume",
            lambda: len(RESUMED_RE.findall(read(rank0_err))) >= 2,
            120,
            procs=[cut],
        )
        outcomes = {
            p.name: submitit_utils.pickle_load(p)[0]
            for p in (cut_out / "submitit").glob(f"{job_id}_*_result.pkl")
        }
        assert "error" not in outcomes.values(), outcomes

        cut_log = finish(*cut, timeout=180)
        finish(*ref, timeout=60)
    finally:
        for proc, _ in (ref, cut):
            if proc.poll() is None:
                proc.kill()

    assert f"submitted slurm job {job_id}" in cut_log
    assert wait_for_job(job_id, slurm_env) == "COMPLETED"
    states = subprocess.run(
        ["sacct", "-j", job_id, "-X", "-D", "-n", "-P", "-o", "State"],
        capture_output=True,
        text=True,
        check=True,
        env=slurm_env,
    ).stdout.split()
    assert states == ["REQUEUED", "REQUEUED", "COMPLETED"], states

    # the run's stderr.log (rank 0's log, collected by the launcher) shows both resumes
    resumes = RESUMED_RE.findall((cut_out / "stderr.log").read_text())
    assert len(resumes) == 2, resumes
    assert all(
        Path(p) == cut_out / "checkpoint.pt" and 0 < int(n) < int(t) == 12 for p, n, t in resumes
    ), resumes
    assert "Caught signal SIGUSR2" in rank0_err.read_text()
    # USR2 is honoured at the end of the step in flight: the job resumes at the very step it
    # was signalled in (the periodic checkpoint alone would have lost up to 4 steps)
    signalled = re.findall(
        r"checkpointed at step (\d+) on SIGUSR2", (cut_out / "stderr.log").read_text()
    )
    assert len(signalled) == 1 and resumes[1][1] == signalled[0], (signalled, resumes)

    # ... and its result is the uninterrupted run's, bitwise
    assert len(metrics(ref_out)) == 3 and metrics(cut_out) == metrics(ref_out)
    a, b = backbone(ref_out), backbone(cut_out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "resumed from" not in (ref_out / "stderr.log").read_text()


# ----------------------------------------------------------------------------- (2)
def test_killed_launcher_reattaches_instead_of_resubmitting(frames, tmp_path, slurm_env):  # noqa: F811
    since = now()
    run_id = f"reattach-{uuid.uuid4().hex[:8]}"  # a job name no other test run uses
    out = tmp_path / "run"
    cmd = pretrain_cmd(run_config(frames, out, run_id, 64), tmp_path)
    first = start(cmd, slurm_env, tmp_path, "first")
    try:
        job_id = poll("job.json", lambda: job_id_of(out), 60, procs=[first])
        poll(
            "the job to run",
            lambda: squeue_state(job_id, slurm_env) == "RUNNING",
            60,
            procs=[first],
        )
        first[0].send_signal(signal.SIGKILL)  # the login-node launcher dies, the job goes on
        first[0].wait(timeout=10)
    finally:
        if first[0].poll() is None:
            first[0].kill()
    assert squeue_state(job_id, slurm_env) == "RUNNING" and not (out / "model.pt").exists()

    again = subprocess.run(
        cmd,
        env=slurm_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-6000:]
    assert f"reattaching to SLURM job {job_id}" in again.stderr, again.stderr[-3000:]
    assert "submitted" not in again.stderr
    assert (out / "model.pt").exists() and len(metrics(out)) == 3
    assert "Job completed successfully" in (out / "stdout.log").read_text()

    assert wait_for_job(job_id, slurm_env) == "COMPLETED"

    def mine() -> list[str]:
        rows = sacct_since(since, "JobID,JobName", slurm_env)
        return [r[0] for r in rows if r[1] == f"twbyol-{run_id}-s0"]

    # slurmdbd may list the job by id before its row answers a query by start time (seen
    # once in CI on a loaded machine: [] a moment after COMPLETED): poll for it
    poll("the job's accounting row", mine, 30)
    assert mine() == [job_id], mine()  # one submission, no duplicate


def test_a_job_id_that_slurm_gave_another_job_is_not_reattached(frames, tmp_path, slurm_env):  # noqa: F811
    """job.json names a job id that SLURM now holds for another job (as after a controller
    reset): the launcher sees the other name, says so, and submits this run afresh."""
    other = (
        subprocess.run(
            [
                "sbatch",
                "--parsable",
                "-J",
                "someone-else",
                "-t",
                "5",
                "-A",
                slurm_env["TWBYOL_SLURM_ACCOUNT"],
                "-p",
                slurm_env["TWBYOL_SLURM_PARTITION"],
                "-o",
                "/dev/null",
                "--wrap",
                "sleep 120",
            ],
            capture_output=True,
            text=True,
            env=slurm_env,
            cwd=tmp_path,
            check=True,
        )
        .stdout.strip()
        .split(";")[0]
    )
    try:
        out = tmp_path / "run"
        out.mkdir()
        (out / "job.json").write_text(
            json.dumps({"executor": "slurm", "job_id": other, "ntasks": 2})
        )
        run_id = f"reused-{uuid.uuid4().hex[:8]}"
        cmd = pretrain_cmd(run_config(frames, out, run_id, 64), tmp_path)
        again = subprocess.run(
            cmd,
            env=slurm_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert again.returncode == 0, again.stderr[-6000:]
        assert (
            f"job.json names SLURM job {other}, but it is named 'someone-else', not "
            f"'twbyol-{run_id}-s0': not this run's job; submitting anew"
        ) in again.stderr
        assert "submitted slurm job" in again.stderr and "reattaching" not in again.stderr
        assert json.loads((out / "job.json").read_text())["job_id"] != other
        assert len(metrics(out)) == 3
        assert squeue_state(other, slurm_env) in ("RUNNING", "PENDING")  # left alone
    finally:
        subprocess.run(["scancel", other], env=slurm_env, check=False)


# ----------------------------------------------------------------------------- (3)
FAILING = textwrap.dedent(
    """
    rule boom:
        output: "boom.txt"
        shell: "echo drill-stderr-marker-$SLURM_JOB_ID >&2; exit 1"
    """
)


class FailingWorkflow:
    """`snakemake --profile profiles/slurm` of a one-rule workflow whose job exits 1.

    Started in the background by drill (1) when that runs first, as soon as the drill's job
    is requeued: the run takes ~1 min, nearly all of it Snakemake sleeping between sacct
    polls (and, at shutdown, joining its status thread mid-sleep), so it overlaps the drill
    instead of adding to the file's run time. Started any earlier, its 1-CPU jobs would wait
    behind the drill's two 2-CPU jobs (the node has 4 CPUs), and every sacct poll that finds
    nothing finished adds 10 s to the plugin's poll interval."""

    def __init__(self, wd: Path) -> None:
        self.wd = wd
        self.proc: subprocess.Popen | None = None

    def start(self, env: dict) -> None:
        if self.proc is not None:
            return
        self.since = now()
        (self.wd / "Snakefile").write_text(FAILING)
        self.log = self.wd / "snakemake.out"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snakemake",
                "--profile",
                str(PROFILE),
                "--cores",
                "1",
                "-d",
                str(self.wd),
                "-s",
                str(self.wd / "Snakefile"),
            ],
            env=env,
            cwd=self.wd,
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def result(self, env: dict, timeout: float = 300) -> tuple[int, str]:
        self.start(env)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(
                f"snakemake still running after {timeout}s:\n{self.log.read_text()[-4000:]}"
            )
        return rc, self.log.read_text()


@pytest.fixture(scope="module")
def failing_workflow(tmp_path_factory):
    wf = FailingWorkflow(tmp_path_factory.mktemp("failing_workflow"))
    yield wf
    if wf.proc is not None and wf.proc.poll() is None:  # e.g. only drill (1) was selected
        wf.proc.terminate()
        wf.proc.wait(timeout=60)


def test_failed_rule_is_retried_then_reported_with_its_log(failing_workflow, slurm_env):
    rc, output = failing_workflow.result(slurm_env)
    wd = failing_workflow.wd
    assert rc != 0, output[-4000:]

    # two SLURM jobs (attempt 1 + the profile's one retry), both failed, under the plugin's
    # sbatch --comment rule_<name>
    rows = [
        r
        for r in sacct_since(failing_workflow.since, "JobID,State,Comment,WorkDir", slurm_env)
        if r[3] == str(wd)
    ]
    assert [(r[1], r[2]) for r in rows] == [("FAILED", "rule_boom")] * 2, rows
    job_ids = [r[0] for r in rows]
    assert "Trying to restart job" in output and f"SLURM-job '{job_ids[-1]}' failed" in output

    # Snakemake names each failed job's log file; it exists and holds the rule's stderr
    logs = re.findall(r"^\s*log: (\S+/logs/slurm/rule_boom/(\d+)\.log)", output, re.MULTILINE)
    assert sorted({j for _, j in logs}) == sorted(job_ids), output[-4000:]
    for path, j in logs:
        assert Path(path).parent == wd / "logs" / "slurm" / "rule_boom"
        assert f"drill-stderr-marker-{j}" in Path(path).read_text()
