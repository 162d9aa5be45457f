"""The benchmark scripts run (their figures are for people to read, not for tests to time).

benchmarks/calibrate_synthetic.py runs the study's own runs end to end and reports them.

A run on the smoke experiment with one epoch (the figures themselves are the script's
business, not a test's): it must build the data through the workflow under a name of its
own when settings are overridden, train each run, and write one row per run x seed with a
finite mean F1 and an F1 for every per-frame task.
"""

import json
import math
import shutil
import subprocess
import sys

import pytest

from tests.test_workflow import REPO, copy_workflow, env_with_venv

pytestmark = pytest.mark.slow


def test_calibration_script_trains_embeds_and_scores_each_run(tmp_path):
    wd = copy_workflow(tmp_path)
    shutil.copytree(REPO / "benchmarks", wd / "benchmarks")
    p = subprocess.run(
        [
            sys.executable,
            "benchmarks/calibrate_synthetic.py",
            "--exp",
            "smoke",
            "--runs",
            "random_init",
            "byol_uniform",
            "--seeds",
            "0",
            "--tag",
            "t",
            "--set",
            "training.epochs=1",
        ],
        cwd=wd,
        env=env_with_venv(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    # the override runs as its own experiment: the study's results/smoke is untouched
    assert not (wd / "results" / "smoke").exists()
    out = json.loads((wd / "results/smoke_t/calibration/t/calibration.json").read_text())
    assert out["set"] == ["training.epochs=1"]
    assert [(r["run"], r["seed"]) for r in out["rows"]] == [("random_init", 0), ("byol_uniform", 0)]
    labels = json.loads((wd / "results/smoke_t/data/mice/mouse_round2_tasks.json").read_text())
    for r in out["rows"]:
        assert math.isfinite(r["mean_f1"]) and 0.0 <= r["mean_f1"] <= 1.0
        assert set(r["f1"]) and not set(r["f1"]) & set(labels["sequence_level_tasks"])
    assert "mean F1 over seeds" in p.stdout

    # the same tag with other settings must not silently reuse (resume) the first runs
    again = subprocess.run(
        [
            sys.executable,
            "benchmarks/calibrate_synthetic.py",
            "--exp",
            "smoke",
            "--runs",
            "byol_uniform",
            "--seeds",
            "0",
            "--tag",
            "t",
            "--set",
            "training.epochs=2",
        ],
        cwd=wd,
        env=env_with_venv(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert again.returncode != 0
    assert "an earlier calibration with other settings" in again.stderr, again.stderr[-3000:]


def _bench(*args, timeout=600):
    p = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env_with_venv(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout


def test_probe_benchmark_runs_and_its_probes_agree_with_sklearn():
    out = _bench(
        "benchmarks/bench_probe.py", "--n", "20000", "--dim", "32", "--repeats", "1", "--tasks", "4"
    )
    assert "4 tasks on one embedding" in out
    diffs = [float(line.rsplit("=", 1)[1]) for line in out.splitlines() if "F1 diff" in line]
    assert len(diffs) == 2 and max(diffs) < 1e-3, out


def test_train_step_benchmark_runs():
    out = _bench("benchmarks/bench_train_step.py", "--batch", "4", "--steps", "2", "--amp", "bf16")
    assert out.count("clips/s") == 4 and "ratio ours / pytorchvideo" in out, out


def test_gpu_run_benchmark_runs_the_pipelines_training_and_embedding(tmp_path):
    # on CPU with the smoke experiment's tiny backbone: that it works, not how fast
    out = _bench(
        "benchmarks/bench_gpu_run.py",
        "--experiment",
        "smoke",
        "--run",
        "twbyol_tau30",
        "--steps",
        "2",
        "--clips",
        "2",
        "--frames",
        "60",
        "--num-workers",
        "0",
        "--work",
        str(tmp_path),
    )
    eff = json.loads(out.split("efficiency.json:", 1)[1].splitlines()[0])
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 2 and eff["samples"] == last["samples"] and eff["samples_per_s"] > 0
    assert (tmp_path / "run" / "model.pt").is_file() and (tmp_path / "embedding.npy").is_file()
    assert "projection for smoke" in out


def test_local_runs_schedule_once_per_finished_job():
    """workflow/rules/scheduling.smk takes Snakemake's job-rate limiter off local runs: the
    scheduler then passes over the ready jobs once per finished job (plus the first pass),
    where by default every finished job adds a pass per second (snakemake#2354)."""
    jobs = 6
    out = _bench(
        "benchmarks/bench_scheduler.py", "--jobs", str(jobs), "--sleep", "1", "--cores", "1"
    )
    passes = {
        mode: int(line.rsplit("passes", 1)[1])
        for line in out.splitlines()
        for mode in ("default", "limiter off")
        if line.strip().startswith(mode)
    }
    assert passes["limiter off"] <= jobs + 1, out
    assert passes["default"] > passes["limiter off"], out


def test_compare_results_skips_measurements_and_finds_changed_results(tmp_path):
    import numpy as np

    sys.path.insert(0, str(REPO / "benchmarks"))
    import compare_results

    def tree(root, f1, wall, emb):
        (root / "evaluate").mkdir(parents=True)
        (root / "logs").mkdir()
        (root / "logs" / "x.log").write_text(f"took {wall} s")
        doc = {"mean_f1": f1, "rho": float("nan"), "timings_s": {"probe": wall}}
        (root / "evaluate" / "m.json").write_text(json.dumps(doc))
        rows = f"run\tmetric\tvalue\nA\tmean_f1\t{f1}\nA\tefficiency/wall_s\t{wall}\n"
        (root / "comparison.tsv").write_text(rows)
        np.save(root / "emb.npy", emb)

    e = np.arange(6, dtype=np.float32).reshape(2, 3)
    tree(tmp_path / "a", 0.31, 1.5, e)
    tree(tmp_path / "b", 0.31, 9.5, e)
    assert compare_results.compare(tmp_path / "a", tmp_path / "b") == []
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    tree(tmp_path / "c", 0.32, 1.5, e + 1)
    diffs = compare_results.compare(tmp_path / "a", tmp_path / "c")
    assert diffs == [
        "comparison.tsv: row 2: {'run': 'A', 'metric': 'mean_f1', 'value': '0.31'} != "
        "{'run': 'A', 'metric': 'mean_f1', 'value': '0.32'}",
        "emb.npy: bytes differ",
        "evaluate/m.json: /mean_f1: 0.31 != 0.32",
    ]
    (tmp_path / "c" / "extra.json").write_text("{}")
    assert "extra.json: only in" in compare_results.compare(tmp_path / "a", tmp_path / "c")[0]
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "c")]) == 1
