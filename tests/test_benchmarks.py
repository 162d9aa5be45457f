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


def test_train_step_benchmark_reports_consistent_figures():
    """Each comparison prints both variants' median ms/step and clips/s and their ratio:
    the clips/s are the batch over the step time, the ratio that of the two step times
    (to the printed rounding), for both comparisons (TW-BYOL/uniform, ours/pytorchvideo)."""
    import re

    out = _bench("benchmarks/bench_train_step.py", "--batch", "4", "--steps", "2", "--amp", "bf16")
    rows = re.findall(r"^\s+(\S+)\s+([\d.]+) ms/step = \s*([\d.]+) clips/s", out, re.M)
    ratios = re.findall(r"ratio (\S+) / (\S+) = ([\d.]+)", out)
    assert [r[0] for r in rows] == ["tw-byol", "uniform", "ours", "pytorchvideo"], out
    assert [r[:2] for r in ratios] == [("tw-byol", "uniform"), ("ours", "pytorchvideo")], out
    ms = {name: float(m) for name, m, _ in rows}
    # ms are printed to 0.1: +-0.05 ms of rounding, a relative 0.05 / ms in what they give
    for _, m, rate in rows:
        assert float(m) > 0
        assert float(rate) == pytest.approx(4e3 / float(m), rel=0.06 / float(m), abs=0.051)
    for a, b, r in ratios:
        rel = 0.06 / ms[a] + 0.06 / ms[b]
        assert float(r) == pytest.approx(ms[a] / ms[b], rel=rel, abs=2e-3), out


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


def _benchmark_module(name):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import importlib

    return importlib.import_module(name)


def test_gpu_run_peaks_are_those_of_the_card_and_of_the_precision_run():
    import torch

    b = _benchmark_module("bench_gpu_run")
    # the card by its CUDA name, the PCIe and NVL H100s and the A10 told apart
    assert b.peak_of("NVIDIA H100 80GB HBM3", "bf16") == 989.0
    assert b.peak_of("NVIDIA H100 PCIe", "tf32") == 378.0
    assert b.peak_of("NVIDIA H100 NVL", "fp32") == 60.0
    assert b.peak_of("NVIDIA H200", "tf32") == 495.0
    assert b.peak_of("NVIDIA A100-SXM4-80GB", "fp32") == 19.5
    assert b.peak_of("NVIDIA A10", "bf16") == 125.0
    assert b.peak_of("NVIDIA L40S", "fp16") == 362.0
    assert b.peak_of("Tesla V100-SXM2-32GB", "bf16") is None
    assert b.peak_of("NVIDIA GeForce GTX 1080", "fp32") is None
    # autocast runs every kind of FLOP in its dtype; fp32 runs TF32 where torch allows it
    assert b.step_precisions("bfloat16") == {"conv": "bf16", "matmul": "bf16"}
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, False
        prec = b.step_precisions(None)
        assert prec == {"conv": "tf32", "matmul": "fp32"}
        # 9 parts at 495 and 1 at 67: the time of a step at peak is their sum
        peak = b.effective_peak("NVIDIA H100 80GB HBM3", {"conv": 9, "matmul": 1}, prec)
        assert peak == pytest.approx(10 / (9 / 495 + 1 / 67))
        torch.backends.cudnn.allow_tf32 = False
        assert b.step_precisions(None) == {"conv": "fp32", "matmul": "fp32"}
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    assert b.effective_peak("Tesla V100", {"conv": 1, "matmul": 0}, {"conv": "tf32"}) is None
    # the line names the precision and the card; an unknown card gets no share
    peak, note = b.peak_for("NVIDIA H200", {"conv": 5, "matmul": 0}, "bfloat16", "bf16", None)
    assert peak == 989.0 and "bf16" in note and "H200" in note
    peak, note = b.peak_for("NVIDIA RTX 6000 Ada", {"conv": 5, "matmul": 0}, None, "fp32", None)
    assert peak is None and "not in the peak table" in note
    assert b.flops_by_kind({"aten.convolution": 3, "aten.mm": 2, "aten.addmm": 1}) == {
        "conv": 3,
        "matmul": 3,
    }


