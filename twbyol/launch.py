"""Submit one pretraining run with submitit and wait for it (the `pretrain` stage).

    twbyol pretrain --config run.json --resources res.json --executor slurm

executor `slurm`: one SLURM job of `nodes` x `gpus_per_node` tasks (one process per GPU),
submitted inside `submitit.helpers.clean_env()` so that a launcher that itself runs inside a
SLURM allocation does not leak its SLURM_* variables into the new job. The job id is kept in
`{out_dir}/job.json`: if the launcher dies while the job runs (Snakemake blocks on it from the
login node), the rerun reattaches to the same job instead of submitting a duplicate, and
collects its result if it already finished; it first checks that the SLURM job of that id
is this run's (its name and working folder), since SLURM reuses ids after a controller reset.
A preempted or timed-out job is signalled by SLURM (USR2, `signal_delay_s` ahead), checkpoints
at the loop's next sync point (twbyol.train.Preemption; every `sync_every` steps), is requeued
by submitit (`Trainer.checkpoint`) and resumes from `checkpoint.pt` at that step.
executor `local`: the same callable under submitit's LocalExecutor (no SLURM; `--cores 1`).
executor `debug`: in this process, for pdb.
`random_init` runs in this process under every executor: it trains nothing, and a scheduler
round-trip would only add minutes of queueing to write an initialisation.
"""

from __future__ import annotations

import argparse
import contextlib
import io as _io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import submitit

from twbyol import io, slurm

EXECUTORS = ("slurm", "local", "debug")
# SLURM states in which an existing job is still worth waiting for / collecting
LIVE_STATES = {
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "CONFIGURING",
    "COMPLETING",
    "RESIZING",
    "SUSPENDED",
    "PREEMPTED",
    "COMPLETED",
    "UNKNOWN",
}


class Trainer:
    """The submitted callable. `checkpoint` is what submitit calls on preemption or timeout:
    it resubmits the same run, which resumes from its last checkpoint.pt."""

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg

    def __call__(self) -> dict:
        # A task of an earlier attempt of this job (before a requeue) may have left a result
        # file: e.g. rank 1 failing with "connection closed by peer" when rank 0 exits on
        # USR2. The launcher takes the job as done once every task has a result file, and
        # would read that stale error as this attempt's result.
        submitit.JobEnvironment().paths.result_pickle.unlink(missing_ok=True)
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        # deferred: torch and the training loop only in the job; the launcher (a local
        # rule on the login node) submits it without them
        from twbyol.train import Preemption, TrainConfig, train

        torch_threads = os.environ.get("SLURM_CPUS_PER_TASK")
        if torch_threads:  # don't oversubscribe the cores SLURM gave this task
            import torch  # deferred: as twbyol.train above

            torch.set_num_threads(int(torch_threads))
        # submitit's USR2 handler (checkpoint + requeue), deferred to the loop's next sync
        # point: the requeued job resumes at the step it checkpointed
        usr = submitit.JobEnvironment._usr_sig()
        preemption = Preemption(usr).install() if callable(signal.getsignal(usr)) else None
        return train(TrainConfig.from_dict(self.cfg), preemption=preemption)

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        return submitit.helpers.DelayedSubmission(Trainer(self.cfg))


