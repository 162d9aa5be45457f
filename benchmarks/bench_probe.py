"""Time twbyol.probe.linear_probe against sklearn's RidgeClassifier on the same split.

    python benchmarks/bench_probe.py [--n 1000000] [--dim 128] [--dtype float32] [--tasks 8]

Both sides do the whole probe: fit on n frames, predict n/10 test frames, binary F1.
The embedding contract is float32, so that is the default; --dtype float64 times the
float64-input path. Two comparisons:
- one task: `linear_probe` vs one RidgeClassifier (bounded by the one Gram pass both make);
- `--tasks` tasks on the same embedding, as the evaluate stage probes them (behaviours from
  0.5 % to 87 % of frames, one with 30 % unlabelled frames): `linear_probes`, which shares
  one pass over the embedding between tasks (twbyol.probe.Moments), vs one RidgeClassifier
  per task, the MABe22 evaluator's way.
Prints wall times, ratios and the F1s (they must agree). Target: >= 5x sklearn.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def race(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Best wall time of `repeats` calls of each function, and each one's last result."""
    times, results = {}, {}
    for name, fn in fns.items():
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            results[name] = fn()
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    return times, results


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000, help="training frames")
    ap.add_argument("--dim", type=int, default=128, help="embedding width (MABe22 caps it at 128)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    ap.add_argument("--tasks", type=int, default=8, help="tasks probed on one embedding (0: skip)")
    args = ap.parse_args()

    from sklearn.linear_model import RidgeClassifier
    from sklearn.metrics import f1_score

    from twbyol.probe import linear_probe, linear_probes

    rng = np.random.default_rng(0)
    n_test = args.n // 10
    x = rng.standard_normal((args.n + n_test, args.dim), dtype=np.float32).astype(args.dtype)
    # A rare behaviour (~10 % positives) that a few directions predict imperfectly.
    score = x[:, :4].sum(axis=1) + rng.standard_normal(len(x)).astype(np.float32)
    y = (score > np.quantile(score, 0.9)).astype(np.float32)
    xtr, ytr, xte, yte = x[: args.n], y[: args.n], x[args.n :], y[args.n :]

    def ours() -> float:
        return linear_probe(xtr, ytr, xte, yte)["f1"]

    def sklearn() -> float:
        clf = RidgeClassifier(class_weight="balanced", alpha=1.0).fit(xtr, ytr)
        return float(f1_score(yte, clf.predict(xte)))

    times, f1s = race({"twbyol": ours, "sklearn": sklearn}, args.repeats)
    print(
        f"linear probe, {args.n:,} x {args.dim} {args.dtype} train, {n_test:,} test, "
        f"best of {args.repeats}"
    )
    print(f"  twbyol.probe : {times['twbyol']:.3f} s   F1 = {f1s['twbyol']:.6f}")
    print(f"  sklearn      : {times['sklearn']:.3f} s   F1 = {f1s['sklearn']:.6f}")
    print(
        f"  speed-up     : {times['sklearn'] / times['twbyol']:.1f}x   "
        f"|F1 diff| = {abs(f1s['twbyol'] - f1s['sklearn']):.2e}"
    )
    if args.tasks <= 0:
        return

    # ---- several tasks on one embedding --------------------------------------------------
    rates = np.geomspace(0.005, 0.87, args.tasks)  # share of positive frames per task
    ys = []
    for k, rate in enumerate(rates):
        s = (
            x[:, k % args.dim]
            + x[:, (k + 1) % args.dim]
            + rng.standard_normal(len(x)).astype(np.float32)
        )
        yk = (s > np.quantile(s, 1 - rate)).astype(np.float64)
        if k == 1:
            yk[rng.random(len(x)) < 0.3] = np.nan  # an annotator who labelled 70 % of frames
        ys.append(yk)
    y_all = np.stack(ys)
    ytr_all, yte_all = y_all[:, : args.n], y_all[:, args.n :]

    def ours_all() -> list[float]:
        return [
            r["f1"] for r in linear_probes(xtr, ytr_all, xte, yte_all, ["Discrete"] * args.tasks)
        ]

    def sklearn_all() -> list[float]:
        out = []
        for ytr_k, yte_k in zip(ytr_all, yte_all):
            a, b = ~np.isnan(ytr_k), ~np.isnan(yte_k)
            clf = RidgeClassifier(class_weight="balanced", alpha=1.0).fit(xtr[a], ytr_k[a])
            out.append(float(f1_score(yte_k[b], clf.predict(xte[b]))))
        return out

    times, f1s = race({"twbyol": ours_all, "sklearn": sklearn_all}, args.repeats)
    diff = max(abs(a - b) for a, b in zip(f1s["twbyol"], f1s["sklearn"]))
    print(
        f"{args.tasks} tasks on one embedding "
        f"(positives {rates[0]:.1%} to {rates[-1]:.0%} of frames), "
        f"best of {args.repeats}"
    )
    print(f"  twbyol.probe.linear_probes : {times['twbyol']:.3f} s")
    print(f"  sklearn, one fit per task  : {times['sklearn']:.3f} s")
    print(
        f"  speed-up                   : {times['sklearn'] / times['twbyol']:.1f}x   "
        f"max |F1 diff| = {diff:.2e}"
    )


if __name__ == "__main__":
    main()
