"""The study's statistics as pure functions of numbers: the paired t-test with its interval,
the power of a paired one-sided t-test (its MDE and the seeds an effect needs, at the
observed paired SD and at the SD's upper confidence bound), and the Pitman-Morgan test of
paired variances with its power. No study, table or sentence here: twbyol.stats applies
them to the runs, twbyol.report words the outcome.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable

import numpy as np

ALPHA = 0.05  # the tests' level (criterion 1's one-sided p)
POWER = 0.80  # the power at which the smallest detectable effect (MDE) is stated
MAX_SEEDS = 100  # seeds needed are searched up to this many; beyond: "> 100"


# ---- the test ---------------------------------------------------------------------------


def paired_ttest(a: Iterable[float], b: Iterable[float], alternative: str = "greater") -> dict:
    """Paired t-test of a - b (scipy.stats.ttest_rel), with the 95 % t-interval of the mean.

    Args:
        a, b: (n,) paired values (seed i of a with seed i of b). Pairs with a NaN are dropped.
        alternative: "greater" (H1: mean(a - b) > 0), "less" or "two-sided"; sets `p`.
    Returns:
        {"n", "mean_diff", "sd_diff", "t", "df", "p", "p_two_sided", "ci95": [lo, hi],
         "alternative", "reason"}. With fewer than 2 pairs, or differences of zero
        variance (where scipy answers t = inf, p = 0), t, p and the CI are NaN and
        `reason` says why; otherwise reason is None.
    """
    from scipy import stats  # lazy: keep `twbyol stats --help` instant

    a, b = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_ttest: {a.shape} and {b.shape} values cannot be paired")
    ok = ~(np.isnan(a) | np.isnan(b))
    d = a[ok] - b[ok]
    n = len(d)
    nan = float("nan")
    out = {
        "n": n,
        "mean_diff": float(d.mean()) if n else nan,
        "sd_diff": float(d.std(ddof=1)) if n > 1 else nan,
        "t": nan,
        "df": n - 1 if n else 0,
        "p": nan,
        "p_two_sided": nan,
        "ci95": [nan, nan],
        "alternative": alternative,
        "reason": None,
    }
    if n < 2:
        out["reason"] = f"{n} paired value(s): a t-test needs at least 2"
    elif out["sd_diff"] <= 1e-12 * max(1.0, abs(out["mean_diff"])):
        out["reason"] = "the differences have zero variance: t and p are undefined"
    else:
        res = stats.ttest_rel(a[ok], b[ok], alternative=alternative)
        half = stats.t.ppf(0.975, n - 1) * out["sd_diff"] / math.sqrt(n)
        out.update(
            t=float(res.statistic),
            p=float(res.pvalue),
            p_two_sided=float(stats.ttest_rel(a[ok], b[ok]).pvalue),
            ci95=[out["mean_diff"] - half, out["mean_diff"] + half],
        )
    return out


# ---- power ------------------------------------------------------------------------------
# What the seeds can detect, at the SD the study observed. The SD of a handful of seeds is
# itself uncertain (3 seeds: 2 df), so these numbers say what the data can and cannot show,
# not a guarantee.


def ttest_power(effect: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the one-sided paired t-test (H1: mean difference > 0, level `alpha`, n pairs)
    when the differences are N(effect, sd^2): P(T > t_{1-alpha, n-1}) for T noncentral t with
    n - 1 df and noncentrality effect * sqrt(n) / sd (exact). NaN for n < 2 or sd <= 0."""
    from scipy import stats  # lazy: as in paired_ttest

    if n < 2 or not sd > 0:
        return float("nan")
    crit = stats.t.ppf(1 - alpha, n - 1)
    return float(stats.nct.sf(crit, n - 1, effect * math.sqrt(n) / sd))