def executor_parameters(executor: str, res: dict, name: str) -> dict:
    """submitit parameters from an experiment's `resources` block.

    On SLURM: gpu_type T asks for --gpus-per-node=T:N rather than N (one option for the count
    with or without a type; --gres=gpu:T:N would be the same request), constraint -> -C,
    qos -> --qos, setup -> shell lines of the sbatch script before its srun (e.g.
    `module load cuda`), sbatch_extra -> further #SBATCH options (twbyol.slurm refuses those
    that the other keys set).
    """
    gpus = int(res.get("gpus_per_node", 0))
    params = dict(
        name=name,
        timeout_min=int(res.get("timeout_min", 60)),
        nodes=int(res.get("nodes", 1)),
        cpus_per_task=int(res.get("cpus_per_task", 1)),
    )
    if executor == "slurm":
        slurm.check_gpu_type(res, "gpus_per_node", "resources")
        slurm.check_sbatch_extra(res.get("sbatch_extra", {}), slurm.SUBMITIT_OPTIONS, "resources")
        params.update(
            tasks_per_node=max(gpus, 1),
            gpus_per_node=gpus,
            # SIGUSR2 this long before the time limit: time to checkpoint + requeue
            slurm_signal_delay_s=int(res.get("signal_delay_s", 120)),
        )
        if res.get("gpu_type"):  # checked above: gpus_per_node >= 1
            # submitit's generic gpus_per_node is an int; its slurm_ form passes the string
            params["slurm_gpus_per_node"] = f"{res['gpu_type']}:{params.pop('gpus_per_node')}"
        if res.get("mem_gb"):
            params["mem_gb"] = float(res["mem_gb"])
        partition = res.get("partition") or os.environ.get("TWBYOL_SLURM_PARTITION")
        account = res.get("account") or os.environ.get("TWBYOL_SLURM_ACCOUNT")
        if partition:
            params["slurm_partition"] = partition
        if account:
            params["slurm_account"] = account
        for key, param in (
            ("constraint", "slurm_constraint"),
            ("qos", "slurm_qos"),
            ("setup", "slurm_setup"),
            ("sbatch_extra", "slurm_additional_parameters"),
        ):
            if res.get(key):
                params[param] = res[key]
    else:  # local: one node of this machine; no GPU ids to hand out on a CPU machine
        params.update(nodes=1, tasks_per_node=int(res.get("local_tasks", 1)), gpus_per_node=0)
        params.pop("cpus_per_task")
    return params


