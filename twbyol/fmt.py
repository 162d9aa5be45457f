"""Numbers as text: the one formatter of the report, the results blocks (docs/results.md), the
figures' labels and the stages' logs. Every helper writes "n/a" for a missing
number (None or NaN)."""

from __future__ import annotations

import math


def missing(x) -> bool:
    """None or a float NaN: a number that was not measured."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def num(x, digits: int = 3) -> str:
    """Fixed point: 0.356."""
    return "n/a" if missing(x) else f"{x:.{digits}f}"


def sci(x) -> str:
    """Scientific, 3 significant digits: 4.05e-04."""
    return "n/a" if missing(x) else f"{x:.2e}"


def points(x) -> str:
    """An F1 difference in points (F1 x 100), signed: +3.53."""
    return "n/a" if missing(x) else f"{x * 100:+.2f}"


def pct(x, digits: int = 1, signed: bool = True) -> str:
    """A fraction as a percentage: +17.5% (signed) or 80% (digits=0, signed=False)."""
    return "n/a" if missing(x) else f"{x:{'+' if signed else ''}.{digits}%}"


def sig(x) -> str:
    """A criterion's value or threshold: numbers to 4 significant digits, dicts as k: v."""
    if isinstance(x, dict):
        return ", ".join(f"{k}: {sig(v)}" for k, v in x.items())
    return "n/a" if missing(x) else (f"{x:.4g}" if isinstance(x, (int, float)) else str(x))


def pval(p) -> str:
    """A p-value: 3 decimals, scientific below 0.001."""
    return "n/a" if missing(p) else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")
