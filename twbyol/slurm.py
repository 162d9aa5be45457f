"""SLURM options of an experiment's `resources` block, the shape of its submitit pretraining
jobs (`twbyol.launch.executor_parameters`).

`sbatch_extra` gives further sbatch options as a mapping (`{exclusive: true, mail-type: END}`
-> `--exclusive --mail-type=END`). An option that another key sets, or that submitit sets
itself, is refused before any job runs: submitit's additional parameters would silently
replace ours.
"""

from __future__ import annotations

# GPUs are asked for by count and type only: SLURM combines a second GPU option with the
# first, or refuses the pair.
_GPU_OPTIONS = ("gres", "gpus", "gpus-per-node", "gpus-per-task", "cpus-per-gpu", "mem-per-gpu")
# {sbatch option: why sbatch_extra may not give it}: those that submitit writes from
# executor_parameters or by itself ...
SUBMITIT_OPTIONS = {
    **{o: "set by submitit" for o in ("job-name", "output", "error", "open-mode", "wckey")},
    **{o: "use gpus_per_node and gpu_type" for o in _GPU_OPTIONS},
    **{o: f"use {k}" for o, k in (
        ("time", "timeout_min"), ("mem", "mem_gb"), ("cpus-per-task", "cpus_per_task"),
        ("nodes", "nodes"), ("ntasks-per-node", "gpus_per_node"), ("partition", "partition"),
        ("account", "account"), ("constraint", "constraint"), ("qos", "qos"),
        ("signal", "signal_delay_s"))},
}


def check_sbatch_extra(extra: dict, refused: dict[str, str], where: str) -> None:
    """Raise ValueError naming `where`.sbatch_extra.KEY for an option that is set elsewhere."""
    for key in extra:
        option = key.replace("_", "-")  # submitit writes my_option as --my-option
        if option in refused:
            raise ValueError(f"{where}.sbatch_extra.{key}: --{option} is not allowed here "
                             f"({refused[option]})")


def check_gpu_type(entry: dict, gpus_key: str, where: str) -> None:
    if entry.get("gpu_type") and not entry.get(gpus_key):
        raise ValueError(f"{where}.gpu_type: {entry['gpu_type']!r} given but {gpus_key} is 0 or unset")


def check_experiment(where: str, exp: dict) -> None:
    """Cross-key checks of `resources` that the schema cannot express."""
    res = exp.get("resources", {})
    check_gpu_type(res, "gpus_per_node", f"{where}.resources")
    check_sbatch_extra(res.get("sbatch_extra", {}), SUBMITIT_OPTIONS, f"{where}.resources")
