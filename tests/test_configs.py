"""One typed config per stage: the schema's blocks and the stages' config dataclasses agree
(every setting of a block is a field, every field a setting or a documented derived one, the
required ones have no default, and a default the schema's text states is the dataclass's), and
what the rules pass round-trips into the dataclass."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from twbyol.evaluate import DERIVED_FIELDS, EvaluateConfig
from twbyol.experiment import embedding_config, evaluation_config
from twbyol.features import EmbedConfig
from twbyol.synthetic.generate import SynthConfig
from twbyol.train import TrainConfig

REPO = Path(__file__).parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
BLOCKS = {
    "evaluation": SCHEMA["$defs"]["experiment"]["properties"]["evaluation"],
    "synthetic": SCHEMA["$defs"]["dataset"]["properties"]["synthetic"],
    "training": SCHEMA["$defs"]["training"],
    "embedding": SCHEMA["$defs"]["experiment"]["properties"]["embedding"],
}
# TrainConfig's fields that are no setting of the training block: the run's own (the run
# block), the experiment's other blocks, and what run_config derives (ids, paths)
TRAIN_ELSEWHERE = {
    "run_id",
    "seed",
    "out_dir",
    "frames_dir",
    "index",
    "labels",
    "protocol",
    "method",
    "weighting",
    "tau",
    "time_unit",
    "temperature",
    "window",
    "pretrain_splits",
    "crop",
    "backbone",
    "data_fraction",
    "data_seed",
}


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def _defaults(cls) -> dict:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _stated_defaults(block: dict) -> dict:
    """The defaults a block's schema states: a `default` keyword, or "(default X)" in a
    property's description."""
    out = {}
    for name, prop in block["properties"].items():
        if "default" in prop:
            out[name] = prop["default"]
        m = re.search(r"\(default ([^:),]+)[:)]", prop.get("description", ""))
        if m:
            out[name] = yaml.safe_load(m.group(1))
    return out


def test_the_evaluation_block_is_evaluate_configs_settings():
    props = set(BLOCKS["evaluation"]["properties"])
    assert props == _names(EvaluateConfig) - set(DERIVED_FIELDS)
    assert set(DERIVED_FIELDS) <= _names(EvaluateConfig)


def test_the_embedding_block_is_embed_config():
    """embed and predict read the experiment's embedding block (the rules pass it whole)."""
    assert set(BLOCKS["embedding"]["properties"]) == _names(EmbedConfig)
    for e in _validated().values():
        given = embedding_config(e)
        cfg = EmbedConfig.from_dict(json.loads(json.dumps(given, sort_keys=True)))
        assert {k: cfg.to_dict()[k] for k in given} == given
    rules = (REPO / "workflow/rules/embed.smk").read_text()
    rules += (REPO / "workflow/rules/evaluate.smk").read_text()
    assert rules.count("cfg=lambda w: as_json(embedding_cfg(w))") == 2
    with pytest.raises(ValueError, match="window_strid"):
        EmbedConfig.from_dict({"window_strid": 2})


def test_the_synthetic_block_is_synth_config():
    block = BLOCKS["synthetic"]
    assert set(block["properties"]) == _names(SynthConfig)
    no_default = {f.name for f in fields(SynthConfig) if f.default is MISSING}
    assert set(block["required"]) == no_default


def test_the_training_block_is_train_configs_settings():
    props = set(BLOCKS["training"]["properties"])
    assert props <= _names(TrainConfig)
    assert props | TRAIN_ELSEWHERE == _names(TrainConfig)
    run = set(SCHEMA["$defs"]["run"]["properties"]) - {"label", "seeds"}
    # a run's times in seconds and its crop policy become tau / window / crop (run_config)
    assert run - {"tau_s", "window_s", "crop_policy"} <= _names(TrainConfig)


@pytest.mark.parametrize(
    "block, cls",
    [
        ("evaluation", EvaluateConfig),
        ("synthetic", SynthConfig),
        ("training", TrainConfig),
        ("embedding", EmbedConfig),
    ],
)
def test_a_default_the_schema_states_is_the_dataclasses(block, cls):
    stated = _stated_defaults(BLOCKS[block])
    defaults = _defaults(cls)
    assert stated.keys() <= defaults.keys()
    assert {k: defaults[k] for k in stated} == stated


def _validated() -> dict:
    from snakemake.utils import validate

    cfg = copy.deepcopy(CONFIG)
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"))
    return cfg["experiments"]


def test_what_the_rules_pass_round_trips_into_the_dataclasses():
    """The evaluate rule's --config (as_json of evaluation_config for the experiment and the
    dataset) and the synth rule's (the dataset's synthetic block) of every experiment and
    dataset of config.yaml load into the dataclass and come back unchanged."""
    rules = (REPO / "workflow/rules/evaluate.smk").read_text()
    assert "cfg=lambda w: as_json(evaluation_config(exp_cfg(w), w.dataset))" in rules
    assert "--config {params.cfg:q}" in rules
    rules = (REPO / "workflow/rules/data.smk").read_text()
    assert 'cfg=lambda w: as_json(dataset_cfg(w)["synthetic"])' in rules
    checked = 0
    for e in _validated().values():
        for ds in e["eval_datasets"]:
            given = evaluation_config(e, ds)
            sent = json.loads(json.dumps(given, sort_keys=True, separators=(",", ":")))
            cfg = EvaluateConfig.from_dict(sent)
            assert {k: cfg.to_dict()[k] for k in given} == given
            assert cfg.ceiling == ("synthetic" in e["datasets"][ds])
            checked += 1
        for d in e["datasets"].values():
            if "synthetic" in d:
                s = d["synthetic"]
                cfg = SynthConfig.from_dict(json.loads(json.dumps(s, sort_keys=True)))
                assert {k: cfg.to_dict()[k] for k in s} == s
    assert checked


def test_an_unknown_or_missing_key_is_an_error_naming_it():
    with pytest.raises(ValueError, match="knn_kk"):
        EvaluateConfig.from_dict({"knn_kk": 20})
    with pytest.raises(ValueError, match="crop_policy 'near_pairs'"):
        EvaluateConfig.from_dict({"crop_policy": "near_pairs"})
    with pytest.raises(ValueError, match="bodyscale"):
        SynthConfig.from_dict({"n_clips": 1, "n_frames": 40, "size": 32, "seed": 0, "bodyscale": 2})
    with pytest.raises(ValueError, match="give size, seed"):
        SynthConfig.from_dict({"n_clips": 1, "n_frames": 40})


def test_synth_runs_on_its_settings_alone(tmp_path):
    """`twbyol synth` with its dataset's size and seed alone: every other setting is
    SynthConfig's default, recorded in synth.json."""
    from twbyol.synthetic import generate

    settings = {"n_clips": 1, "n_frames": 20, "size": 32, "seed": 0}
    assert (
        generate.main(
            ["--format", "ratsi", "--out", str(tmp_path), "--config", json.dumps(settings)]
        )
        == 0
    )
    summary = json.loads((tmp_path / "synth.json").read_text())
    assert summary["fps"] == SynthConfig.fps and summary["body_scale"] == SynthConfig.body_scale
    with pytest.raises(ValueError, match="nclips"):
        generate.main(
            ["--format", "ratsi", "--out", str(tmp_path / "x"), "--config", '{"nclips": 1}']
        )
