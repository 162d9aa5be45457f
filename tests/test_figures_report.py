"""evaluate -> stats -> figures -> report on a small, well-formed fake study written to tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twbyol import evaluate, figures, io, plotting, report, stats, tables
from twbyol.split import derived_protocol, write_protocol

N_CLIPS, LENGTH, DIM = 12, 150, 16
SEEDS = (0, 1, 2)
# the fake embeddings are per frame: each frame its own input window
# the settings the workflow passes the evaluate stage (the window of each frame on its own)
WINDOW = {
    "num_frames": 1,
    "frame_stride": 1,
    "window_stride": 1,
    "split_seed": 42,
    "knn_k": 20,
    "crop_policy": "uniform",
    "crop_rho": 2,
    "crop_gap": 60,
}


def config(**settings) -> list[str]:
    """The evaluate stage's --config argument: WINDOW with `settings` on top."""
    return ["--config", json.dumps({**WINDOW, **settings})]


# run -> (behaviour signal, time signal): how strongly its embedding encodes each
RUNS = {
    "byol_uniform": (1.0, 0.5),
    "twbyol_tau30": (1.3, 1.0),
    "twbyol_tau15": (1.2, 1.2),
    "random_init": (0.0, 0.0),
    "supervised": (3.0, 0.2),
}


def _write_dataset(root: Path, name: str, seed: int) -> tuple[Path, Path, np.ndarray]:
    """index.tsv, labels .npz and grayscale frames of one dataset; returns (labels, index,
    label_array)."""
    rng = np.random.default_rng(seed)
    starts = np.arange(N_CLIPS) * LENGTH
    ends = starts + LENGTH
    tasks = ["groom", "sniff", "chase", "strain"]
    lab = np.zeros((len(tasks), N_CLIPS * LENGTH), np.float32)
    for t, rate in enumerate((0.15, 0.3, 0.45)):  # bouts of 5-40 frames
        for s in starts:
            i = 0
            while i < LENGTH:
                n = int(rng.integers(5, 40))
                lab[t, s + i : s + i + n] = rng.random() < rate
                i += n
    lab[1, :LENGTH] = np.nan  # one clip unlabelled for one task
    for c, s in enumerate(starts):
        lab[3, s : s + LENGTH] = c % 2  # sequence-level condition
    frames = root / "frames" / name
    clips = [f"{name}{c:02d}" for c in range(N_CLIPS)]
    for c in clips:
        io.write_npy(frames / f"{c}.npy", rng.integers(0, 255, (LENGTH, 12, 12), dtype=np.uint8))
    lines = ["clip_id\tn_frames\tfps\tsource\tshard\tstart\tend\tlabelled\tsplits"]
    lines += [
        f"{c}\t{LENGTH}\t30.0\t/data/{c}.mp4\t0\t{s}\t{e}\t1\t"
        for c, s, e in zip(clips, starts, ends)
    ]
    io.write_text(frames / "index.tsv", "\n".join(lines) + "\n")
    labels = root / "labels" / f"{name}.npz"
    io.write_npz(
        labels,
        tasks=np.array(tasks),
        task_types=np.array(["Discrete"] * 4),
        sequence_level=np.array([False, False, False, True]),
        label_array=lab,
        clips=np.array(clips),
        starts=starts,
        ends=ends,
    )
    # the release's shares of SubmissionTrain / publicTest / privateTest (twbyol.split)
    write_protocol(
        root / "labels" / f"{name}.protocol.json", derived_protocol(clips, tasks, [tasks[3]], 42)
    )
    return labels, frames / "index.tsv", lab


