"""Progress lines of a long loop: done / total, rate and ETA, every N units and at least once
a minute (as SlowFast's and dino's metric loggers print them), so that a 50-epoch run on a
cluster can be watched with `tail -f`.

    progress = Progress(total=4000, unit="step", every=50)
    for step in range(1, 4001):
        ...
        if progress.due(step):
            print(progress.line(step, loss=f"{loss:.4f}"), flush=True)

Rates and the ETA count from the progress's first unit (`start`: a resumed run's step), not
from 0, so a resumed run's ETA is its own.
"""

from __future__ import annotations

import time
from datetime import timedelta

INTERVAL_S = 60.0  # at least one line a minute: a cluster user sees the job alive


def duration(seconds: float) -> str:
    """`1:02:03` (h:mm:ss), days included (`2 days, 3:04:05`); `?` when unknown."""
    if seconds != seconds or seconds == float("inf") or seconds < 0:
        return "?"
    return str(timedelta(seconds=round(seconds)))


class Progress:
    """When to print a progress line, and the line: `{unit} k/K (p %) | extra fields | rate
    {units}/s | elapsed | eta`. Due every `every` units (0: never by count), at least every
    `interval_s` seconds, and at the first and the last unit."""

    def __init__(
        self,
        total: int,
        unit: str,
        every: int = 0,
        interval_s: float = INTERVAL_S,
        start: int = 0,
        clock=time.monotonic,
    ) -> None:
        self.total, self.unit, self.every, self.interval_s = total, unit, every, interval_s
        self.start, self.clock = start, clock
        self.t0 = self.t_last = clock()

    def due(self, done: int) -> bool:
        first = done == self.start + 1  # the loop is running: its first unit is done
        if first or done >= self.total or (self.every and done % self.every == 0):
            return True
        return self.clock() - self.t_last >= self.interval_s

    def rate(self, done: int) -> float:
        """Units per second since `start` (0 before the first unit)."""
        elapsed = self.clock() - self.t0
        return (done - self.start) / elapsed if elapsed > 0 else 0.0

    def line(self, done: int, prefix: str = "", **fields: str) -> str:
        """The line at `done` units; marks the time of the last line (for `due`). `fields`
        (already formatted) go between the count and the rate, in order."""
        now = self.clock()
        self.t_last = now
        rate = self.rate(done)
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        parts = [f"{self.unit} {done}/{self.total} ({100 * done / max(self.total, 1):.0f} %)"]
        parts += [f"{k.replace('_', ' ')} {v}" for k, v in fields.items()]
        parts += [
            f"{rate:.3g} {self.unit}s/s",
            f"elapsed {duration(now - self.t0)}",
            f"eta {duration(eta) if done < self.total else '0:00:00'}",
        ]
        return (f"{prefix} " if prefix else "") + " | ".join(parts)