def slurm_job_identity(job_id: str) -> tuple[str, str] | None:
    """(name, working folder) of SLURM job `job_id` as squeue (live jobs) or sacct (ended
    ones) reports it; None when neither knows the id."""
    for cmd in (
        ["squeue", "-h", "-j", job_id, "-o", "%j|%Z"],
        ["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "JobName,WorkDir"],
    ):
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=60, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        rows = [line.split("|") for line in out.splitlines() if line.count("|") == 1]
        if rows:
            return rows[-1][0].strip(), rows[-1][1].strip()
    return None


def _not_this_run(job_id: str, name: str) -> str:
    """Why SLURM job `job_id` is not this run's ('' when it is): SLURM reuses job ids (after
    a controller reset, or once its id space wraps), so job.json's id alone proves nothing."""
    ident = slurm_job_identity(job_id)
    if ident is None:
        return "neither squeue nor sacct knows it"
    got_name, workdir = ident
    if got_name != name:
        return f"it is named {got_name!r}, not {name!r}"
    if os.path.realpath(workdir) != os.path.realpath(os.getcwd()):
        return f"it runs in {workdir}, not in {os.getcwd()}"
    return ""


def _reattach(folder: Path, job_file: Path, ntasks: int, name: str) -> submitit.Job | None:
    if not job_file.exists():
        return None
    info = io.read_json(job_file)
    if info.get("executor") != "slurm":
        return None
    why = _not_this_run(str(info["job_id"]), name)
    if why:
        print(
            f"job.json names SLURM job {info['job_id']}, but {why}: not this run's job; "
            f"submitting anew (resumes from checkpoint)",
            file=sys.stderr,
            flush=True,
        )
        return None
    job = submitit.SlurmJob(folder=folder, job_id=str(info["job_id"]), tasks=tuple(range(ntasks)))
    state = job.state.split()[0].upper()
    if state in LIVE_STATES:
        print(f"reattaching to SLURM job {job.job_id} ({state})", file=sys.stderr, flush=True)
        return job
    print(
        f"previous SLURM job {job.job_id} ended {state}; submitting anew (resumes from checkpoint)",
        file=sys.stderr,
        flush=True,
    )
    return None


def launch(cfg: dict, resources: dict, executor: str) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"launcher: unknown executor {executor!r}; expected one of {EXECUTORS}")
    out = Path(cfg["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    if executor == "debug" or cfg.get("method") == "random_init":
        _run_here(cfg, out)
        return
    io.write_json(out / "config.json", cfg)  # the resolved run config, beside its results
    folder = out / "submitit"
    job_file = out / "job.json"
    params = executor_parameters(executor, resources, name=f"twbyol-{cfg['run_id']}-s{cfg['seed']}")
    ntasks = params["nodes"] * params["tasks_per_node"]
    if executor == "local":
        _wait_for_live_local_job(folder, job_file)
    job = _reattach(folder, job_file, ntasks, params["name"]) if executor == "slurm" else None
    if job is None:
        # requeues after a timeout (preemptions requeue without limit)
        extra = (
            {"slurm_max_num_timeout": int(resources.get("max_requeues", 3))}
            if executor == "slurm"
            else {}
        )
        ex = submitit.AutoExecutor(folder=folder, cluster=executor, **extra)
        ex.update_parameters(**params)
        with submitit.helpers.clean_env():
            job = ex.submit(Trainer(cfg))
        io.write_json(
            job_file,
            {"executor": executor, "job_id": job.job_id, "ntasks": ntasks, "parameters": params},
        )
        print(f"submitted {executor} job {job.job_id}: {params}", file=sys.stderr, flush=True)
    _link_logs(job, out)
    try:
        job.results()  # every task's result; raises if any task failed
    except Exception as e:
        raise RuntimeError(
            f"pretraining job {job.job_id} for {cfg['run_id']} seed {cfg['seed']} failed; "
            f"logs: {job.paths.stdout} and {job.paths.stderr}\n{e}"
        ) from None
    finally:
        _collect_logs(job, out)


def live_local_job(folder: Path, job_file: Path) -> psutil.Process | None:
    """The controller process of this run's local job, when an earlier launcher's job is still
    running: the process of job.json's id, if it is submitit's local controller of `folder`
    (a live pid alone could be any process that reused the number)."""
    if not job_file.exists():
        return None
    info = io.read_json(job_file)
    if info.get("executor") != "local":
        return None
    try:
        proc = psutil.Process(int(info["job_id"]))
        cmd, cwd = proc.cmdline(), proc.cwd()
    except (psutil.Error, ValueError, KeyError):
        return None
    if "submitit.local._local" not in cmd or not cmd:
        return None
    return proc if (Path(cwd) / cmd[-1]).resolve() == folder.resolve() else None


def _wait_for_live_local_job(folder: Path, job_file: Path) -> None:
    """A launcher killed with its Snakemake (kill -9) leaves its local job training: the
    rerun waits for that job to end, then resumes from its checkpoint (a finished run resumes
    at its last step and only rewrites its outputs), so one run never trains twice at once."""
    proc = live_local_job(folder, job_file)
    if proc is None:
        return
    print(
        f"local job {proc.pid} of this run (an earlier launcher's) is still running: waiting "
        f"for it to end, then resuming from its checkpoint",
        file=sys.stderr,
        flush=True,
    )
    try:
        proc.wait()
    except psutil.NoSuchProcess:
        pass


def _link_logs(job: submitit.Job, out: Path) -> None:
    """The run's stdout.log / stderr.log, while its job runs: links to rank 0's submitit logs
    (`tail -F results/.../stdout.log` follows the progress lines from the job's start; the
    links dangle until the job starts). Replaced by copies when the job ends."""
    for src, name in ((job.paths.stdout, "stdout.log"), (job.paths.stderr, "stderr.log")):
        link = out / f".{name}.link"
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(Path(src).resolve(), out.resolve()))
        os.replace(link, out / name)


def _collect_logs(job: submitit.Job, out: Path) -> None:
    """Rank 0's submitit logs become the run's stdout.log / stderr.log (copies, replacing the
    links of _link_logs)."""
    for src, name in ((job.paths.stdout, "stdout.log"), (job.paths.stderr, "stderr.log")):
        with io.atomic_path(out / name) as tmp:
            if Path(src).exists():
                shutil.copyfile(src, tmp)
            else:
                tmp.write_text("")


def _run_here(cfg: dict, out: Path) -> None:
    from twbyol.train import TrainConfig, train  # deferred: torch (see Trainer.__call__)

    # the logs written as the run goes (a live stdout.log, as a submitted job's)
    with (
        open(out / "stdout.log", "w", buffering=1) as stdout,
        open(out / "stderr.log", "w", buffering=1) as stderr,
        contextlib.redirect_stdout(_Tee(sys.stdout, stdout)),
        contextlib.redirect_stderr(_Tee(sys.stderr, stderr)),
    ):
        train(TrainConfig.from_dict(cfg))


class _Tee(_io.TextIOBase):
    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self) -> None:
        for st in self.streams:
            st.flush()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--config",
        required=True,
        help="the run's resolved training config (inline JSON or a JSON file)",
    )
    ap.add_argument(
        "--resources",
        required=True,
        help="the experiment's resources block (inline JSON or a JSON file)",
    )
    ap.add_argument("--executor", choices=EXECUTORS, default="local")
    args = ap.parse_args(argv)
    launch(io.json_arg(args.config), io.json_arg(args.resources), args.executor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
