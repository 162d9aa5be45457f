"""The whole smoke study under the local SLURM: `snakemake --profile profiles/slurm smoke`.

CPU rules go through snakemake-executor-plugin-slurm (sbatch/sacct); pretraining goes
through submitit's slurm executor as one job of 2 tasks with 2 GRES GPUs, whose 2 processes
train with DDP on gloo. Each stage's job has the shape the experiment's `stage_resources`
give it (embed: a GRES GPU) and the profile's default-resources for the rest. Asserted from
sacct and from the run's own records.
"""

import json
import subprocess

import pytest

from tests.test_workflow import copy_workflow, planned, snakemake, write_override

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def sacct(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["sacct", "-a", "-n", "-P", "-X", *args], capture_output=True, text=True, check=True
    ).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def test_smoke_study_under_slurm(slurm_env, tmp_path):
    wd = copy_workflow(tmp_path)
    # smoke's own stage_resources give embed a GPU, 2 GiB and 20 min; here evaluate also gets
    # 2 CPUs (its threads) and 30 min; every other stage keeps the profile's defaults
    override = write_override(
        wd,
        {
            "experiments": {
                "smoke": {"stage_resources": {"evaluate": {"cpus_per_task": 2, "timeout_min": 30}}}
            }
        },
    )
    start = subprocess.run(
        ["date", "+%Y-%m-%dT%H:%M:%S"], capture_output=True, text=True
    ).stdout.strip()
    snakemake(
        wd,
        "--profile",
        "profiles/slurm",
        "smoke",
        "--configfile",
        override,
        env=slurm_env,
        timeout=2400,
    )
    res = wd / "results" / "smoke"
    assert (res / "report.md").stat().st_size > 0

    rows = sacct(
        "-S",
        start,
        "-o",
        "JobID,JobName,State,Account,AllocTRES,Comment,WorkDir,ReqMem,Timelimit,AllocCPUS",
    )
    mine = [r for r in rows if r[6].startswith(str(wd))]
    # every CPU rule ran as a SLURM job under the workflow's account
    rule_jobs = [r for r in mine if r[5].startswith("rule_")]
    ran = {r[5].split("_wildcards")[0] for r in rule_jobs}
    assert {
        "rule_synth",
        "rule_read_dataset",
        "rule_frames",
        "rule_embed",
        "rule_evaluate",
        "rule_stats",
        "rule_figures",
        "rule_report",
    } <= ran, ran
    assert all(r[2] == "COMPLETED" and r[3] == "twbyol" for r in rule_jobs), rule_jobs

    # the experiment's stage_resources win over the profile's default-resources (4000 MB,
    # 60 min), which fill in what they leave out; only embed has a GPU
    for r in rule_jobs:
        rule = r[5].split("_wildcards")[0]
        gpus = "gres/gpu=1" in r[4].split(",")
        shape = {
            "rule_embed": (True, "2G", "00:20:00", "1"),
            "rule_evaluate": (False, "4000M", "00:30:00", "2"),
            "rule_synth": (False, "4000M", "01:00:00", "2"),
        }.get(rule, (False, "4000M", "01:00:00", "1"))
        assert (gpus, *r[7:10]) == shape, r
    print("embed job:", next(r for r in rule_jobs if r[5].startswith("rule_embed")))

    # pretraining: one submitit job per trained run x seed, each given its 2 GPUs
    pre = [r for r in rows if r[1].startswith("twbyol-") and str(wd) in (r[6] or str(wd))]
    trained = [f"twbyol-{run}-s{s}" for run in ("byol_uniform", "twbyol_tau30") for s in (0, 1, 2)]
    by_name = {r[1]: r for r in pre}
    for name in trained:
        assert name in by_name, (name, sorted(by_name))
        assert by_name[name][2] == "COMPLETED" and "gres/gpu=2" in by_name[name][4], by_name[name]

    for run in ("byol_uniform", "twbyol_tau30"):
        for s in (0, 1, 2):
            d = res / "pretrain" / run / f"seed{s}"
            job = json.loads((d / "job.json").read_text())
            assert job["executor"] == "slurm" and job["ntasks"] == 2
            eff = json.loads((d / "efficiency.json").read_text())
            assert eff["world_size"] == 2  # two processes really trained together (gloo)
            assert "Job completed successfully" in (d / "stdout.log").read_text()

    # a rerun under the profile has nothing to do, also without the override: resources are
    # not params, so a job's shape does not invalidate its outputs
    assert planned(wd, "smoke", extra=("--profile", "profiles/slurm")) == {}
