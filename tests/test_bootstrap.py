"""The clip bootstrap (twbyol.bootstrap) and the per-clip counts it reads (probe.clip_counts)."""

import numpy as np
import pytest

from twbyol.bootstrap import clip_bootstrap
from twbyol.probe import classification_scores, clip_counts


def _counts(rng, n_clips, frames, p_true, p_hit, p_false):
    """clip_counts of random per-frame calls: positives at rate p_true, called with
    probability p_hit, negatives called with p_false; per clip rates as given (arrays)."""
    ys, ps, lens = [], [], []
    for c in range(n_clips):
        y = (rng.random(frames) < p_true[c]).astype(float)
        call = np.where(y == 1, rng.random(frames) < p_hit[c], rng.random(frames) < p_false[c])
        ys.append(y)
        ps.append(call.astype(float))
        lens.append(frames)
    y, p = np.concatenate(ys), np.concatenate(ps)
    return y, p, clip_counts(y, p, np.ones_like(y, bool), [f"c{i}" for i in range(n_clips)], lens)


def _f1(c):
    tp, fp, fn = (np.sum(c[k]) for k in ("tp", "fp", "fn"))
    return 2 * tp / (2 * tp + fp + fn)


def test_clip_counts_sum_to_the_binary_f1_and_skip_unscored_frames():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(float)
    p = (rng.random(300) < 0.4).astype(float)
    ok = rng.random(300) < 0.8
    y[~ok] = np.nan
    c = clip_counts(y, p, ok, ["a", "b", "c"], [100, 150, 50])
    assert c["clips"] == ["a", "b", "c"] and len(c["tp"]) == 3
    assert _f1(c) == pytest.approx(classification_scores(y[ok], p[ok])["f1"])
    # by hand on the second clip
    s = slice(100, 250)
    yy, pp, oo = y[s], p[s], ok[s]
    assert c["tp"][1] == np.sum(oo & (yy == 1) & (pp == 1))
    assert c["fp"][1] == np.sum(oo & (yy == 0) & (pp == 1))
    assert c["fn"][1] == np.sum(oo & (yy == 1) & (pp == 0))
    with pytest.raises(ValueError, match="300 frames for 2 clips"):
        clip_counts(y, p, ok, ["a", "b"], [100, 150])


def _study(rng, n_seeds, n_clips, hit_run, hit_ref, tasks=("walk", "rest")):
    run, ref = {}, {}
    for s in range(n_seeds):
        run[s], ref[s] = {}, {}
        for t in tasks:
            p_true = rng.uniform(0.1, 0.5, n_clips)
            run[s][t] = _counts(rng, n_clips, 200, p_true, hit_run(s), np.full(n_clips, 0.1))[2]
            ref[s][t] = _counts(rng, n_clips, 200, p_true, hit_ref(s), np.full(n_clips, 0.1))[2]
    return run, ref, list(tasks)


def test_the_point_estimate_is_the_difference_of_the_runs_mean_f1():
    rng = np.random.default_rng(1)
    run, ref, tasks = _study(rng, 3, 6, lambda s: np.full(6, 0.8), lambda s: np.full(6, 0.6))
    res = clip_bootstrap(run, ref, tasks, n_boot=200)
    by_hand = np.mean([np.mean([_f1(run[s][t]) - _f1(ref[s][t]) for t in tasks]) for s in range(3)])
    assert res["estimate"] == pytest.approx(by_hand)
    assert res["ci"][0] < by_hand < res["ci"][1]
    assert res["n_seeds"] == 3 and res["n_clips"] == {"walk": 6} and res["reason"] is None
    assert res["p_greater"] < 0.05  # a 20-point recall gain on every clip


def test_a_gain_on_a_few_clips_only_is_wide_where_the_seed_t_interval_is_not():
    """Known answer: the run beats the reference on 2 of 12 clips, by the same amount for
    every seed. Seeds alone see a tight gain; resampling the clips shows how much of it
    hangs on those 2 clips (the interval reaches far below the estimate, near 0)."""
    rng = np.random.default_rng(2)
    hit = np.full(12, 0.6)
    better = hit.copy()
    better[:2] = 1.0
    run, ref, tasks = _study(rng, 5, 12, lambda s: better, lambda s: hit, tasks=("walk",))
    res = clip_bootstrap(run, ref, tasks, n_boot=2000)
    est = res["estimate"]
    diffs = [_f1(run[s]["walk"]) - _f1(ref[s]["walk"]) for s in range(5)]
    t_half = 2.776 * np.std(diffs, ddof=1) / np.sqrt(5)  # t(0.975, 4)
    assert res["ci"][1] - res["ci"][0] > 2 * (2 * t_half)
    assert res["ci"][0] < est / 3


def test_under_the_null_the_interval_covers_zero_at_about_its_level():
    """Noise: both runs call with the same rates. Over 40 simulated studies the 95 % interval
    covers 0 in at least 85 % of them (binomial: 38 expected; 34 is p < 0.01 too few)."""
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(40):
        run, ref, tasks = _study(
            rng, 4, 10, lambda s: np.full(10, 0.7), lambda s: np.full(10, 0.7), ("a",)
        )
        lo, hi = clip_bootstrap(run, ref, tasks, n_boot=400)["ci"]
        covered += lo <= 0 <= hi
    assert covered >= 34


def test_missing_counts_or_one_seed_give_a_reason_not_a_number():
    rng = np.random.default_rng(4)
    run, ref, tasks = _study(rng, 2, 4, lambda s: np.full(4, 0.7), lambda s: np.full(4, 0.7))
    res = clip_bootstrap(run, ref, tasks + ["multi"], n_boot=50)
    assert np.isnan(res["estimate"]) and "multi" in res["reason"]
    one = clip_bootstrap({0: run[0]}, {0: ref[0]}, tasks, n_boot=50)
    assert np.isnan(one["ci"][0]) and "at least 2" in one["reason"]
    ref[1]["walk"] = {**ref[1]["walk"], "clips": ref[1]["walk"]["clips"][::-1]}
    with pytest.raises(ValueError, match="task walk: seed 1's test clips differ"):
        clip_bootstrap(run, ref, tasks, n_boot=50)
