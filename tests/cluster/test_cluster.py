"""The local SLURM of tests/cluster/up.sh behaves like a GPU cluster.

(a) sbatch --gpus-per-node is really scheduled and accounted (sacct AllocTRES);
(b) submitit runs a 2-task DDP job (gloo) through sbatch/srun;
(c) `snakemake --profile profiles/slurm` runs a workflow as SLURM jobs;
(d) a checkpointable submitit job is requeued on SIGUSR2 and resumes;
(e) the options of an experiment's `resources` block (twbyol.launch.executor_parameters)
    reach the job: a typed GPU request, QOS, setup lines, extra sbatch options.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle
import pytest
import submitit

from twbyol.launch import executor_parameters

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"
TERMINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
}


def sacct(job_id: str | int, fields: str, env=None) -> list[str]:
    """`sacct -X` (allocation line only) for one job: the requested fields, or []."""
    out = subprocess.run(
        ["sacct", "-j", str(job_id), "-X", "-n", "-P", "-o", fields],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    return out.splitlines()[0].split("|") if out else []


def wait_for_job(job_id: str | int, env=None, timeout: float = 120) -> str:
    """Poll sacct until the job is in a terminal state; return that state."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        row = sacct(job_id, "State", env)
        state = row[0].split()[0] if row else ""  # "CANCELLED by 0" -> "CANCELLED"
        if state in TERMINAL:
            return state
        time.sleep(0.3)
    pytest.fail(f"job {job_id} not finished after {timeout}s (state {state!r})")


def sacct_record(job_id: str | int, fields: str, env=None, timeout: float = 30) -> list[str]:
    """sacct fields of a finished job, polled until none is empty or "Unknown": slurmdbd may
    fill some (AllocTRES, and Partition: seen empty in CI; QOS: "Unknown" here) a moment after
    sacct reports the end."""
    deadline = time.monotonic() + timeout
    row: list[str] = []
    while time.monotonic() < deadline:
        row = sacct(job_id, fields, env)
        if row and all(v and v != "Unknown" for v in row):
            return row
        time.sleep(0.3)
    pytest.fail(f"job {job_id}: sacct {fields} still {row!r} after {timeout}s")


# ----------------------------------------------------------------------------- (a)
def test_sbatch_gpus_are_scheduled_and_accounted(slurm_env, tmp_path):
    out = tmp_path / "job.out"
    sub = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--gpus-per-node=2",
            "--ntasks=1",
            "-t",
            "5",
            "-A",
            slurm_env["TWBYOL_SLURM_ACCOUNT"],
            "-p",
            slurm_env["TWBYOL_SLURM_PARTITION"],
            "-o",
            str(out),
            "--wrap",
            "echo CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=slurm_env,
        cwd=tmp_path,
    )
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().split(";")[0]
    assert wait_for_job(job_id, slurm_env) == "COMPLETED", out.read_text()
    (tres,) = sacct_record(job_id, "AllocTRES", slurm_env)
    assert "gres/gpu=2" in tres.split(","), tres
    # With character devices as GRES files (up.sh mknod's them) slurmd exports the
    # allocated GPU indices, as on a real GPU node.
    assert out.read_text().strip() == "CUDA_VISIBLE_DEVICES=0,1"


# ----------------------------------------------------------------------------- (b)
def ddp_allreduce_rank() -> int:
    """Runs in each of the job's tasks: gloo process group, all-reduce of the rank."""
    import submitit
    import torch
    import torch.distributed as dist

    env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    dist.init_process_group("gloo")  # env:// from MASTER_ADDR/PORT, RANK, WORLD_SIZE
    try:
        assert dist.get_world_size() == env.world_size == 2
        t = torch.tensor([env.rank])
        dist.all_reduce(t)
        return int(t.item())
    finally:
        dist.destroy_process_group()


def test_submitit_ddp_job(slurm_env, tmp_path, monkeypatch):
    # Jobs unpickle the function: this test module is not importable in the job
    # (pytest put tests/cluster on sys.path, the job's python does not), so ship
    # its functions by value. Package code (twbyol.*) needs no such thing.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    for k, v in slurm_env.items():
        monkeypatch.setenv(k, v)

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(
        name="twbyol-ddp-test",
        nodes=1,
        tasks_per_node=2,
        gpus_per_node=2,
        cpus_per_task=1,
        mem_gb=2,
        timeout_min=5,
        slurm_partition=slurm_env["TWBYOL_SLURM_PARTITION"],
        slurm_account=slurm_env["TWBYOL_SLURM_ACCOUNT"],  # sbatch --account
    )
    with submitit.helpers.clean_env():  # drop SLURM_* of an enclosing job, if any
        job = executor.submit(ddp_allreduce_rank)
    try:
        results = job.results()  # blocks; raises with the job's stderr on failure
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert results == [1, 1]  # 0 + 1 on both ranks
    assert wait_for_job(job.job_id, slurm_env) == "COMPLETED"
    account, partition, tres = sacct_record(job.job_id, "Account,Partition,AllocTRES", slurm_env)
    assert [account, partition] == [
        slurm_env["TWBYOL_SLURM_ACCOUNT"],
        slurm_env["TWBYOL_SLURM_PARTITION"],
    ]
    assert "gres/gpu=2" in tres.split(","), tres


