"""The benchmark's behaviours and their bouts.

The three mice of a clip act one behaviour at a time (the clip's state, as MABe22 labels the
triplet), each with its own position, heading, phase and rate. Every behaviour is a motion
over several frames, and none is faster than 5 Hz: the study's crops sample every 2nd frame
of 30 fps video (15 Hz), whose Nyquist limit is 7.5 Hz. A single frame does not tell rest
from walk, head scan or groom: their postures are drawn from the same range (a resting mouse
holds its head turned, its body bent, its paws down or raised to the snout); only rear has
a posture of its own (a shortened body), as rearing has from above.

Bouts follow a semi-Markov chain: at a bout's end the next behaviour is drawn by `weight`
among the others (no self-transitions), its length log-normal (median `median_s`, log-sd
`sigma`) and at least `MIN_BOUT_S`. Occupancy is then about weight x mean length: see
`expected_occupancy`, which the tests check against generated clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_BOUT_S = 0.3  # no bout shorter than this (9 frames at 30 fps; the crop span is 15)


@dataclass(frozen=True)
class Behaviour:
    """One behaviour: its name (the label's task), how often it is chosen at a bout's end,
    its bout length distribution, and the rate of its motion (Hz; 0: none)."""

    name: str
    weight: float
    median_s: float
    sigma: float
    rate_hz: tuple[float, float]  # range of the motion's frequency (per mouse and bout)
    motion: str  # what moves (docs/benchmark.md)

    @property
    def mean_s(self) -> float:
        """Mean of the log-normal bout length (seconds; the MIN_BOUT_S floor ignored)."""
        return self.median_s * math.exp(self.sigma**2 / 2)


ETHOGRAM = (
    Behaviour("rest", 1.0, 1.5, 0.5, (0.0, 0.0), "nothing: a held posture"),
    Behaviour("walk", 1.3, 1.5, 0.5, (2.5, 3.5), "the body travels ~1 body length/s; 3 Hz gait"),
    Behaviour("scan", 1.0, 1.5, 0.5, (2.0, 3.0), "head and front body sweep +-0.6 / +-0.22 rad"),
    Behaviour(
        "groom",
        0.9,
        1.5,
        0.5,
        (3.5, 4.5),
        "forepaws circle at the snout (0.09 L), head bobs, body rocks",
    ),
    Behaviour("rear", 0.2, 1.0, 0.4, (0.0, 0.0), "the body shortens to ~60 % and back"),
)
NAMES = tuple(b.name for b in ETHOGRAM)
MAX_RATE_HZ = max(hi for b in ETHOGRAM for _, hi in [b.rate_hz])


def expected_occupancy(ethogram: tuple[Behaviour, ...] = ETHOGRAM) -> np.ndarray:
    """Long-run share of frames in each behaviour: the chain's stationary distribution over
    bouts (choice by weight among the others) times each behaviour's mean bout length."""
    w = np.array([b.weight for b in ethogram])
    n = len(w)
    p = np.where(np.eye(n, dtype=bool), 0.0, w[None, :])
    p /= p.sum(1, keepdims=True)  # (n, n) transition matrix of the bout chain
    vals, vecs = np.linalg.eig(p.T)
    pi = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    pi = pi / pi.sum()
    time = pi * np.array([b.mean_s for b in ethogram])
    return time / time.sum()


def bouts(
    rng: np.random.Generator,
    n_frames: int,
    fps: float,
    ethogram: tuple[Behaviour, ...] = ETHOGRAM,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A clip's bouts: (behaviour index, first frame, length in frames) of each, covering
    n_frames. The first bout starts at a random point of its drawn length (the clip cuts
    into an ongoing bout), so bout starts are not aligned with the clip's start. `scale`
    multiplies every bout's length (the slow variant: bouts longer than the crops' gaps)."""
    w = np.array([b.weight for b in ethogram])
    state = int(rng.choice(len(w), p=w / w.sum()))
    kinds, starts, lengths = [], [], []
    t = 0
    first = True
    while t < n_frames:
        b = ethogram[state]
        n = round(scale * b.median_s * fps * math.exp(b.sigma * rng.normal()))
        n = max(round(MIN_BOUT_S * fps), n)
        if first:  # the clip opens inside a bout
            n = max(1, int(rng.integers(1, n + 1)))
            first = False
        n = min(n, n_frames - t)
        kinds.append(state)
        starts.append(t)
        lengths.append(n)
        t += n
        others = np.flatnonzero(np.arange(len(w)) != state)
        state = int(rng.choice(others, p=w[others] / w[others].sum()))
    return np.array(kinds), np.array(starts), np.array(lengths)


def states(kinds: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(T,) int8 behaviour of each frame from the bouts."""
    return np.repeat(kinds, lengths).astype(np.int8)
