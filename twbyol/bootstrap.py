"""The clip bootstrap: a mean-F1 difference's uncertainty over test clips as well as seeds.

The paired t-test (twbyol.stats) treats the test set as fixed: its CI covers the seeds'
spread, not which clips happened to be held out. Here both are resampled, paired. Each
evaluation stores, per binary headline task, each test clip's (tp, fp, fn) of the probe's
calls (twbyol.probe.clip_counts); F1 of a set of clips is 2 tp / (2 tp + fp + fn) of their
summed counts, so one bootstrap draw is:

1. seeds drawn with replacement from the seeds both runs have (one draw for both runs);
2. per split (tasks scored on the same test clips), clips drawn with replacement (one draw
   for both runs and every seed: the comparison stays paired by clip);
3. each run's mean F1 over the tasks, per drawn seed, from the drawn clips' summed counts;
   the difference of the two runs' seed means.

With every seed and clip drawn once, step 3 gives exactly the difference of the runs' mean
`mean_f1` (tested). The interval is the percentile interval of the draws.
"""

from __future__ import annotations

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


def counts_array(counts: dict[int, dict[str, dict]], seeds: list[int], task: str) -> np.ndarray:
    """(S, C, 3) int array of one task's per-clip (tp, fp, fn) for `seeds`."""
    return np.stack(
        [np.stack([counts[s][task][k] for k in ("tp", "fp", "fn")], axis=1) for s in seeds]
    ).astype(np.int64)


def _f1(c: np.ndarray) -> np.ndarray:
    """F1 from (..., 3) summed (tp, fp, fn); 0 where nothing is positive (sklearn's)."""
    tp, fp, fn = c[..., 0], c[..., 1], c[..., 2]
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)


def clip_bootstrap(
    run: dict[int, dict[str, dict]],
    ref: dict[int, dict[str, dict]],
    tasks: list[str],
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> dict:
    """Bootstrap over seeds and test clips of mean F1(run) - mean F1(ref) over `tasks`.

    Args:
        run, ref: {seed: {task: clip_counts dict}} of each run's evaluations of one dataset.
        tasks: the headline tasks (the mean F1's); each must have counts in every seed.
    Returns:
        {"estimate", "ci", "level", "p_greater" (share of draws <= 0: a one-sided bootstrap
        p of run > ref), "n_boot", "n_seeds", "n_clips": {first task of a split: clips},
        "resamples", "reason"}; with a task lacking counts or fewer than 2 common seeds the
        numbers are NaN and `reason` says why.
    """
    seeds = sorted(set(run) & set(ref))
    nan = float("nan")
    out = {
        "estimate": nan,
        "ci": [nan, nan],
        "level": level,
        "p_greater": nan,
        "n_boot": n_boot,
        "n_seeds": len(seeds),
        "n_clips": {},
        "resamples": "seeds and test clips, paired (the same draw for both runs)",
        "reason": None,
    }
    missing = [t for t in tasks if any(t not in run[s] or t not in ref[s] for s in seeds)]
    if len(seeds) < 2 or not tasks or missing:
        out["reason"] = (
            f"{len(seeds)} common seed(s): the bootstrap needs at least 2"
            if len(seeds) < 2
            else f"no per-clip counts for {missing or 'any task'} (a task that is not binary, or "
            "an evaluation written by an older twbyol evaluate)"
        )
        return out
    # tasks sharing their test clips share one clip draw
    groups: dict[tuple, list[str]] = {}
    for t in tasks:
        clips = tuple(run[seeds[0]][t]["clips"])
        for side in (run, ref):
            for s in seeds:
                if tuple(side[s][t]["clips"]) != clips:
                    raise ValueError(f"task {t}: seed {s}'s test clips differ between evaluations")
        groups.setdefault(clips, []).append(t)
    rng = np.random.default_rng(seed)
    n_s = len(seeds)
    w_seed = rng.multinomial(n_s, np.full(n_s, 1 / n_s), size=n_boot)  # (B, S)
    f1_run = np.zeros((n_boot + 1, n_s))  # row 0: every seed and clip once
    f1_ref = np.zeros((n_boot + 1, n_s))
    for clips, group in groups.items():
        n_c = len(clips)
        w = np.vstack([np.ones(n_c), rng.multinomial(n_c, np.full(n_c, 1 / n_c), size=n_boot)])
        out["n_clips"][group[0]] = n_c
        for t in group:
            for side, acc in ((run, f1_run), (ref, f1_ref)):
                c = counts_array(side, seeds, t)  # (S, C, 3)
                acc += _f1(np.einsum("bc,sck->bsk", w, c))
    diff = (f1_run - f1_ref) / len(tasks)  # (B + 1, S): per seed, mean over tasks
    out["estimate"] = float(diff[0].mean())
    draws = (w_seed * diff[1:]).sum(axis=1) / n_s
    tail = (1 - level) / 2
    out["ci"] = [float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))]
    out["p_greater"] = float(np.mean(draws <= 0))
    return out
