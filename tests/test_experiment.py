"""Resolving a run of config/config.yaml into its training config, and the checks at the door."""

import copy
from pathlib import Path

import pytest
import yaml

from twbyol.experiment import run_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())


def synthetic(**runs):
    e = copy.deepcopy(CONFIG["experiments"]["synthetic"])
    e["runs"].update(runs)
    return e


def test_the_controls_resolve_to_their_training_configs():
    e = synthetic(
        oracle={"method": "byol", "weighting": "oracle"},
        oracle_drawn={"method": "byol", "weighting": "oracle", "crop_policy": "near_pairs"},
        permuted={"method": "byol", "weighting": "permuted", "tau": 30},
        near={"method": "byol", "weighting": "exponential", "tau": 30, "crop_policy": "near_pairs"},
        literal={"method": "byol", "weighting": "exponential", "tau": 30, "normalize": "batch"},
        matched={"method": "byol", "weighting": "uniform", "pretrain_splits": ["SubmissionTrain"]},
    )
    oracle = run_config("synthetic", e, "oracle", 0)
    # the oracle learns from the labels the supervised upper bound may use
    sup = run_config("synthetic", e, "supervised", 0)
    assert (oracle["labels"], oracle["protocol"]) == (sup["labels"], sup["protocol"])
    assert run_config("synthetic", e, "oracle_drawn", 0)["crop"]["policy"] == "near_pairs"
    assert "labels" not in run_config("synthetic", e, "permuted", 0)
    near = run_config("synthetic", e, "near", 0)
    assert near["crop"]["policy"] == "near_pairs" and (near["weighting"], near["tau"]) == (
        "exponential",
        30,
    )
    assert run_config("synthetic", e, "literal", 0)["normalize"] == "batch"
    assert run_config("synthetic", e, "matched", 0)["pretrain_splits"] == ["SubmissionTrain"]
    assert "pretrain_splits" not in run_config("synthetic", e, "byol_uniform", 0)
    # a run reads the clip list (no label edit reruns it), and index.tsv only for its splits
    index = {r: run_config("synthetic", e, r, 0)["index"] for r in ("byol_uniform", "matched")}
    assert index == {
        "byol_uniform": "results/synthetic/frames/mice/clips.tsv",
        "matched": "results/synthetic/frames/mice/index.tsv",
    }


@pytest.mark.parametrize(
    "run, rho, message",
    [
        ({"method": "moco_v3", "weighting": "oracle"}, 2, "runs.bad.weighting"),
        (
            {"method": "byol", "weighting": "permuted", "crop_policy": "near_pairs"},
            2,
            "runs.bad.crop_policy",
        ),
        (
            {"method": "byol", "weighting": "exponential", "crop_policy": "near_pairs"},
            3,
            "runs.bad.crop_policy",
        ),
        ({"method": "time_contrast", "crop_policy": "near_pairs"}, 2, "runs.bad.crop_policy"),
    ],
)
def test_a_run_that_cannot_work_fails_naming_the_key(run, rho, message):
    e = synthetic(bad=run)
    e["crop"]["rho"] = rho
    with pytest.raises(ValueError, match=f"config: experiments.synthetic.{message}"):
        run_config("synthetic", e, "bad", 0)


def test_the_schema_takes_the_controls_and_refuses_unknown_settings():
    from snakemake.utils import validate

    schema = str(REPO / "workflow/schemas/config.schema.yaml")
    cfg = copy.deepcopy(CONFIG)
    cfg["experiments"]["synthetic"]["runs"].update(
        oracle={"method": "byol", "weighting": "oracle"},
        permuted={"method": "byol", "weighting": "permuted", "tau": 30},
        near={"method": "byol", "weighting": "exponential", "tau": 30, "crop_policy": "near_pairs"},
        matched={"method": "byol", "pretrain_splits": ["SubmissionTrain"]},
    )
    validate(cfg, schema)
    for bad in (
        {"method": "byol", "weighting": "shuffled"},
        {"method": "byol", "crop_policy": "nearest"},
        {"method": "byol", "pretrain_splits": ["Holdout"]},
    ):
        cfg["experiments"]["synthetic"]["runs"]["bad"] = bad
        with pytest.raises(Exception, match="shuffled|nearest|Holdout"):
            validate(cfg, schema)


def test_the_schema_names_the_packages_methods_weightings_and_policies():
    """The config schema's enums and the package's tuples (twbyol.settings, data.crops) are
    one list each: a method, weighting or crop policy added to one is added to the other."""
    from twbyol.data.crops import CROP_POLICIES
    from twbyol.settings import METHODS, PAIR_WEIGHTINGS

    schema = yaml.safe_load(
        (Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text()
    )
    run = schema["$defs"]["run"]["properties"]
    assert set(run["method"]["enum"]) == set(METHODS)
    assert set(run["weighting"]["enum"]) == set(PAIR_WEIGHTINGS)
    assert set(run["crop_policy"]["enum"]) == set(CROP_POLICIES)


def _validated() -> dict:
    """config.yaml as the workflow sees it: validated, the schema's defaults filled in."""
    from snakemake.utils import validate

    cfg = copy.deepcopy(CONFIG)
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"))
    return cfg["experiments"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: e.update(pretrain_dataset="birds"), r"smoke: dataset 'birds' is used"),
        (
            lambda e: e["study"].update(proposed="nope"),
            r"smoke.study.proposed: run 'nope' is not defined",
        ),
        (
            lambda e: e["datasets"]["mice"].update(format="videos"),
            r"smoke.datasets.mice: format videos reads a folder",
        ),
        (
            lambda e: e["training"].update(batch_size=33),
            r"smoke.training.batch_size: 33 is not divisible by 2 GPUs",
        ),
        (
            lambda e: e["runs"].update(bad={"method": "moco_v3", "weighting": "oracle"}),
            r"smoke.runs.bad.weighting",
        ),
        (
            lambda e: e["stage_resources"].update(embed={"gpus": 1, "sbatch_extra": {"gres": "x"}}),
            r"smoke.stage_resources.embed",
        ),
    ],
)
def test_every_experiment_passes_the_cross_key_checks_and_a_broken_one_names_its_key(edit, message):
    from twbyol.experiment import check_experiment

    exps = _validated()
    for name, exp in exps.items():
        check_experiment(name, exp)  # config.yaml as shipped
    smoke = copy.deepcopy(exps["smoke"])
    edit(smoke)
    with pytest.raises(ValueError, match=message):
        check_experiment("smoke", smoke)
