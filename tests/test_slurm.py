"""SLURM options of an experiment, without a cluster: the submitit parameters of the pretraining
job (twbyol.launch.executor_parameters) and the sbatch script submitit writes from them, and
the SLURM plugin's resources of the other stages' jobs (twbyol.slurm.plugin_resources) and the
sbatch command the installed plugin builds from them. Under the local SLURM:
tests/cluster/test_cluster.py and test_workflow_slurm.py."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import submitit
import yaml

from twbyol import slurm
from twbyol.launch import executor_parameters

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["experiments"]
# a typical 4-GPU-node cluster (docs/cluster.md, "A worked example")
CLUSTER = {
    "nodes": 1,
    "gpus_per_node": 4,
    "cpus_per_task": 8,
    "mem_gb": 200,
    "timeout_min": 1440,
    "partition": "gpu",
    "account": "lab",
    "max_requeues": 5,
    "signal_delay_s": 300,
    "gpu_type": "a100",
    "constraint": "a100_80gb",
    "qos": "high",
    "setup": ["module load cuda/12.4", "export NCCL_DEBUG=WARN"],
    "sbatch_extra": {"mail-type": "END,FAIL", "mail_user": "me@lab.org", "exclusive": True},
}


@pytest.fixture(autouse=True)
def no_profile_env(monkeypatch):
    for var in ("TWBYOL_SLURM_PARTITION", "TWBYOL_SLURM_ACCOUNT"):
        monkeypatch.delenv(var, raising=False)


# ------------------------------------------------------------- submitit (pretraining)
def test_executor_parameters_defaults():
    assert executor_parameters("slurm", {}, "job") == {
        "name": "job",
        "timeout_min": 60,
        "nodes": 1,
        "cpus_per_task": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 0,
        "slurm_signal_delay_s": 120,
    }
    # the smoke experiment's block: one task per GPU, memory, nothing cluster-specific
    assert executor_parameters("slurm", EXPERIMENTS["smoke"]["resources"], "job") == {
        "name": "job",
        "timeout_min": 20,
        "nodes": 1,
        "cpus_per_task": 1,
        "tasks_per_node": 2,
        "gpus_per_node": 2,
        "slurm_signal_delay_s": 120,
        "mem_gb": 4.0,
    }


def test_executor_parameters_partition_and_account_fall_back_to_the_profile_env(monkeypatch):
    monkeypatch.setenv("TWBYOL_SLURM_PARTITION", "envpart")
    monkeypatch.setenv("TWBYOL_SLURM_ACCOUNT", "envacct")
    p = executor_parameters("slurm", {}, "job")
    assert (p["slurm_partition"], p["slurm_account"]) == ("envpart", "envacct")
    p = executor_parameters("slurm", {"partition": "gpu", "account": "lab"}, "job")
    assert (p["slurm_partition"], p["slurm_account"]) == ("gpu", "lab")


@pytest.mark.parametrize(
    "key, value, param, expected",
    [
        ("gpu_type", "a100", "slurm_gpus_per_node", "a100:4"),
        ("constraint", "a100_80gb", "slurm_constraint", "a100_80gb"),
        ("qos", "high", "slurm_qos", "high"),
        ("setup", ["module load cuda/12.4"], "slurm_setup", ["module load cuda/12.4"]),
        ("sbatch_extra", {"mail-type": "END"}, "slurm_additional_parameters", {"mail-type": "END"}),
    ],
)
def test_executor_parameters_each_option(key, value, param, expected):
    base = {"gpus_per_node": 4}
    p = executor_parameters("slurm", {**base, key: value}, "job")
    assert p[param] == expected
    plain = executor_parameters("slurm", base, "job")
    extra = set(p) - set(plain)
    assert extra == {param}
    if key == "gpu_type":  # the typed count replaces the plain one
        assert set(plain) - set(p) == {"gpus_per_node"}
    else:
        assert set(plain) <= set(p)


def test_local_executor_ignores_the_slurm_options():
    p = executor_parameters("local", CLUSTER, "job")
    assert p == {
        "name": "job",
        "timeout_min": 1440,
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 0,
    }


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"mem": "10G"}, "resources.sbatch_extra.mem: --mem is not allowed here (use mem_gb)"),
        ({"time": 5}, "use timeout_min"),
        ({"gres": "gpu:2"}, "use gpus_per_node and gpu_type"),
        ({"gpus_per_node": 2}, "sbatch_extra.gpus_per_node: --gpus-per-node"),
        ({"output": "x.log"}, "set by submitit"),
    ],
)
def test_options_set_elsewhere_are_refused_in_sbatch_extra(extra, message):
    with pytest.raises(ValueError) as e:
        executor_parameters("slurm", {"gpus_per_node": 1, "sbatch_extra": extra}, "job")
    assert message in str(e.value)


def test_gpu_type_without_gpus_is_refused():
    with pytest.raises(ValueError, match="resources.gpu_type: 'a100' given but gpus_per_node is 0"):
        executor_parameters("slurm", {"gpu_type": "a100"}, "job")


def sbatch_script(params: dict, tmp_path: Path, monkeypatch) -> str:
    """The sbatch script submitit would submit for these parameters (nothing is submitted)."""
    monkeypatch.setattr(
        submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2)
    )  # no srun needed
    ex = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    ex.update_parameters(**params)
    return ex._executor._make_submission_file_text("python -u -m submitit.core._submit DIR", "uid")


def test_submitit_writes_every_option_into_the_sbatch_script(tmp_path, monkeypatch):
    text = sbatch_script(
        executor_parameters("slurm", CLUSTER, "twbyol-run-s0"), tmp_path, monkeypatch
    )
    lines = text.splitlines()
    for flag in (
        "--job-name=twbyol-run-s0",
        "--nodes=1",
        "--ntasks-per-node=4",
        "--cpus-per-task=8",
        "--gpus-per-node=a100:4",
        "--mem=200GB",
        "--time=1440",
        "--partition=gpu",
        "--account=lab",
        "--constraint=a100_80gb",
        "--qos=high",
        "--signal=USR2@300",
        "--mail-type=END,FAIL",
        "--mail-user=me@lab.org",
        "--exclusive",
    ):
        assert f"#SBATCH {flag}" in lines, (flag, text)
    assert sum(line.startswith("#SBATCH --gpus") or "--gres" in line for line in lines) == 1
    # setup lines run in the script, in order, before the srun that starts the tasks
    srun = next(i for i, line in enumerate(lines) if line.startswith("srun "))
    assert lines.index("module load cuda/12.4") < lines.index("export NCCL_DEBUG=WARN") < srun


def test_submitit_script_of_an_untyped_request(tmp_path, monkeypatch):
    text = sbatch_script(
        executor_parameters("slurm", EXPERIMENTS["mabe22"]["resources"], "j"), tmp_path, monkeypatch
    )
    assert "#SBATCH --gpus-per-node=4" in text.splitlines()
    assert not any(k in text for k in ("--constraint", "--qos", "# setup", "--partition"))


# ------------------------------------------------------------- plugin (other stages)
def test_plugin_resources_of_a_stage_entry():
    assert slurm.plugin_resources({}) == {}
    assert slurm.plugin_resources({"cpus_per_task": 8}) == {}  # the rule's threads instead
    assert slurm.plugin_resources(
        {
            "mem_gb": 2,
            "timeout_min": 20,
            "gpus": 1,
            "gpu_type": "a100",
            "partition": "gpu",
            "constraint": "a100_80gb",
            "qos": "high",
            "sbatch_extra": {"mail-type": "END", "exclusive": True, "comment": "two words"},
        }
    ) == {
        "mem_mb": 2048,
        "runtime": 20,
        "gpu": 1,
        "gpu_model": "a100",
        "slurm_partition": "gpu",
        "constraint": "a100_80gb",
        "qos": "high",
        "slurm_extra": "--mail-type=END --exclusive --comment='two words'",
    }


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            {"mem": "10G"},
            "stage_resources.embed.sbatch_extra.mem: --mem is not allowed here (use mem_gb)",
        ),
        ({"gpus": 1}, "use gpus and gpu_type"),
        ({"account": "x"}, "TWBYOL_SLURM_ACCOUNT"),
        ({"ntasks": 2}, "set by the Snakemake SLURM plugin"),
    ],
)
def test_check_experiment_refuses_stage_options_set_elsewhere(extra, message):
    exp = {"resources": {}, "stage_resources": {"embed": {"gpus": 1, "sbatch_extra": extra}}}
    with pytest.raises(ValueError) as e:
        slurm.check_experiment("config: experiments.x", exp)
    assert message in str(e.value)


def test_the_experiments_pass_the_checks():
    for name, exp in EXPERIMENTS.items():
        slurm.check_experiment(name, exp)


class _Resources(dict):
    __getattr__ = dict.__getitem__


def test_the_plugin_builds_sbatch_from_the_stage_resources():
    """The installed snakemake-executor-plugin-slurm's own submit-command code, on mabe22's
    embed stage: what it passes to sbatch, and to the srun that runs the rule in the job."""
    import snakemake_executor_plugin_slurm.submit_string as submit  # a declared dependency
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra
    from snakemake_executor_plugin_slurm_jobstep import get_gpu_setting

    entry = {
        **EXPERIMENTS["mabe22"]["stage_resources"]["embed"],
        "gpu_type": "a100",
        "constraint": "a100_80gb",
        "qos": "high",
        "sbatch_extra": {"mail-type": "END"},
    }
    job = SimpleNamespace(
        resources=_Resources(slurm.plugin_resources(entry)), threads=entry["cpus_per_task"]
    )  # stage_threads gives the rule these
    validate_slurm_extra(job)
    call = submit.get_submit_command(
        job,
        {
            "run_uuid": "u",
            "slurm_logfile": "log",
            "comment_str": "rule_embed",
            "account": "-A lab",
            "partition": "-p gpu",
            "workdir": "/wd",
        },
    ) + set_gres_string(job)
    mem_mb = int(entry["mem_gb"] * 1024)
    for part in (
        f"-t {entry['timeout_min']}",
        f"--mem {mem_mb}",
        "--cpus-per-task=8",
        "--gpus=a100:1",
        "-C a100_80gb",
        "--qos=high",
        "--mail-type=END",
    ):
        assert f" {part}" in call, (part, call)
    assert get_gpu_setting(job) == "--gpus=1"