def min_detectable_effect(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true mean difference the one-sided paired t-test detects with probability
    `power` at n pairs of differences of SD `sd` (solves ttest_power = power; the noncentral t,
    not the normal approximation, which understates it badly at 3 seeds). NaN for n < 2 or
    sd <= 0."""
    from scipy import optimize, stats  # lazy: as in paired_ttest

    if n < 2 or not sd > 0:
        return float("nan")
    crit, df = stats.t.ppf(1 - alpha, n - 1), n - 1
    hi = 1.0
    while stats.nct.sf(crit, df, hi) < power:
        hi *= 2
    nc = optimize.brentq(lambda nc: stats.nct.sf(crit, df, nc) - power, 0.0, hi, xtol=1e-12)
    return nc * sd / math.sqrt(n)


def _smallest_n(ok: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Smallest n in (lo, hi] with ok(n), for ok rising with n (power does) and false at lo;
    None when ok(hi) is false."""
    if not ok(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def seeds_needed(
    effect: float, sd: float, alpha: float = ALPHA, power: float = POWER, max_n: int = MAX_SEEDS
) -> int | None:
    """Smallest n >= 2 at which the one-sided paired t-test detects a true difference `effect`
    with probability >= `power` (differences of SD `sd`); None when more than `max_n` would be
    needed, or effect <= 0 or sd <= 0 (no n will do, or any)."""
    if not (effect > 0 and sd > 0):
        return None
    return _smallest_n(lambda n: ttest_power(effect, sd, n, alpha) >= power, 1, max_n)


def sd_upper(sd: float, n: int, level: float = 0.95) -> float:
    """The upper end of the two-sided `level` confidence interval of a normal SD estimated
    from n values: sd * sqrt((n - 1) / chi2_{(1 - level)/2, n - 1}). A handful of seeds
    estimates an SD poorly (3 seeds: the bound is 6.3x the estimate), so an MDE from the point
    SD alone overstates what the seeds can show. NaN for n < 2."""
    from scipy import stats  # lazy: as in paired_ttest

    if n < 2 or not sd >= 0:
        return float("nan")
    return sd * math.sqrt((n - 1) / stats.chi2.ppf((1 - level) / 2, n - 1))


def power_summary(sd: float, n: int, target: float | None, basis: str) -> dict:
    """What a paired comparison of n seeds with paired SD `sd` can detect: the MDE at POWER,
    the same at the SD's upper 95 % bound (`mde_sd_upper`: what the seeds can promise), the
    power at `target` (the effect the study asks about) and the seeds it would need.

    Returns {"alpha", "power", "alternative", "n", "sd_diff", "sd_diff_upper95", "mde",
    "mde_sd_upper", "target_effect", "target_basis", "power_at_target", "seeds_needed",
    "max_seeds", "seeds_needed_text", "reason"}; the MDEs and power_at_target are NaN (reason
    says why) with fewer than 2 seeds or zero SD; seeds_needed is None beyond max_seeds
    (text "> 100")."""
    nan = float("nan")
    reason = None
    if n < 2:
        reason = f"{n} paired seed(s): a power analysis needs at least 2"
    elif not sd > 0:
        reason = "the paired differences have zero SD: no power analysis from the observed SD"
    ok = reason is None
    has_target = target is not None and target > 0
    need = seeds_needed(target, sd) if ok and has_target else None
    text = str(need) if need is not None else (f"> {MAX_SEEDS}" if ok and has_target else "n/a")
    return {
        "alpha": ALPHA,
        "power": POWER,
        "alternative": "greater",
        "n": n,
        "sd_diff": sd,
        "sd_diff_upper95": sd_upper(sd, n) if ok else nan,
        "mde": min_detectable_effect(sd, n) if ok else nan,
        "mde_sd_upper": min_detectable_effect(sd_upper(sd, n), n) if ok else nan,
        "target_effect": target if has_target else None,
        "target_basis": basis,
        "power_at_target": ttest_power(target, sd, n) if ok and has_target else nan,
        "seeds_needed": need,
        "max_seeds": MAX_SEEDS,
        "seeds_needed_text": text,
        "reason": reason,
    }


def pitman_morgan(x: Iterable[float], y: Iterable[float], alpha: float = ALPHA) -> dict:
    """Pitman-Morgan test of equal variances of paired samples (Pitman 1939; Morgan 1939).

    cov(x + y, x - y) = var(x) - var(y), so the variances are equal exactly when the sum and
    the difference are uncorrelated; t = r sqrt(n - 2) / sqrt(1 - r^2) (r: their sample
    correlation) has a t distribution with n - 2 df under H0 and bivariate normality, whatever
    the correlation of x and y (which an F-test would ignore). Inverting the test of
    var(x) = c var(y) gives bounds on the ratio: ratio * (K -+ sqrt(K^2 - 1)),
    K = 1 + 2 (1 - r_xy^2) t_{1-alpha, n-2}^2 / (n - 2).

    Args:
        x, y: (n,) paired values (seed i of x with seed i of y); pairs with a NaN are dropped.
    Returns:
        {"n", "var_x", "var_y", "ratio" (var_x / var_y), "r_xy", "r", "t", "df",
         "p_greater" (H1: var_x > var_y), "p_less" (H1: var_x < var_y), "ratio_lower",
         "ratio_upper" (one-sided 1 - alpha bounds), "reason"}. With fewer than 3 pairs, or a
        run whose values do not vary, the test is undefined: t, p and bounds NaN, reason why.
    """
    from scipy import stats  # lazy: as in paired_ttest

    x, y = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"pitman_morgan: {x.shape} and {y.shape} values cannot be paired")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n, nan = len(x), float("nan")
    vx = float(np.var(x, ddof=1)) if n > 1 else nan
    vy = float(np.var(y, ddof=1)) if n > 1 else nan
    out = {
        "n": n,
        "var_x": vx,
        "var_y": vy,
        "ratio": vx / vy if n > 1 and vy > 0 else nan,
        "r_xy": nan,
        "r": nan,
        "t": nan,
        "df": max(n - 2, 0),
        "p_greater": nan,
        "p_less": nan,
        "ratio_lower": nan,
        "ratio_upper": nan,
        "reason": None,
    }
    scale = max(1.0, float(np.abs(np.r_[x, y]).max())) if n else 1.0
    if n < 3:
        out["reason"] = f"{n} paired seed(s): the Pitman-Morgan test needs at least 3"
        return out
    if min(vx, vy) <= (1e-12 * scale) ** 2:
        out["reason"] = "one run's values do not vary across seeds: the test is undefined"
        return out
    r_xy = float(np.corrcoef(x, y)[0, 1])
    r = float(np.corrcoef(x + y, x - y)[0, 1])
    df = n - 2
    t = r * math.sqrt(df) / math.sqrt(max(1.0 - r * r, 1e-300))
    crit = stats.t.ppf(1 - alpha, df)
    k = 1 + 2 * (1 - r_xy**2) * crit**2 / df
    root = math.sqrt(max(k * k - 1, 0.0))
    out.update(
        r_xy=r_xy,
        r=r,
        t=t,
        p_greater=float(stats.t.sf(t, df)),
        p_less=float(stats.t.cdf(t, df)),
        ratio_lower=float(out["ratio"] * (k - root)),
        ratio_upper=float(out["ratio"] * (k + root)),
    )
    return out


def pitman_morgan_power(ratio: float, n: int, alpha: float = ALPHA, rho: float = 0.0) -> float:
    """Power of the one-sided Pitman-Morgan test, in the direction of `ratio` (var_x / var_y:
    < 1 tests 'lower', > 1 'higher'), at n pairs of bivariate normal values with correlation
    `rho`. The sum and the difference then have correlation
    c = (ratio - 1) / sqrt((ratio + 1)^2 - 4 rho^2 ratio); given the n differences the test's t
    is noncentral t (n - 2 df) with noncentrality |c| / sqrt(1 - c^2) * sqrt(W), W ~ chi2(n - 1),
    so the power is that noncentral t's tail averaged over W: exact up to the quadrature
    (96-point Gauss-Legendre over W's quantiles, within 1e-5 of adaptive quadrature).
    NaN for n < 3."""
    from scipy import stats  # lazy: as in paired_ttest

    if n < 3 or not ratio > 0:
        return float("nan")
    c = abs(ratio - 1) / math.sqrt((ratio + 1) ** 2 - 4 * rho**2 * ratio)
    if c >= 1:
        return 1.0
    df, crit, gain = n - 2, stats.t.ppf(1 - alpha, n - 2), c / math.sqrt(1 - c * c)
    u, weight = np.polynomial.legendre.leggauss(96)
    w = stats.chi2.ppf((u + 1) / 2, n - 1)  # (96,) quantiles of W
    return float(np.sum(weight / 2 * stats.nct.sf(crit, df, gain * np.sqrt(w))))


@functools.lru_cache(maxsize=64)  # a function of (n, ratio, alpha) alone, and ~0.4 s a call
def variance_test_power(n: int, ratio: float = 2.0, alpha: float = ALPHA) -> dict:
    """What the one-sided Pitman-Morgan test can show at n seeds, the two runs' seeds taken as
    uncorrelated (the correlation that gives it the least power): its power against a
    `ratio`-fold variance difference (either direction: the power at 1/ratio is the same),
    the ratio it detects with POWER (inf beyond e^64), and the seeds a `ratio`-fold
    difference needs (None beyond MAX_SEEDS)."""
    from scipy import optimize  # lazy: as in paired_ttest

    def shortfall(log_ratio: float) -> float:
        return pitman_morgan_power(math.exp(log_ratio), n, alpha) - POWER

    detectable = float("nan")
    if n >= 3:
        hi = 1.0  # power rises with the ratio: bracket the log-ratio that reaches POWER
        while shortfall(hi) < 0 and hi < 64:
            hi *= 2
        detectable = (
            math.exp(optimize.brentq(shortfall, 0.0, hi, xtol=1e-6))
            if shortfall(hi) >= 0
            else float("inf")
        )
    return {
        "n": n,
        "alpha": alpha,
        "power": POWER,
        "ratio": ratio,
        "rho": 0.0,
        "power_at_ratio": pitman_morgan_power(ratio, n, alpha),
        "detectable_ratio": detectable,
        "seeds_needed": _smallest_n(
            lambda m: pitman_morgan_power(ratio, m, alpha) >= POWER, 2, MAX_SEEDS
        ),
        "max_seeds": MAX_SEEDS,
    }