def test_augment_device_check_passes_one_grey_level_and_fails_two(tmp_path):
    import torch

    from twbyol.data.augment import augment_batch
    from twbyol.data.crops import CropConfig
    from twbyol.models.backbones import STD

    check = _benchmark_module("check_augment_device")
    crop = CropConfig(rho=2, num_frames=4, stride=3, crop_size=32, photometric_first=True)
    raw, params = check.device_batch(tmp_path, crop, batch=4, size=48)
    assert raw.dtype == torch.uint8 and raw.shape == (4, 2, 4, 48, 48)
    a = augment_batch(raw, params, crop)
    assert check.grey_difference(a, augment_batch(raw, params, crop)) == {
        "max_grey": 0,
        "fraction": 0.0,
        "ok": True,
    }
    one = a.clone()
    one.view(-1)[::7] += 1 / 255 / STD  # one grey level on every 7th value
    d = check.grey_difference(a, one)
    assert d["ok"] and d["max_grey"] == 1 and d["fraction"] == pytest.approx(1 / 7, abs=1e-3)
    two = a.clone()
    two.view(-1)[5] -= 2 / 255 / STD
    assert check.grey_difference(a, two)["ok"] is False
    # without CUDA the script has nothing to compare, and says so without failing
    out = _bench("benchmarks/check_augment_device.py") if not _cuda() else ""
    assert _cuda() or "nothing to compare" in out


def _cuda():
    import torch

    return torch.cuda.is_available()


def test_ddp_benchmark_runs_each_method_on_two_gloo_processes(tmp_path):
    """benchmarks/bench_ddp.py through torchrun with 2 gloo processes, tiny sizes: every
    method trains through the real loop, with a finite rate, and both processes issue the
    same collectives (the package's and every torch.distributed call) at every step."""
    out_json = tmp_path / "ddp.json"
    env = {**env_with_venv(), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "benchmarks/bench_ddp.py",
            "--backend",
            "gloo",
            "--method",
            "byol",
            "moco_v3",
            "time_contrast",
            "--backbone",
            "tiny",
            "--crop-size",
            "32",
            "--frame-size",
            "40",
            "--frames",
            "150",
            "--per-gpu-batch",
            "4",
            "--num-workers",
            "0",
            "--steps",
            "10",
            "--work",
            str(tmp_path),
            "--json",
            str(out_json),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = {m["method"]: m for m in json.loads(out_json.read_text())}
    assert set(res) == {"byol", "moco_v3", "time_contrast"}
    for method, m in res.items():
        assert m["world"] == 2 and m["backend"] == "gloo" and m["steps"] == 10, method
        assert math.isfinite(m["steps_per_s"]) and m["steps_per_s"] > 0, method
        assert m["samples_per_s"] == pytest.approx(m["steps_per_s"] * 4 * 2)
        assert m["syncs_per_step"] is None  # counted on CUDA only
        ranks = m["ranks"]
        assert [r["rank"] for r in ranks] == [0, 1]
        for key in ("package_calls_per_step", "torch_calls_per_step"):
            assert ranks[0][key] == ranks[1][key], (method, key, ranks)
        # DDP all-reduces the gradients every step; the contrastive methods gather the
        # other process's embeddings every step
        assert m["ddp_bucket_all_reduces_per_step"] >= 1, method
        gathers = sum(v for k, v in m["torch_calls_per_step"].items() if "gather" in k)
        assert gathers >= (1 if method != "byol" else 0), (method, m["torch_calls_per_step"])
        assert len({r["ddp_bucket_all_reduces_per_step"] for r in ranks}) == 1, ranks


@pytest.mark.skipif(_cuda(), reason="on a CUDA machine the suite would run in full")
def test_gpu_suite_stops_before_any_benchmark_without_cuda(tmp_path):
    p = subprocess.run(
        ["bash", "benchmarks/gpu_suite.sh", str(tmp_path / "logs")],
        cwd=REPO,
        env={**env_with_venv(), "PYTHON": sys.executable, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert p.returncode == 2, p.stdout[-2000:] + p.stderr[-2000:]
    assert "no usable CUDA device" in p.stderr
    env = (tmp_path / "logs" / "env.txt").read_text()
    assert "torch.cuda.is_available() False" in env
    assert sorted(f.name for f in (tmp_path / "logs").iterdir()) == ["env.txt"]


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
        doc = {
            "mean_f1": f1,
            "rho": float("nan"),
            "timings_s": {"probe": wall},
            "steady_samples_per_s": 100 / wall,  # efficiency.json's steady rate: measured
        }
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