def make_study(root: Path) -> dict:
    """A fake study in the artifact contract: datasets, embeddings, metrics, efficiency,
    experiment.json; evaluations written by the real evaluate stage. Returns the paths."""
    exp = {
        "name": "fake",
        "description": "A fake study for the tests.",
        "seeds": list(SEEDS),
        "pretrain_dataset": "mice",
        "eval_datasets": ["mice", "rats"],
        "runs": {
            "byol_uniform": {"method": "byol", "weighting": "uniform", "label": "rho-BYOL"},
            "twbyol_tau30": {
                "method": "byol",
                "weighting": "exponential",
                "tau": 30,
                "label": "TW-BYOL (tau=30)",
            },
            "twbyol_tau15": {"method": "byol", "weighting": "exponential", "tau": 15},
            "random_init": {"method": "random_init"},
            "supervised": {"method": "supervised"},
        },
        "study": {
            "baseline": "byol_uniform",
            "proposed": "twbyol_tau30",
            "control": "random_init",
            "upper_bound": "supervised",
            "tau_sweep": ["twbyol_tau15", "twbyol_tau30"],
            "half_data": None,
            "half_data_baseline": None,
        },
    }
    io.write_json(root / "experiment.json", exp)
    paths = {
        "experiment": root / "experiment.json",
        "evaluations": [],
        "metrics": [],
        "efficiency": [],
        "embeddings": [],
    }
    for d, ds in enumerate(exp["eval_datasets"]):
        labels, index, lab = _write_dataset(root, ds, d)
        paths[ds] = (labels, index)
        t = np.concatenate([np.arange(LENGTH)] * N_CLIPS) * 0.02
        for r, (run, (beh, tim)) in enumerate(RUNS.items()):
            for seed in SEEDS:
                rng = np.random.default_rng([d, r, seed])
                proj = rng.standard_normal((3, DIM))
                emb = (
                    rng.standard_normal((lab.shape[1], DIM))
                    + beh * np.nan_to_num(lab[:3]).T @ proj
                    + tim * 2 * np.stack([np.cos(t), np.sin(t)] * (DIM // 2), 1)
                ).astype(np.float32)
                emb_path = root / "embed" / run / f"seed{seed}" / f"{ds}.npy"
                io.write_npy(emb_path, emb)
                out = root / "evaluate" / run / f"seed{seed}" / f"{ds}.json"
                assert (
                    evaluate.main(
                        [
                            "--embedding",
                            str(emb_path),
                            "--labels",
                            str(labels),
                            "--index",
                            str(index),
                            "--protocol",
                            str(labels).removesuffix(".npz") + ".protocol.json",
                            "--out",
                            str(out),
                            "--run-id",
                            run,
                            "--seed",
                            str(seed),
                            "--dataset",
                            ds,
                            "--method",
                            exp["runs"][run]["method"],
                            *config(
                                test_size=0.25,
                                n_pairs=2000,
                                n_queries=100,
                                few_shot_draws=2,
                                ceiling=ds == "mice",  # generated data
                            ),
                        ]
                    )
                    == 0
                )
                paths["evaluations"].append(out)
                if ds == "mice":
                    paths["embeddings"].append(emb_path)
                    pre = root / "pretrain" / run / f"seed{seed}"
                    lines = (
                        [{"run_id": run, "seed": seed, "epoch": 0, "loss": None, "lr": 0.0}]
                        if run == "random_init"
                        else [
                            {
                                "run_id": run,
                                "seed": seed,
                                "epoch": e,
                                "loss": 2.0 * 0.8**e + 0.01 * seed,
                                "lr": 1e-3,
                            }
                            for e in range(5)
                        ]
                    )
                    io.write_text(
                        pre / "metrics.jsonl", "".join(json.dumps(x) + "\n" for x in lines)
                    )
                    io.write_json(
                        pre / "efficiency.json",
                        {
                            "wall_s": 100.0 + r + seed,
                            "samples": 0 if run == "random_init" else 640,
                            "gpu_hours": 0.0,
                            "n_gpus": 0,
                            "samples_per_s": 50.0 - r,
                            "peak_mem_mb": 900.0 + 10 * r,
                            "peak_mem_kind": "cpu_rss",
                        },
                    )
                    paths["metrics"].append(pre / "metrics.jsonl")
                    paths["efficiency"].append(pre / "efficiency.json")
    return paths


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("results")
    return root, make_study(root)


def test_evaluation_json_is_complete(study):
    _, paths = study
    ev = io.read_json(paths["evaluations"][0])
    for key in (
        "mean_f1",
        "mean_f1_public",
        "headline_tasks",
        "protocol",
        "mean_f1_all",
        "knn_accuracy",
        "knn_balanced_accuracy",
        "rare_action_f1",
        "rare_action_precision",
        "rare_action_recall",
        "rare_actions",
        "few_shot_f1",
        "window",
        "gap_range",
        "spearman_rho",
        "distance_by_dt",
        "retrieval_mrr",
        "retrieval_mrr_chance",
        "n_train_clips",
        "n_test_clips",
        "timings_s",
    ):
        assert key in ev
    assert (
        set(ev["tasks"]) == {"groom", "sniff", "chase", "strain"}
        and ev["tasks"]["strain"]["sequence_level"]
    )
    assert ev["n_test_clips"] == 3 and set(ev["few_shot_f1"]) == {"0.01", "0.1"}
    assert 0 <= ev["mean_f1"] <= 1 and ev["n_f1_tasks"] == 3
    assert ev["headline_tasks"] == ["groom", "sniff", "chase"]
    for name, r in ev["tasks"].items():
        assert {"f1", "f1_public", "f1_no_ensemble", "n_test", "n_test_public"} <= set(r), name
    assert "f1_pooled" in ev["tasks"]["strain"] and "f1_pooled" not in ev["tasks"]["groom"]
    # temporal metrics: the control's noise scores chance, a time-coding run does not
    root, _ = study
    control = io.read_json(root / "evaluate" / "random_init" / "seed0" / "mice.json")
    timed = io.read_json(root / "evaluate" / "twbyol_tau15" / "seed0" / "mice.json")
    assert abs(control["spearman_rho"]) < 0.1 and timed["spearman_rho"] > 0.3
    assert abs(control["retrieval_mrr"] - control["retrieval_mrr_chance"]) < 0.05
    assert timed["retrieval_mrr"] > control["retrieval_mrr"] + 0.1


def test_evaluate_rejects_bad_embeddings(study, tmp_path):
    _, paths = study
    labels, index = paths["mice"]
    bad = tmp_path / "short.npy"
    np.save(bad, np.zeros((10, DIM), np.float32))
    args = [
        "--labels",
        str(labels),
        "--index",
        str(index),
        "--protocol",
        str(labels).removesuffix(".npz") + ".protocol.json",
        "--out",
        str(tmp_path / "x.json"),
        "--run-id",
        "r",
        "--seed",
        "0",
        "--dataset",
        "mice",
        "--method",
        "byol",
        *config(test_size=0.1),
    ]
    with pytest.raises(ValueError, match="short.npy"):
        evaluate.main(["--embedding", str(bad), *args])
    emb = np.load(paths["embeddings"][0])
    emb[5, 3] = np.nan
    np.save(bad, emb)
    with pytest.raises(ValueError, match="non-finite"):
        evaluate.main(["--embedding", str(bad), *args])
    assert not (tmp_path / "x.json").exists()


def _step_benchmark(path: Path) -> Path:
    """A step_benchmark.json as twbyol.benchmark writes it: TW-BYOL's steps 1 % slower."""
    from twbyol.benchmark import median_ratio

    base = [0.10 + 0.001 * (i % 4) for i in range(20)]
    prop = [1.01 * t for t in base]
    io.write_json(
        path,
        {
            "proposed": "twbyol_tau30",
            "baseline": "byol_uniform",
            "device": "cpu",
            "backbone": {"name": "tiny"},
            "batch": 8,
            "steps": 20,
            "runs": {
                "twbyol_tau30": {"median_s": float(np.median(prop)), "times_s": prop},
                "byol_uniform": {"median_s": float(np.median(base)), "times_s": base},
            },
            "comparison": median_ratio(prop, base),
        },
    )
    return path


def test_stats_figures_report(study, capsys):
    root, paths = study
    s = [str(p) for p in paths["evaluations"]]
    assert (
        stats.main(
            [
                "--experiment",
                str(paths["experiment"]),
                "--evaluations",
                *s,
                "--efficiency",
                *map(str, paths["efficiency"]),
                "--step-benchmark",
                str(_step_benchmark(root / "step_benchmark.json")),
                "--out-dir",
                str(root / "stats"),
            ]
        )
        == 0
    )
    crit = io.read_json(root / "stats" / "criteria.json")
    verdicts = {c["id"]: c["verdict"] for c in crit["criteria"]}
    assert len(verdicts) == 6 and verdicts["robustness"] in {"NOT RUN", "FAIL"}  # no 50 %-data runs
    # CPU runs (0 GPU-hours): the step benchmark decides criterion 4, +1 %
    assert verdicts["gpu_hours"] == "PASS"
    assert crit["criteria"][3]["value"] == pytest.approx(0.01)
    assert crit["sanity"]["vs_control"]["mice"]["supervised"]["beats"]
    power = crit["sanity"]["power"]["mice"]
    assert power["headroom"] > 0 and power["enough"] in (True, False) and power["mde"] > 0
    tt = io.read_json(root / "stats" / "ttests.json")
    assert tt["tests"]["rats"]["twbyol_tau30"]["metrics"]["mean_f1"]["n"] == 3
    assert tt["tests"]["rats"]["twbyol_tau30"]["metrics"]["mean_f1"]["power"]["mde"] > 0
    tsv = (root / "stats" / "comparison.tsv").read_text().splitlines()
    assert tsv[0] == "run_id\tseed\tdataset\tmetric\tvalue" and any(
        "\tf1/groom\t" in line for line in tsv
    )
    assert any("\tefficiency/wall_s\t" in line for line in tsv)

    images = root / "images"
    assert (
        figures.main(
            [
                "--experiment",
                str(paths["experiment"]),
                "--comparison",
                str(root / "stats" / "comparison.tsv"),
                "--evaluations",
                *s,
                "--metrics",
                *map(str, paths["metrics"]),
                "--efficiency",
                *map(str, paths["efficiency"]),
                "--out-dir",
                str(images),
                "--embeddings",
                *map(str, paths["embeddings"]),
                "--labels",
                str(paths["mice"][0]),
                "--index",
                str(paths["mice"][1]),
                "--tsne-frames",
                "400",
            ]
        )
        == 0
    )
    manifest = io.read_json(images / "manifest.json")
    names = {f["name"] for f in manifest["figures"]}
    assert {
        "per_task_f1",
        "loss_curves",
        "distance_vs_dt",
        "tau_sensitivity",
        "efficiency",
        "tsne",
        "retrieval_demo",
    } <= names
    for f in manifest["figures"]:
        assert (images / f["pdf"]).read_bytes()[:4] == b"%PDF"
        assert (images / f["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f["caption"]

    out = root / "report.md"
    assert (
        report.main(
            [
                "--experiment",
                str(paths["experiment"]),
                "--stats-dir",
                str(root / "stats"),
                "--figures-manifest",
                str(images / "manifest.json"),
                "--protocols",
                *(
                    str(paths[ds][0]).removesuffix(".npz") + ".protocol.json"
                    for ds in ("mice", "rats")
                ),
                "--out",
                str(out),
                "--code-version",
                "v0-test",
            ]
        )
        == 0
    )
    text = out.read_text()
    for needle in (
        "## Verdict",
        "## Pass criteria",
        "v0-test",
        "](images/per_task_f1.png)",
        "TW-BYOL (tau=30)",
        "NOT RUN" if verdicts["robustness"] == "NOT RUN" else "FAIL",
        "mean F1 (private)",
        "mean F1 (public)",
        "## Per-task scores (MABe22 protocol)",
        "## Against the untrained control",
        "random_init (value)",
        "kNN bal. acc.",
        "rare-action F1",
        "## Datasets",
        "**0 labelled clip(s) left out for a missing video**",
        "| rests on |",
        "MDE (pts)",
        "seeds for +2",
        "isolated step benchmark",
        "smallest effect detectable with 80% power at 3 seeds",
        "power of TW-BYOL (tau=30) vs rho-BYOL",
        "x the MDE",
        "| run | seeds | device | GPU-hours |",
        "| (reference) every frame positive | mice |",
        "| (reference) prevalence coin flip | rats |",
        "| (reference) ceiling: window's ground truth | mice |",
        "| every frame positive | prevalence coin flip | ceiling: window's ground truth |",
    ):
        assert needle in text, needle
    assert "| (reference) ceiling: window's ground truth | rats |" not in text  # not generated
    # per behaviour: precision, recall, F1 (mean +- sd over the 3 seeds) and positive frames
    per_b = text.split("## Per-behaviour scores")[1].split("\n## ")[0]
    assert "| behaviour | run | n | precision | recall | F1 | positive frames |" in per_b
    assert "**mice**" in per_b and "**rats**" in per_b
    tab = tables.Table.read(root / "stats" / "comparison.tsv")
    f1 = tab.summary("twbyol_tau30", "mice", "f1/groom")
    pos = tab.values("twbyol_tau30", "mice", "n_pos/groom")[0]
    row = next(r for r in per_b.splitlines() if r.startswith("| groom | TW-BYOL (tau=30) |"))
    assert f"| {f1[0]:.3f} +- {f1[1]:.3f} | {pos:.0f} |" in row
    efficiency = text.split("## Efficiency")[1].split("##")[0]
    assert "| 3 | CPU |" in efficiency
    assert "Overall" in capsys.readouterr().out


def test_ablation_figures_from_a_hand_made_table(tmp_path):
    """The full study matrix (weightings, tau sweep, 50 % data, crop policies) gives every
    optional figure, each with its runs."""
    byol = {"method": "byol"}
    runs = {
        "uniform": {**byol, "weighting": "uniform"},
        "exp30": {**byol, "weighting": "exponential", "tau": 30},
        "exp15": {**byol, "weighting": "exponential", "tau": 15},
        "exp60": {**byol, "weighting": "exponential", "tau": 60},
        "binary30": {**byol, "weighting": "binary", "tau": 30},
        "linear30": {**byol, "weighting": "linear", "tau": 30},
        "uniform_half": {**byol, "weighting": "uniform", "data_fraction": 0.5},
        "exp30_half": {**byol, "weighting": "exponential", "tau": 30, "data_fraction": 0.5},
        "uniform_near": {**byol, "weighting": "uniform", "crop_policy": "near"},
        "exp30_near": {**byol, "weighting": "exponential", "tau": 30, "crop_policy": "near"},
    }
    exp = {
        "pretrain_dataset": "mice",
        "crop": {"policy": "uniform"},
        "runs": runs,
        "study": {
            "baseline": "uniform",
            "proposed": "exp30",
            "tau_sweep": ["exp15", "exp30", "exp60"],
        },
    }
    rng = np.random.default_rng(0)
    rows = [
        {"run_id": r, "seed": s, "dataset": "mice", "metric": m, "value": v + rng.normal(0, 0.01)}
        for i, r in enumerate(runs)
        for s in SEEDS
        for m, v in (("mean_f1", 0.6 + 0.01 * i), ("spearman_rho", 0.3 + 0.02 * i))
    ]
    figs = plotting.Figures(tmp_path)
    figures.ablation_figures(figs, exp, tables.Table(rows))
    made = {e["name"]: e["caption"] for e in figs.entries}
    assert set(made) == {"tau_sensitivity", "weighting_ablation", "data_fraction", "crop_policy"}
    assert "uniform_half" in made["data_fraction"] and "exp30_near" in made["crop_policy"]
    assert all((tmp_path / f"{n}.png").stat().st_size > 0 for n in made)


def test_tau_sweep_includes_the_proposed_run_at_its_tau(tmp_path, monkeypatch):
    # config/config.yaml lists only the other taus in tau_sweep; the proposed run is the
    # sweep's point at its own tau and must be drawn
    byol = {"method": "byol", "weighting": "exponential"}
    exp = {
        "pretrain_dataset": "mice",
        "runs": {
            "uniform": {"method": "byol", "weighting": "uniform"},
            "exp15": {**byol, "tau": 15},
            "exp30": {**byol, "tau": 30},
            "exp60": {**byol, "tau": 60},
        },
        "study": {"baseline": "uniform", "proposed": "exp30", "tau_sweep": ["exp15", "exp60"]},
    }
    rows = [
        {"run_id": r, "seed": s, "dataset": "mice", "metric": "mean_f1", "value": 0.5}
        for r in exp["runs"]
        for s in SEEDS
    ]
    drawn = {}
    monkeypatch.setattr(
        figures,
        "_metric_panels",
        lambda figs, exp, table, lines, xlabel, name, *a: drawn.setdefault(name, lines),
    )
    figures.ablation_figures(plotting.Figures(tmp_path), exp, tables.Table(rows))
    ((_, sweep, taus),) = drawn["tau_sensitivity"]
    assert sweep == ["exp15", "exp30", "exp60"] and taus == [15.0, 30.0, 60.0]


def test_per_task_panels_show_each_datasets_own_tasks(tmp_path):
    exp = {"pretrain_dataset": "mice", "runs": {"a": {"method": "byol"}}, "study": {}}
    rows = [
        {"run_id": "a", "seed": s, "dataset": ds, "metric": m, "value": 0.5}
        for s in SEEDS
        for ds, tasks in (("mice", ["chases", "close"]), ("rats", ["Pinning"]))
        for m in ["mean_f1", *(f"f1/{t}" for t in tasks)]
    ]
    import matplotlib.pyplot as plt

    seen = []
    figs = plotting.Figures(tmp_path)
    orig = figs.save
    figs.save = lambda fig, name, caption: (
        seen.extend([t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]),
        orig(fig, name, caption),
    )
    figures.per_task_f1(figs, exp, tables.Table(rows), ["chases", "close", "Pinning"], [])
    plt.close("all")
    assert seen.count("chases") == 1 and seen.count("Pinning") == 1  # one panel each
    assert seen.count("mean F1\n(per-frame)") == 2


def test_the_efficiency_table_names_what_each_runs_seeds_trained_on():
    from twbyol.report import _device

    assert _device({0: 0, 1: 0}) == "CPU"
    assert _device({0: 4, 1: 4}) == "4 GPUs"
    assert _device({0: 1}) == "1 GPU"
    assert _device({0: 0, 1: 4}) == "CPU / 4 GPUs (seeds differ)"


def test_evaluate_runs_on_its_files_alone(study, tmp_path):
    """With its files alone (no --config, no identity flags) the evaluate stage scores with
    EvaluateConfig's defaults and the input window the embed stage recorded beside the
    embedding: the same evaluation as with every setting given in a --config file. Without a
    recorded window it says which fields to give; an unknown key is an error naming it."""
    root, paths = study
    labels, index = paths["mice"]
    emb = root / "embed" / "byol_uniform" / "seed0" / "mice.npy"
    local = tmp_path / "mice.npy"
    local.write_bytes(emb.read_bytes())
    files = ["--labels", str(labels), "--index", str(index), "--embedding", str(local)]
    files += ["--protocol", str(labels).removesuffix(".npz") + ".protocol.json"]
    with pytest.raises(SystemExit):
        evaluate.main([*files, "--out", str(tmp_path / "none.json")])
    io.write_npz(
        tmp_path / "mice.projection.npz",
        mean=np.zeros(0),
        axes=np.zeros((0, 0)),
        window=np.array([1, 1, 1]),
    )
    assert evaluate.main([*files, "--out", str(tmp_path / "alone.json")]) == 0
    given = evaluate.EvaluateConfig(num_frames=1, frame_stride=1, window_stride=1).to_dict()
    io.write_json(tmp_path / "settings.json", given)
    config_file = ["--config", str(tmp_path / "settings.json")]
    evaluate.main([*files, *config_file, "--out", str(tmp_path / "given.json")])
    a, b = (io.read_json(tmp_path / f"{n}.json") for n in ("alone", "given"))
    a.pop("timings_s"), b.pop("timings_s")
    assert a == b and a["window"]["num_frames"] == 1 and a["run_id"] is None
    assert (a["split_seed"], a["test_size"], a["knn_k"]) == (42, 0.1, 20)
    with pytest.raises(ValueError, match="knn_kk"):
        evaluate.main([*files, "--config", '{"knn_kk": 5}', "--out", str(tmp_path / "x.json")])


def test_an_experiment_without_a_study_block_gets_a_report_of_its_runs(study, tmp_path):
    """No `study:`: stats still writes the comparison (criteria NOT RUN, no baseline to test
    against) and the report shows the runs' per-behaviour scores, time budgets and figures."""
    root, paths = study
    exp = io.read_json(paths["experiment"])
    del exp["study"]
    io.write_json(tmp_path / "experiment.json", exp)
    assert (
        stats.main(
            [
                "--experiment",
                str(tmp_path / "experiment.json"),
                "--evaluations",
                *map(str, paths["evaluations"]),
                "--efficiency",
                *map(str, paths["efficiency"]),
                "--out-dir",
                str(tmp_path / "stats"),
            ]
        )
        == 0
    )
    crit = io.read_json(tmp_path / "stats" / "criteria.json")
    assert {c["verdict"] for c in crit["criteria"]} == {"NOT RUN"}
    budget = tmp_path / "export" / "tw" / "seed0" / "mice.time_budget.csv"
    budget.parent.mkdir(parents=True)
    budget.write_text(
        "behaviour,videos,total_s,percent,bouts,mean_bout_s\n"
        "groom,2,3.0000,15.0000,4,0.7500\nrear,0,0.0000,0.0000,0,\n"
    )
    (tmp_path / "images").mkdir()
    io.write_json(tmp_path / "images" / "manifest.json", {"figures": []})
    out = tmp_path / "report.md"
    assert (
        report.main(
            [
                "--experiment",
                str(tmp_path / "experiment.json"),
                "--stats-dir",
                str(tmp_path / "stats"),
                "--figures-manifest",
                str(tmp_path / "images" / "manifest.json"),
                "--protocols",
                str(paths["mice"][0]).removesuffix(".npz") + ".protocol.json",
                "--time-budgets",
                str(budget),
                "--out",
                str(out),
                "--code-version",
                "v0-test",
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "## Pass criteria" not in text and "## Verdict" not in text
    assert "No `study:` block" in text
    per_b = text.split("## Per-behaviour scores")[1]
    assert "| groom | supervised |" in per_b or "| groom | " in per_b
    assert "| groom | 2 | 3.0 | 15.0 | 4 | 0.75 |" in text
    assert "| rear | 0 | 0.0 | 0.0 | 0 | n/a |" in text
    assert "[bouts](export/tw/seed0/mice.bouts.csv)" in text


def test_each_frame_is_coloured_by_its_labelled_behaviour():
    """Codes into ["unlabelled", "none", *behaviours]: the rarer behaviour wins a frame where
    two are 1; "none" where every label is 0; "unlabelled" where none is labelled."""
    from twbyol.data.artifacts import Labels

    nan = np.nan
    y = np.array(
        [
            [1, 1, 0, 0, nan, 1, 0, 1],  # walk: common
            [0, 1, 0, 0, nan, 0, 0, 0],  # rear: rare
        ],
        np.float32,
    )
    lab = Labels(
        ["walk", "rear"],
        ["Discrete", "Discrete"],
        np.zeros(2, bool),
        y,
        ["a"],
        np.array([0]),
        np.array([8]),
    )
    names, codes = figures.frame_behaviours(lab)
    assert names == ["unlabelled", "none", "walk", "rear"]
    assert [names[c] for c in codes] == [
        "walk", "rear", "none", "none", "unlabelled", "walk", "none", "walk"
    ]  # fmt: skip


def test_retrieval_neighbours_come_from_other_clips():
    """Two clips of slowly drifting embeddings: a query's nearest frames are its own clip's
    neighbours, which the demo leaves out; with one clip, those beyond its window."""
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(200, 8)), axis=0)
    u = walk / np.linalg.norm(walk, axis=1, keepdims=True)
    clip_of = np.repeat([0, 1], 100)
    nn, sim = figures.neighbours(u, 50, clip_of, 4, exclude=30)
    assert (clip_of[nn] == 1).all() and np.isinf(sim[:100]).all()
    # with clips enough, the best frame of each: 5 clips of 40, 4 neighbours from 4 others
    clip_of = np.repeat(np.arange(5), 40)
    nn, sim = figures.neighbours(u, 50, clip_of, 4, exclude=30)
    assert sorted(clip_of[nn]) == [0, 2, 3, 4]
    assert all(sim[j] == sim[clip_of == clip_of[j]].max() for j in nn)
    nn, _ = figures.neighbours(u, 50, np.zeros(200, int), 4, exclude=30)
    assert (np.abs(nn - 50) > 30).all()


def _eff(run, seed, samples, gpu_hours=0.0, wall=100.0):
    return {
        "run_id": run, "seed": seed, "samples": samples, "gpu_hours": gpu_hours, "wall_s": wall,
        "samples_per_s": samples / wall, "peak_mem_mb": 500.0, "peak_mem_kind": "cpu_peak_rss",
    }  # fmt: skip


def test_the_efficiency_figure_shows_only_what_means_something_where_the_runs_trained(
    tmp_path, monkeypatch
):
    """On CPU: no wall time, no samples/s, the step benchmark's ratio instead; on GPUs:
    GPU-hours vs the baseline. The untrained control is left out (no '-100 %')."""
    exp = {
        "runs": {"base": {"method": "byol"}, "tw": {"method": "byol"}, "ctrl": {}},
        "study": {"baseline": "base", "proposed": "tw", "control": "ctrl"},
    }
    bench = {
        "proposed": "tw",
        "baseline": "base",
        "comparison": {"median_ratio": 1.03, "ci95": [1.01, 1.05]},
    }
    cpu = [_eff(r, s, 0 if r == "ctrl" else 640) for r in ("base", "tw", "ctrl") for s in (0, 1)]
    figs = plotting.Figures(tmp_path / "cpu")
    shown = {}
    table = figures.plt.Axes.table

    def spy(self, cellText, colLabels, **kw):
        shown["cells"], shown["header"] = cellText, colLabels
        return table(self, cellText=cellText, colLabels=colLabels, **kw)

    monkeypatch.setattr(figures.plt.Axes, "table", spy)
    figures.efficiency_table(figs, exp, cpu, bench)
    caption = figs.entries[-1]["caption"]
    assert shown["header"] == ["run", "seeds", "samples", "peak memory (MB)",
                               "step time vs baseline"]  # fmt: skip
    rows = {c[0]: c for c in shown["cells"]}
    assert set(rows) == {"base", "tw"} and rows["tw"][-1] == "+3.0% [+1.0%, +5.0%]"
    assert "Not trained (no cost): ctrl" in caption and "measure the machine" in caption
    gpu = [_eff(r, s, 640, gpu_hours=2.0 if r == "tw" else 1.0) for r in ("base", "tw")
           for s in (0, 1)] + [_eff("ctrl", 0, 0)]  # fmt: skip
    figures.efficiency_table(plotting.Figures(tmp_path / "gpu"), exp, gpu, bench)
    rows = {c[0]: c for c in shown["cells"]}
    assert shown["header"][2:4] == ["GPU-hours", "vs baseline"]
    assert rows["tw"][3] == "+100.0%" and "ctrl" not in rows
