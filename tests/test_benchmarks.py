"""benchmarks/calibrate_synthetic.py runs the study's own runs end to end and reports them.

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
        [sys.executable, "benchmarks/calibrate_synthetic.py", "--exp", "smoke",
         "--runs", "random_init", "byol_uniform", "--seeds", "0", "--tag", "t",
         "--set", "training.epochs=1"],
        cwd=wd, env=env_with_venv(), capture_output=True, text=True, timeout=900, check=False)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    # the override runs as its own experiment: the study's results/smoke is untouched
    assert not (wd / "results" / "smoke").exists()
    out = json.loads((wd / "results/smoke_t/calibration/t/calibration.json").read_text())
    assert out["set"] == ["training.epochs=1"]
    assert [(r["run"], r["seed"]) for r in out["rows"]] == [("random_init", 0), ("byol_uniform", 0)]
    labels = json.loads((wd / "results/smoke_t/data/mice/tasks.json").read_text())
    for r in out["rows"]:
        assert math.isfinite(r["mean_f1"]) and 0.0 <= r["mean_f1"] <= 1.0
        assert set(r["f1"]) and not set(r["f1"]) & set(labels["sequence_level_tasks"])
    assert "mean F1 over seeds" in p.stdout

    # the same tag with other settings must not silently reuse (resume) the first runs
    again = subprocess.run(
        [sys.executable, "benchmarks/calibrate_synthetic.py", "--exp", "smoke",
         "--runs", "byol_uniform", "--seeds", "0", "--tag", "t", "--set", "training.epochs=2"],
        cwd=wd, env=env_with_venv(), capture_output=True, text=True, timeout=900, check=False)
    assert again.returncode != 0
    assert "an earlier calibration with other settings" in again.stderr, again.stderr[-3000:]
