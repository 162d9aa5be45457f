"""SLURM options of an experiment, for its two kinds of jobs.

- Pretraining: one submitit job per run and seed, shaped by the experiment's `resources`
  block (`twbyol.launch.executor_parameters`).
- Every other stage: one job of snakemake-executor-plugin-slurm per rule instance, shaped by
  the experiment's `stage_resources` block (`plugin_resources`, merged with the profile's
  default-resources by twbyol.plan.stage_resources). Only what an entry says is set; the
  rest comes from the profile's `default-resources`.

Both blocks take `sbatch_extra`, further sbatch options as a mapping
(`{exclusive: true, mail-type: END}` -> `--exclusive --mail-type=END`). An option that
another key sets, or that the submitter sets itself, is refused before any job runs: in
submitit it would silently replace ours (its additional parameters win), and the plugin
would refuse it only when it submits the job, after the jobs before it have run.
"""

from __future__ import annotations

import shlex

# GPUs are asked for by count and type only: SLURM combines a second GPU option with the
# first, or refuses the pair.
_GPU_OPTIONS = ("gres", "gpus", "gpus-per-node", "gpus-per-task", "cpus-per-gpu", "mem-per-gpu")
# {sbatch option: why sbatch_extra may not give it}: those that submitit writes from
# executor_parameters or by itself ...
SUBMITIT_OPTIONS = {
    **{o: "set by submitit" for o in ("job-name", "output", "error", "open-mode", "wckey")},
    **{o: "use gpus_per_node and gpu_type" for o in _GPU_OPTIONS},
    **{
        o: f"use {k}"
        for o, k in (
            ("time", "timeout_min"),
            ("mem", "mem_gb"),
            ("cpus-per-task", "cpus_per_task"),
            ("nodes", "nodes"),
            ("ntasks-per-node", "gpus_per_node"),
            ("partition", "partition"),
            ("account", "account"),
            ("constraint", "constraint"),
            ("qos", "qos"),
            ("signal", "signal_delay_s"),
        )
    },
}
# ... and those that snakemake-executor-plugin-slurm 2.x sets, or refuses in slurm_extra
# (its validation.get_forbidden_slurm_options)
PLUGIN_OPTIONS = {
    **{
        o: "set by the Snakemake SLURM plugin"
        for o in (
            "job-name",
            "output",
            "error",
            "parsable",
            "export",
            "comment",
            "chdir",
            "workdir",
            "ntasks",
            "ntasks-per-gpu",
            "nodes",
            "clusters",
        )
    },
    "account": "set by the profile: TWBYOL_SLURM_ACCOUNT",
    **{o: "use gpus and gpu_type" for o in _GPU_OPTIONS},
    **{
        o: f"use {k}"
        for o, k in (
            ("time", "timeout_min"),
            ("mem", "mem_gb"),
            ("mem-per-cpu", "mem_gb"),
            ("cpus-per-task", "cpus_per_task"),
            ("partition", "partition"),
            ("constraint", "constraint"),
            ("qos", "qos"),
        )
    },
}


def sbatch_flags(extra: dict) -> list[str]:
    """sbatch_extra {option: value} -> ["--option=value", ...]; `true` is a bare flag, and
    my_option is --my-option (as submitit writes it)."""
    flags = []
    for key, value in extra.items():
        option = "--" + key.replace("_", "-")
        flags.append(option if value is True else f"{option}={shlex.quote(str(value))}")
    return flags


def check_sbatch_extra(extra: dict, refused: dict[str, str], where: str) -> None:
    """Raise ValueError naming `where`.sbatch_extra.KEY for an option that is set elsewhere."""
    for key in extra:
        option = key.replace("_", "-")  # submitit writes my_option as --my-option
        if option in refused:
            raise ValueError(
                f"{where}.sbatch_extra.{key}: --{option} is not allowed here ({refused[option]})"
            )


def check_gpu_type(entry: dict, gpus_key: str, where: str) -> None:
    if entry.get("gpu_type") and not entry.get(gpus_key):
        raise ValueError(
            f"{where}.gpu_type: {entry['gpu_type']!r} given but {gpus_key} is 0 or unset"
        )


def check_experiment(where: str, exp: dict) -> None:
    """Cross-key checks of `resources` and `stage_resources` that the schema cannot express."""
    res = exp.get("resources", {})
    check_gpu_type(res, "gpus_per_node", f"{where}.resources")
    check_sbatch_extra(res.get("sbatch_extra", {}), SUBMITIT_OPTIONS, f"{where}.resources")
    for stage, entry in exp.get("stage_resources", {}).items():
        check_gpu_type(entry, "gpus", f"{where}.stage_resources.{stage}")
        check_sbatch_extra(
            entry.get("sbatch_extra", {}), PLUGIN_OPTIONS, f"{where}.stage_resources.{stage}"
        )


def plugin_resources(entry: dict) -> dict:
    """snakemake-executor-plugin-slurm resources of a stage's jobs from its `stage_resources`
    entry; only the keys it gives (`cpus_per_task` becomes the rule's threads, not a resource).

    mem_gb is GiB, as in sbatch --mem=NG and the `resources` block: the plugin passes mem_mb
    as --mem in MiB. gpus (+ gpu_type) -> --gpus=[type:]N, which the plugin's job step also
    passes to the srun that runs the rule.
    """
    out = {}
    if "mem_gb" in entry:
        out["mem_mb"] = round(entry["mem_gb"] * 1024)
    if "timeout_min" in entry:
        out["runtime"] = entry["timeout_min"]
    if "gpus" in entry:
        out["gpu"] = entry["gpus"]
    for key, name in (
        ("gpu_type", "gpu_model"),
        ("partition", "slurm_partition"),
        ("constraint", "constraint"),
        ("qos", "qos"),
    ):
        if key in entry:
            out[name] = entry[key]
    if entry.get("sbatch_extra"):
        out["slurm_extra"] = " ".join(sbatch_flags(entry["sbatch_extra"]))
    return out