# ----------------------------------------------------------------------------- (c)
SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: "b.txt"
        localrule: True

    rule a:
        output: "a.txt"
        shell: "echo ${{SLURM_JOB_ID:-none}} $(command -v python) > {output}"

    rule b:
        input: "a.txt"
        output: "b.txt"
        shell: "echo ${{SLURM_JOB_ID:-none}} > {output}"
    """
)


def test_snakemake_profile_submits_to_slurm(slurm_env, tmp_path):
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(SNAKEFILE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            str(PROFILE),
            "--cores",
            "1",
            "-d",
            str(tmp_path),
            "-s",
            str(snakefile),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=slurm_env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]

    job_a, python_a = (tmp_path / "a.txt").read_text().split()
    job_b = (tmp_path / "b.txt").read_text().strip()
    assert job_a.isdigit() and job_b.isdigit() and job_a != job_b
    # sbatch --export=ALL: the venv's bin dir on the submitter's PATH reaches the job.
    assert Path(python_a).parent == Path(sys.executable).parent
    for job_id, rule in ((job_a, "a"), (job_b, "b")):
        assert wait_for_job(job_id, slurm_env) == "COMPLETED"
        # The plugin's sbatch --comment is rule_<name> (kept: AccountingStoreFlags).
        row = sacct_record(job_id, "Account,Partition,Comment", slurm_env)
        assert row == [
            slurm_env["TWBYOL_SLURM_ACCOUNT"],
            slurm_env["TWBYOL_SLURM_PARTITION"],
            f"rule_{rule}",
        ], row


# ----------------------------------------------------------------------------- (d)
class CountTo(submitit.helpers.Checkpointable):
    """Counts to `n` in a state file, resuming where a previous run stopped.

    Checkpointable: on SIGUSR2 (timeout/preemption warning) submitit pickles the
    callable and requeues the job with `scontrol requeue`.
    """

    def __call__(self, state_file: str, n: int = 20) -> tuple[int, int]:
        state = Path(state_file)
        start = int(state.read_text()) if state.exists() else 0
        for i in range(start, n):
            time.sleep(0.25)
            state.write_text(str(i + 1))
        return start, int(os.environ.get("SLURM_RESTART_COUNT", "0"))


def test_submitit_checkpoint_requeue(slurm_env, tmp_path, monkeypatch):
    """USR2 -> submitit checkpoint -> scontrol requeue -> the job resumes."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    for k, v in slurm_env.items():
        monkeypatch.setenv(k, v)
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(
        nodes=1,
        tasks_per_node=1,
        mem_gb=1,
        timeout_min=5,
        slurm_partition=slurm_env["TWBYOL_SLURM_PARTITION"],
        slurm_account=slurm_env["TWBYOL_SLURM_ACCOUNT"],
    )
    state = tmp_path / "count"
    try:
        with submitit.helpers.clean_env():
            job = executor.submit(CountTo(), str(state))
        # Signal only once the callable runs (submitit's handler is installed by then).
        deadline = time.monotonic() + 60
        while not (state.exists() and state.read_text() and int(state.read_text()) >= 4):
            assert time.monotonic() < deadline, "job did not start counting"
            time.sleep(0.2)
        # What SLURM sends before the time limit (sbatch --signal=USR2@90 by submitit).
        subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True, env=slurm_env)
        start, restarts = job.result()
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert restarts == 1 and 4 <= start < 20, (start, restarts)
    assert state.read_text() == "20"
    # job.result() returns once the result pickle exists, which can be before SLURM (and
    # slurmdbd) record the job's end: seen in CI as ['REQUEUED', 'RUNNING']
    assert wait_for_job(job.job_id, slurm_env) == "COMPLETED"
    states = subprocess.run(
        ["sacct", "-j", job.job_id, "-X", "-D", "-n", "-P", "-o", "State"],
        capture_output=True,
        text=True,
        check=True,
        env=slurm_env,
    ).stdout.split()
    assert states == ["REQUEUED", "COMPLETED"], states


# ----------------------------------------------------------------------------- (e)
def setup_marker() -> str:
    """Runs in each task: what the job's setup lines exported."""
    return os.environ.get("TWBYOL_SETUP", "unset")


def test_submitit_job_gets_every_option_of_the_resources_block(slurm_env, tmp_path, monkeypatch):
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    for k, v in slurm_env.items():  # partition and account come from the profile's variables
        monkeypatch.setenv(k, v)
    # up.sh declares the node's GPUs as gpu:a100:4
    res = {
        "nodes": 1,
        "gpus_per_node": 2,
        "gpu_type": "a100",
        "cpus_per_task": 1,
        "mem_gb": 1,
        "timeout_min": 5,
        "qos": "normal",
        "setup": ["export TWBYOL_SETUP=ran"],
        "sbatch_extra": {"comment": "twbyol-options"},
    }

    def submit(resources: dict, folder: str) -> submitit.Job:
        executor = submitit.AutoExecutor(folder=tmp_path / folder, cluster="slurm")
        executor.update_parameters(**executor_parameters("slurm", resources, "twbyol-options-test"))
        with submitit.helpers.clean_env():
            return executor.submit(setup_marker)

    try:
        job = submit(res, "typed")
        assert job.results() == ["ran", "ran"]  # both tasks started after the setup lines
        # a GPU type the cluster lacks is refused at submission: the type really is asked for
        with pytest.raises(submitit.core.utils.FailedJobError, match="node configuration"):
            submit({**res, "gpu_type": "h100"}, "absent")
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert wait_for_job(job.job_id, slurm_env) == "COMPLETED"
    qos, comment, tres = sacct_record(job.job_id, "QOS,Comment,AllocTRES", slurm_env)
    assert (qos, comment) == ("normal", "twbyol-options")
    assert "gres/gpu=2" in tres.split(","), tres
    # slurmctld still holds the finished job (MinJobAge): the request as submitted
    show = subprocess.run(
        ["scontrol", "show", "job", job.job_id],
        capture_output=True,
        text=True,
        check=True,
        env=slurm_env,
    ).stdout
    assert "gpu:a100:2" in show, show
