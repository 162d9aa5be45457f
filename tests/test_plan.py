"""What the workflow plans (twbyol.plan), without Snakemake: the paths an experiment's rules
name, the params they pass, and the merge of the experiments' stage_resources with the
profile's default-resources."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from twbyol import plan

REPO = Path(__file__).resolve().parents[1]


def tiny(**over) -> dict:
    """A small experiment: two runs (one with its own seeds), a MABe22-format dataset that
    is pretrained on and evaluated, and a RatSI-format one that is evaluated only."""
    e = {
        "description": "tiny",
        "seeds": [0, 1],
        "pretrain_dataset": "mice",
        "eval_datasets": ["mice", "rats"],
        "datasets": {
            "mice": {"format": "mabe22", "frames": {"size": 48, "n_shards": 3}},
            "rats": {"format": "ratsi", "frames": {"size": 48, "n_shards": 1}},
        },
        "runs": {
            "base": {"method": "byol"},
            "tw": {"method": "byol", "weighting": "exponential", "tau": 30, "seeds": [5]},
        },
        "study": {"baseline": "base", "proposed": "tw"},
        "backbone": {"name": "tiny"},
        "crop": {"num_frames": 8},
        "training": {"epochs": 1},
    }
    e.update(over)
    return e


EXPS = {"tiny": tiny()}


def test_an_unknown_experiment_is_an_error_naming_the_defined_ones():
    exps = {"tiny": tiny(), "other": tiny()}
    with pytest.raises(ValueError, match=r"no experiment named 'nope'.*defined: tiny, other"):
        plan.report_path(exps, "nope")
    with pytest.raises(ValueError, match="defined: tiny, other"):
        plan.evaluations(exps, "nope")
    assert plan.report_path(exps, "other") == "results/other/report.md"


def test_the_paths_an_experiments_report_needs():
    # every run at each of its seeds (tw: its own [5]) on every evaluated dataset
    assert plan.evaluations(EXPS, "tiny") == [
        "results/tiny/evaluate/base/seed0/mice.json",
        "results/tiny/evaluate/base/seed0/rats.json",
        "results/tiny/evaluate/base/seed1/mice.json",
        "results/tiny/evaluate/base/seed1/rats.json",
        "results/tiny/evaluate/tw/seed5/mice.json",
        "results/tiny/evaluate/tw/seed5/rats.json",
    ]
    assert plan.run_seed_paths(EXPS, "tiny", "{exp}/{run}/{seed}") == [
        "tiny/base/0",
        "tiny/base/1",
        "tiny/tw/5",
    ]
    # the MABe22-format dataset only: RatSI has no leaderboard
    assert plan.submissions(EXPS, "tiny") == [
        "results/tiny/submission/base/seed0/mice.npy",
        "results/tiny/submission/base/seed1/mice.npy",
        "results/tiny/submission/tw/seed5/mice.npy",
    ]
    # predictions: the proposed run at its first seed, by default
    assert plan.predictions(EXPS, "tiny") == [
        "results/tiny/predict/tw/seed5/mice",
        "results/tiny/predict/tw/seed5/rats",
    ]
    assert plan.ethogram_predictions(EXPS, "tiny", "rats") == "results/tiny/predict/tw/seed5/rats"
    assert plan.ethograms(EXPS, "tiny") == [
        "results/tiny/images/ethogram_mice.json",
        "results/tiny/images/ethogram_rats.json",
    ]
    assert plan.protocols(EXPS, "tiny") == [
        "results/tiny/labels/mice.protocol.json",
        "results/tiny/labels/rats.protocol.json",
    ]
    # figures: baseline then proposed (no control here), first seed, on the pretraining data
    assert plan.figure_embeddings(EXPS, "tiny") == [
        "results/tiny/embed/base/seed0/mice.npy",
        "results/tiny/embed/tw/seed5/mice.npy",
    ]
    assert plan.frame_shards(EXPS, "tiny", "mice") == [
        f"results/tiny/frames/mice/shard{k}.done" for k in range(3)
    ]
    assert plan.study_pair(EXPS["tiny"]) == ["tw", "base"]


def test_predict_runs_and_figures_follow_the_experiments_choices():
    e = tiny(
        predict={"runs": ["base", "tw"]},
        study={"baseline": "base", "proposed": "tw", "control": "base"},
        eval_datasets=["rats"],
    )
    exps = {"t": e}
    assert plan.predict_runs(e) == [("base", 0), ("tw", 5)]
    assert plan.ethogram_predictions(exps, "t", "rats") == "results/t/predict/base/seed0/rats"
    # the pretraining dataset is not evaluated: the figures show the first evaluated one
    assert plan.figure_dataset(e) == "rats"
    assert plan.figure_embeddings(exps, "t") == [
        "results/t/embed/base/seed0/rats.npy",
        "results/t/embed/tw/seed5/rats.npy",
        "results/t/embed/base/seed0/rats.npy",
    ]


def test_a_synthetic_dataset_is_the_synth_rules_output_and_a_real_one_must_exist(tmp_path):
    assert plan.dataset_root(EXPS, "tiny", "mice") == "results/tiny/data/mice/synth.json"
    assert plan.dataset_dir(EXPS, "tiny", "mice") == "results/tiny/data/mice"
    assert plan.clip_inputs(EXPS, "tiny", "mice") == ["results/tiny/data/mice/synth.json"]
    real = tiny()
    real["datasets"]["mice"] = {"format": "mabe22", "path": str(tmp_path / "missing")}
    with pytest.raises(FileNotFoundError, match=r"experiments\.t\.datasets\.mice\.path: .*missing"):
        plan.dataset_root({"t": real}, "t", "mice")
    real["datasets"]["mice"]["path"] = str(tmp_path)
    assert plan.dataset_dir({"t": real}, "t", "mice") == str(tmp_path)


def test_a_video_folders_inputs_are_its_videos_and_for_the_labels_its_tables_too(tmp_path):
    for f in ("a/x.mp4", "a/x.csv", "b.AVI", "notes.txt", ".hidden/y.mp4", "a/.z.mp4", "l.tsv"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).touch()
    e = tiny()
    e["datasets"]["vids"] = {"format": "videos", "path": str(tmp_path)}
    exps = {"t": e}
    root = str(tmp_path)
    assert plan.clip_inputs(exps, "t", "vids") == [root, f"{root}/b.AVI", f"{root}/a/x.mp4"]
    assert plan.dataset_inputs(exps, "t", "vids") == [
        root,
        f"{root}/b.AVI",
        f"{root}/l.tsv",
        f"{root}/a/x.csv",
        f"{root}/a/x.mp4",
    ]


def test_reader_and_clip_options():
    ds = {"format": "mabe22", "files": {"labels": "x.npy"}, "behaviours": ["chase"], "frames": {}}
    assert plan.reader_options(ds) == {"files": {"labels": "x.npy"}, "behaviours": ["chase"]}
    assert plan.clip_options(ds) == {"files": {"labels": "x.npy"}}  # not the behaviours


def test_params_are_independent_of_the_configs_key_order():
    a = {"b": 1, "a": [{"y": 2, "x": 1}]}
    b = {"a": [{"x": 1, "y": 2}], "b": 1}
    assert repr(plan.canonical(a)) == repr(plan.canonical(b)) == "{'a': [{'x': 1, 'y': 2}], 'b': 1}"
    assert plan.as_json(a) == plan.as_json(b) == '{"a":[{"x":1,"y":2}],"b":1}'


def test_the_experiment_record_keeps_the_design_only():
    record = plan.experiment_record("tiny", tiny(stage_resources={"embed": {"gpus": 1}}))
    assert record["name"] == "tiny" and set(record) == {"name", *plan.RECORD_KEYS}
    assert "datasets" not in record and "stage_resources" not in record
    json.dumps(record)


# ---------------------------------------------------------------- job shapes


def job(exp, attempt=1):
    """Call a resource function as Snakemake does (by these names)."""
    return dict(wildcards=SimpleNamespace(exp=exp), input=[], threads=1, attempt=attempt)


def test_cpus_per_task_becomes_the_threads():
    e = tiny(stage_resources={"embed": {"cpus_per_task": 8, "gpus": 1}})
    assert plan.stage_threads(e, "embed") == 8
    assert plan.stage_threads(e, "frames") == 1
    assert plan.stage_threads(e, "synth", 2) == 2
    assert plan.stage_threads(tiny(), "embed", 4) == 4
    # a thread count is no SLURM plugin resource
    assert "cpus_per_task" not in plan.stage_resources({"t": e}, "embed", {})


def test_a_resource_only_some_experiments_set_takes_the_profile_default_for_the_others():
    exps = {
        "big": tiny(
            stage_resources={
                "embed": {"gpus": 1, "gpu_type": "a100", "mem_gb": 48, "timeout_min": 240}
            }
        ),
        "small": tiny(stage_resources={"embed": {"timeout_min": 20}}),
        "none": tiny(),
    }
    profile = {
        "runtime": lambda wildcards, input, threads, attempt: 60 * attempt,
        "slurm_partition": lambda *a: "part",
    }
    res = plan.stage_resources(exps, "embed", profile)
    # one name per resource any experiment sets for the stage (none set by the profile alone)
    assert sorted(res) == ["gpu", "gpu_model", "mem_mb", "runtime"]
    values = {e: {n: f(**job(e)) for n, f in res.items()} for e in exps}
    assert values["big"] == {"gpu": 1, "gpu_model": "a100", "mem_mb": 48 * 1024, "runtime": 240}
    # not set: the profile's value (evaluated for the job), else none; mem_mb 0: no --mem
    assert values["small"] == {"gpu": None, "gpu_model": None, "mem_mb": 0, "runtime": 20}
    assert values["none"] == {"gpu": None, "gpu_model": None, "mem_mb": 0, "runtime": 60}
    assert res["runtime"](**job("none", attempt=2)) == 120
    # a stage no experiment shapes has no resources of its own: the profile's apply
    assert plan.stage_resources(exps, "frames", profile) == {}


def test_the_profiles_mem_mb_fills_in_where_an_experiment_gives_no_mem_gb():
    exps = {"a": tiny(stage_resources={"stats": {"mem_gb": 1.5}}), "b": tiny()}
    res = plan.stage_resources(exps, "stats", {"mem_mb": lambda *a: 4000})
    assert res["mem_mb"](**job("a")) == 1536 and res["mem_mb"](**job("b")) == 4000


def test_the_configs_experiments_plan_their_reports():
    """The experiments of config/config.yaml: each has a report and every evaluation it
    needs names a run, seed and evaluated dataset of its own."""
    exps = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["experiments"]
    for name, e in exps.items():
        assert plan.report_path(exps, name) == f"results/{name}/report.md"
        n = sum(len(e["runs"][r].get("seeds", e["seeds"])) for r in e["runs"])
        assert len(plan.evaluations(exps, name)) == n * len(e["eval_datasets"])
        assert len(plan.figure_embeddings(exps, name)) == len(
            [k for k in plan.FIGURE_ROLES if e["study"].get(k)]
        )


def test_every_experiment_is_a_target_of_its_name():
    assert plan.targets(EXPS, "tiny") == [
        "results/tiny/report.md",
        "results/tiny/report/figures",
        "results/tiny/submission/base/seed0/mice.npy",
        "results/tiny/submission/base/seed1/mice.npy",
        "results/tiny/submission/tw/seed5/mice.npy",
    ]
    with pytest.raises(ValueError, match="experiment 'report' is named like a rule"):
        plan.check_names({"report": tiny()}, ["report", "stats"])
    plan.check_names(EXPS, ["report", "stats"])
    rules = ["all", "smoke", "report"]
    assert (
        plan.unknown_target(["tiny", "all", "results/tiny/report.md", "x.yaml"], EXPS, rules)
        is None
    )
    error = plan.unknown_target(["tiny", "tinyy"], {"tiny": tiny(), "lab": tiny()}, rules)
    assert "no experiment or rule named 'tinyy'" in error and "Experiments: tiny, lab" in error


def test_an_experiment_without_a_study_plans_its_runs_without_the_criteria():
    """No study block: no step benchmark (criterion 4's), predictions of the first run that
    trains, the figures' embeddings of the first three runs; the record leaves it out."""
    runs = {"ctrl": {"method": "random_init"}, "base": {"method": "byol"}, "tw": {"method": "byol"}}
    e = {k: v for k, v in tiny(runs=runs).items() if k != "study"}
    exps = {"lab": e}
    assert plan.step_benchmarks(exps, "lab") == [] and plan.study_pair(e) == []
    assert plan.step_benchmarks(EXPS, "tiny") == ["results/tiny/stats/step_benchmark.json"]
    assert plan.predict_runs(e) == [("base", 0)]
    assert plan.predict_runs({**e, "predict": {"runs": ["tw"]}}) == [("tw", 0)]
    assert [p.split("/")[3] for p in plan.figure_embeddings(exps, "lab")] == ["ctrl", "base", "tw"]
    assert "study" not in plan.experiment_record("lab", e)


def test_a_missing_data_folder_says_how_to_run_another_experiment(tmp_path):
    e = tiny(datasets={"mice": {"format": "mabe22", "path": str(tmp_path / "no"), "frames": {}}})
    with pytest.raises(
        FileNotFoundError, match=r"does not exist.*snakemake --cores N NAME.*defined: mabe22, tiny"
    ):
        plan.dataset_root({"mabe22": e, "tiny": tiny()}, "mabe22", "mice")
