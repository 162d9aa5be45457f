"""Time twbyol.probe.linear_probe against sklearn's RidgeClassifier on the same split.

    python benchmarks/bench_probe.py [--n 1000000] [--dim 128] [--dtype float32]

Both sides do the whole probe: fit on n frames, predict n/10 test frames, binary F1.
The embedding contract is float32, so that is the default; --dtype float64 times the
float64-input path. Prints both wall times, their ratio and the F1 of each (they must agree).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000, help="training frames")
    ap.add_argument("--dim", type=int, default=128, help="embedding width (MABe22 caps it at 128)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = ap.parse_args()

    from sklearn.linear_model import RidgeClassifier
    from sklearn.metrics import f1_score

    from twbyol.probe import linear_probe

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

    times = {}
    f1s = {}
    for name, fn in (("twbyol", ours), ("sklearn", sklearn)):
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            f1s[name] = fn()
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    print(
        f"linear probe, {args.n:,} x {args.dim} {args.dtype} train, {n_test:,} test, best of {args.repeats}"
    )
    print(f"  twbyol.probe : {times['twbyol']:.3f} s   F1 = {f1s['twbyol']:.6f}")
    print(f"  sklearn      : {times['sklearn']:.3f} s   F1 = {f1s['sklearn']:.6f}")
    print(
        f"  speed-up     : {times['sklearn'] / times['twbyol']:.1f}x   |F1 diff| = {abs(f1s['twbyol'] - f1s['sklearn']):.2e}"
    )


if __name__ == "__main__":
    main()
