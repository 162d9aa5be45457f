"""The step benchmark (criterion 4's CPU evidence): its statistics, its interleaving, and a
real run of the smoke experiment's two study runs on the tiny backbone."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats as sps

from twbyol import benchmark, io
from twbyol.experiment import run_config

REPO = Path(__file__).resolve().parents[1]


def test_median_ratio_interval_is_the_binomial_order_statistics():
    b = [1.0] * 20
    a = [1.0 + 0.01 * i for i in range(20)]  # ratios 1.00 .. 1.19, shuffled below
    order = np.random.default_rng(0).permutation(20)
    c = benchmark.median_ratio([a[i] for i in order], [b[i] for i in order])
    # n = 20: k = 6 (2 P(Bin(20, 1/2) <= 5) = 0.041 <= 0.05 < 2 P(.. <= 6) = 0.115)
    assert c["ci95"] == pytest.approx([1.05, 1.14]) and c["median_ratio"] == pytest.approx(1.095)
    assert c["ci_level"] == pytest.approx(1 - 2 * sps.binom.cdf(5, 20, 0.5)) and c["n_pairs"] == 20
    few = benchmark.median_ratio([1.0] * 5, [1.0] * 5)
    assert all(math.isnan(x) for x in few["ci95"])  # 5 pairs cannot give 95 %
    with pytest.raises(ValueError, match="paired"):
        benchmark.median_ratio([1.0], [1.0, 2.0])


def test_median_ratio_interval_covers_the_true_median():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        b = rng.lognormal(0, 0.2, 30)
        a = 1.03 * b * rng.lognormal(0, 0.1, 30)  # true median ratio 1.03
        lo, hi = benchmark.median_ratio(list(a), list(b))["ci95"]
        hits += lo <= 1.03 <= hi
    assert hits / 2000 >= 0.94  # coverage >= 95 % (exact: 0.957 at n = 30), SE 0.005


def test_interleaving_alternates_the_order():
    calls = []
    timers = {name: (lambda name=name: calls.append(name) or 1.0) for name in ("a", "b")}
    times = benchmark.interleaved(timers, steps=4, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert times == {"a": [1.0] * 4, "b": [1.0] * 4}


def test_step_benchmark_of_the_smoke_study_runs(tmp_path):
    exp = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["experiments"]["smoke"]
    prop, base = exp["study"]["proposed"], exp["study"]["baseline"]
    configs = {r: run_config("smoke", exp, r, 0) for r in (prop, base)}
    io.write_json(tmp_path / "configs.json", configs)
    out = tmp_path / "step_benchmark.json"
    assert (
        benchmark.main(
            [
                "--configs",
                str(tmp_path / "configs.json"),
                "--proposed",
                prop,
                "--baseline",
                base,
                "--steps",
                "6",
                "--batch",
                "2",
                "--warmup",
                "1",
                "--threads",
                "1",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = io.read_json(out)
    assert (res["proposed"], res["baseline"], res["device"]) == (prop, base, "cpu")
    assert res["crop"] == {k: exp["crop"][k] for k in ("rho", "num_frames", "crop_size")}
    assert res["backbone"] == exp["backbone"] and res["batch"] == 2 and res["steps"] == 6
    assert (
        res["runs"][prop]["weighting"] == "exponential"
        and res["runs"][base]["weighting"] == "uniform"
    )
    for r in res["runs"].values():
        assert len(r["times_s"]) == 6 and r["median_s"] > 0 and r["peak_mem_mb"] is None
    c = res["comparison"]
    assert c["n_pairs"] == 6 and 0.5 < c["median_ratio"] < 2  # the same work, give or take load
    with pytest.raises(ValueError, match="no run 'nope'"):
        benchmark.step_benchmark(configs, "nope", base)
