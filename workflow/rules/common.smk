# Config validation, then thin wrappers that bind Snakemake's config, wildcards and profile to
# the package's functions: what a rule plans is computed in twbyol.plan (paths, params, job
# shapes; tested in tests/test_plan.py), the cross-key checks in twbyol.experiment and the
# code inputs in twbyol.deps.
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.resources import Resources
from snakemake.utils import validate

from twbyol import deps, plan
from twbyol.settings import DEFAULT_FRAME_FIT
from twbyol.experiment import check_experiment, embedding_config, evaluation_config, min_clip_frames
from twbyol.experiment import run_config as resolve_run
from twbyol.plan import as_json, canonical, clip_options, reader_options


validate(config, schema="../schemas/config.schema.yaml")

EXPERIMENTS = config["experiments"]
LAUNCHER = config.get("launcher", "local")
# the package's modules as code inputs, relative to the working folder: a study moved with
# its checkout keeps the same input paths, so it plans nothing (absolute paths would change)
PKG = Path(os.path.relpath(Path(workflow.basedir) / "twbyol"))
ENV = "../../envs/twbyol.yaml"


for _name, _exp in EXPERIMENTS.items():  # the cross-key checks the schema cannot express
    check_experiment(_name, _exp)


def stage_code(stage, methods=()):
    """The package modules `twbyol <stage>` runs, as a rule's code inputs: derived from the
    imports (twbyol.deps), so editing any of them reruns the job and what follows, and no
    list is kept by hand. `methods`: the methods whose modules the job builds."""
    return [str(PKG.parent / f) for f in deps.stage_modules(stage, tuple(methods))]


def pretrain_code(w):
    """A pretraining job's modules: the launcher and training loop with its run's method
    (editing contrastive.py reruns MoCo/SimCLR/time contrast only)."""
    method = EXPERIMENTS[w.exp]["runs"][w.run]["method"]
    return [str(PKG.parent / f) for f in deps.pretrain_modules(method)]


# ---- the experiment and dataset of a job's wildcards


def exp_cfg(wildcards):
    return EXPERIMENTS[wildcards.exp]


def dataset_cfg(wildcards):
    return EXPERIMENTS[wildcards.exp]["datasets"][wildcards.dataset]


def embedding_cfg(wildcards):
    return embedding_config(exp_cfg(wildcards))


def evaluation_cfg(wildcards):
    return evaluation_config(exp_cfg(wildcards))


def run_config(exp, run, seed):
    """The resolved config of one pretraining run (twbyol.experiment.run_config). Passed as
    params, so changing any of it reruns this run."""
    return resolve_run(exp, EXPERIMENTS[exp], run, seed)


def experiment_record(exp):
    return plan.experiment_record(exp, EXPERIMENTS[exp])


def study_pair(w):
    return plan.study_pair(exp_cfg(w))


# ---- input functions: twbyol.plan's paths of an experiment


def dataset_dir(w):
    return plan.dataset_dir(EXPERIMENTS, w.exp, w.dataset)


def clip_inputs(w):
    return plan.clip_inputs(EXPERIMENTS, w.exp, w.dataset)


def dataset_inputs(w):
    return plan.dataset_inputs(EXPERIMENTS, w.exp, w.dataset)


def frame_shards(exp, dataset):
    return plan.frame_shards(EXPERIMENTS, exp, dataset)


def run_seed_paths(exp, pattern):
    return plan.run_seed_paths(EXPERIMENTS, exp, pattern)


def evaluations(exp):
    return plan.evaluations(EXPERIMENTS, exp)


def submissions(exp):
    return plan.submissions(EXPERIMENTS, exp)


def predictions(exp):
    return plan.predictions(EXPERIMENTS, exp)


def ethogram_predictions(exp, dataset):
    return plan.ethogram_predictions(EXPERIMENTS, exp, dataset)


def ethograms(exp):
    return plan.ethograms(EXPERIMENTS, exp)


def time_budgets(exp):
    return plan.time_budgets(EXPERIMENTS, exp)


def protocols(exp):
    return plan.protocols(EXPERIMENTS, exp)


def figure_dataset(exp):
    return plan.figure_dataset(EXPERIMENTS[exp])


def figure_embeddings(exp):
    return plan.figure_embeddings(EXPERIMENTS, exp)


def experiment_targets(exp):
    return plan.targets(EXPERIMENTS, exp)


def check_names(rules):
    plan.check_names(EXPERIMENTS, rules)


def unknown_target(target, rules):
    """The input function of the catch-all rule: an error naming the experiments."""
    raise WorkflowError(plan.unknown_target([target], EXPERIMENTS, rules))


def step_benchmarks(exp):
    return plan.step_benchmarks(EXPERIMENTS, exp)


def report_for(exp):
    return plan.report_path(EXPERIMENTS, exp)


# ---- the shape of the stages' jobs: the experiments' stage_resources over the profile's


def stage_threads(stage, threads=1):
    return lambda w: plan.stage_threads(exp_cfg(w), stage, threads)


def stage_resources(stage):
    """twbyol.plan.stage_resources with the profile's default-resources, each evaluated for
    the job as Snakemake would have."""
    profile = Resources.from_mapping(workflow.resource_settings.default_resources or {})

    def default(resource):
        return lambda wildcards, input, threads, attempt: resource.evaluate(
            wildcards, input=input, threads=threads, attempt=attempt).value

    return plan.stage_resources(EXPERIMENTS, stage, {n: default(r) for n, r in profile.items()})
