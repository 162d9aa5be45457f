"""Rodent behaviour simulator: semi-Markov action bouts -> kinematics -> 12 keypoints per animal.

Each animal runs a semi-Markov chain over `Action`s: at the end of a bout it draws the next
action (weights scaled by the clip's activity/sociality) and a log-normal bout length, so bouts
span a few frames (sniffing) to tens of seconds (huddling). Social actions pick a partner;
those that need to reach the partner first (approach, nose contact, huddle, pin) only start
their bout clock once engaged, so labelled bouts have the drawn lengths. Chase, huddle and pin
*force* the partner (flee / hold still / lie supine) for the bout.

The kinematic state (position, heading, body bend, head yaw and extension, stride phase, tail
lag) is turned into the MABe22 12-keypoint skeleton every frame; the renderer draws only from
those keypoints, so keypoints and pixels agree by construction. Everything is in pixels of the
output frame, body lengths (L, nose to tail base) and seconds; the clip's fps converts.

    sim = simulate(MOUSE, n_frames=300, fps=30, arena=Arena.square(96, 0.92), rng=rng,
                   conditions=Conditions(activity=1.0, sociality=1.0, scale=np.ones(3)))
    sim.keypoints  # (300, 3, 12, 2) float32
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# the MABe22 mouse skeleton (a format fact, shared with the readers): twbyol.data.clips
from twbyol.data.clips import (
    CENTRE,
    LEFT_EAR,
    LEFT_FOREPAW,
    LEFT_HINDPAW,
    NECK,
    NOSE,
    RIGHT_EAR,
    RIGHT_FOREPAW,
    RIGHT_HINDPAW,
    TAIL_BASE,
)

# Points of the body proper (no tail): what "contact" and "close" measure between animals.
BODY_POINTS = (
    NOSE,
    LEFT_EAR,
    RIGHT_EAR,
    NECK,
    LEFT_FOREPAW,
    RIGHT_FOREPAW,
    CENTRE,
    LEFT_HINDPAW,
    RIGHT_HINDPAW,
    TAIL_BASE,
)

SOLO_KINDS = ("explore", "rest", "groom", "sniff")
SOCIAL_KINDS = ("approach", "contact", "chase", "huddle", "watch", "retreat", "pin")
# Social kinds that first move to the partner; their bout clock runs only once engaged.
REACH_KINDS = ("approach", "contact", "huddle", "pin")
# Social kinds that take over the partner's behaviour for the bout (it flees / holds / lies);
# a nose contact also holds a partner that was on its own, once engaged.
FORCING_KINDS = ("chase", "huddle", "pin")
FLEE, HOLD, SUPINE = 1, 2, 3  # forced states of a partner (0 = free)

REACH_TIMEOUT_S = 3.0  # give up reaching a partner after this long (it ran away)
ENGAGE_DIST = 0.1  # nose within this many L of the contact point -> engaged (a nape, on
# the partner's trunk, is reached to ~0.085 L: trunks do not interpenetrate)
LOSE_DIST = 0.4  # engaged contact lost when the nose drifts this far (L)


@dataclass(frozen=True)
class Action:
    """One entry of a species' ethogram.

    kind: one of SOLO_KINDS or SOCIAL_KINDS (what the controller does).
    weight: relative rate of choosing it at a bout end (before condition scaling).
    median_s, sigma: log-normal bout length: median in seconds, log-sd (large = wide spread).
    points: contact only: partner keypoints the nose goes to (one drawn per bout).
    head: head motion while engaged: "still", "osc" (sniffing, ~8 Hz yaw) or "jitter".
    head_amp: amplitude of that motion (rad).
    speed: chase/retreat speed in walking speeds; target_speed: speed of a chased partner.
    """

    name: str
    kind: str
    weight: float
    median_s: float
    sigma: float
    points: tuple[int, ...] = ()
    head: str = "still"
    head_amp: float = 0.0
    speed: float = 1.0
    target_speed: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SOLO_KINDS + SOCIAL_KINDS:
            raise ValueError(f"action {self.name!r}: unknown kind {self.kind!r}")
        if self.head not in ("still", "osc", "jitter"):
            raise ValueError(f"action {self.name!r}: unknown head motion {self.head!r}")


@dataclass(frozen=True)
class Species:
    """Body and motion constants of an animal kind, and its ethogram."""

    n_animals: int
    body_length: float  # nose to tail base, as a fraction of the frame size
    walk: float  # walking speed, body lengths per second
    turn_rate: float  # maximum turning rate, rad/s
    actions: tuple[Action, ...]

    def index(self, name: str) -> int:
        return [a.name for a in self.actions].index(name)


@dataclass(frozen=True)
class Conditions:
    """Clip-level modulators drawn from the sequence-level conditions (strain, lights, ...)."""

    activity: float  # scales walking speed and explore/sniff vs rest rates
    sociality: float  # scales the rates of social actions
    scale: np.ndarray  # (n_animals,) body-length multipliers (strain, individual size)


@dataclass(frozen=True)
class Arena:
    """Floor of the enclosure in pixels: a square or a disc centred at (cx, cy)."""

    shape: str  # "square" or "round"
    cx: float
    cy: float
    half: float  # half side (square) or radius (round)

    @classmethod
    def centred(cls, shape: str, size: int, fraction: float) -> Arena:
        return cls(shape, size / 2, size / 2, size * fraction / 2)

    def inside(self, p: np.ndarray, margin: float) -> bool:
        d = p - (self.cx, self.cy)
        h = self.half - margin
        return bool(np.all(np.abs(d) <= h)) if self.shape == "square" else bool(d @ d <= h * h)

    def clamp(self, p: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """Project points (n, 2) with per-point margins (n,) back into the floor."""
        c = np.array([self.cx, self.cy])
        d = p - c
        h = (self.half - margin)[:, None]
        if self.shape == "square":
            return c + np.clip(d, -h, h)
        r = np.linalg.norm(d, axis=1, keepdims=True)
        return c + d * np.minimum(1.0, h / np.maximum(r, 1e-9))


@dataclass(frozen=True)
class Simulation:
    """What a clip's animals did, frame by frame (T frames, n animals).

    keypoints: float32 (T, n, 12, 2) pixel coordinates, MABe22 keypoint order.
    body_length: float32 (n,) L of each animal in pixels.
    action: int16 (T, n) index into species.actions; -1 while forced by a partner.
    forced: int8 (T, n) 0 free, FLEE, HOLD or SUPINE.
    target: int8 (T, n) partner of the current social action, -1 if none.
    engaged: bool (T, n) social action engaged (partner reached) / solo action running.
    speed: float32 (T, n) speed in body lengths per second.
    arena_side: the floor's side (or diameter) in pixels.
    """

    keypoints: np.ndarray
    body_length: np.ndarray
    action: np.ndarray
    forced: np.ndarray
    target: np.ndarray
    engaged: np.ndarray
    speed: np.ndarray
    arena_side: float = float("inf")


def far_distance(
    body_length: np.ndarray | float, arena_side: float, in_lengths: float, share: float
) -> np.ndarray | float:
    """ "Far from the partner" in pixels: `in_lengths` body lengths, or `share` of the arena's
    side where the arena is too small for that (a zoomed-in benchmark arena holds ~3 body
    lengths, where 2.5 of them are almost never free). At realistic sizes (MABe22: ~8 body
    lengths across) the body-length rule holds."""
    return np.minimum(in_lengths * np.asarray(body_length), share * arena_side)


def _unit(a: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(a), np.sin(a)], axis=-1)


def _left(a: np.ndarray) -> np.ndarray:
    # Image coordinates have y pointing down, so an animal heading +x has its left at -y.
    return np.stack([np.sin(a), -np.cos(a)], axis=-1)


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def _angle(v: np.ndarray) -> float:
    return math.atan2(float(v[1]), float(v[0]))


def pose(
    centre: np.ndarray,
    heading: np.ndarray,
    bend: np.ndarray,
    head_yaw: np.ndarray,
    head_ext: np.ndarray,
    stride: np.ndarray,
    tail: np.ndarray,
    length: np.ndarray,
    groom: np.ndarray,
    supine: np.ndarray,
    paw_jitter: np.ndarray,
) -> np.ndarray:
    """The 12 keypoints (n, 12, 2) of n animals from their kinematic state.

    centre (n, 2) pixels; heading, bend, head_yaw (n,) rad; head_ext (n,) nose reach
    (1 = normal, <1 head tucked); stride (n,) gait phase; tail (n, 2) absolute angles of the
    two tail segments; length (n,) L in pixels; groom (n,) forepaws raised to the snout;
    supine (n,) lying on the back (left/right mirrored); paw_jitter (n, 2, 2) forepaw offsets in L.
    """
    L = length[:, None]
    side = np.where(supine, -1.0, 1.0)[:, None]
    front, back = heading + bend / 2, heading - bend / 2
    psi = heading + bend + head_yaw
    neck = centre + 0.27 * L * _unit(front)
    tail_base = centre - 0.33 * L * _unit(back)
    nose = neck + 0.40 * L * head_ext[:, None] * _unit(psi)
    ear_c = neck + 0.12 * L * _unit(psi)
    ear_l = side * 0.085 * L * _left(psi)
    step = 0.07 * L * np.sin(stride)[:, None]
    # Walking forepaws sit beside the neck and swing with the stride; grooming raises them
    # to the snout, where their jitter is the visible signature of the behaviour.
    paw_base = np.where(
        groom[:, None], nose - 0.12 * L * _unit(psi), neck - 0.03 * L * _unit(front)
    )
    paw_l = (
        side
        * np.where(groom[:, None], 0.05, 0.11)
        * L
        * np.where(groom[:, None], _left(psi), _left(front))
    )
    walk_f = np.where(groom[:, None], 0.0, step) * _unit(front)
    fore_l = paw_base + paw_l + walk_f + paw_jitter[:, 0] * L
    fore_r = paw_base - paw_l - walk_f + paw_jitter[:, 1] * L
    hind_c = tail_base + 0.13 * L * _unit(back)
    hind_l = side * 0.13 * L * _left(back)
    # Diagonal gait: the left hindpaw swings with the right forepaw.
    hind_s = step * _unit(back)
    tail_mid = tail_base - 0.42 * L * _unit(tail[:, 0])
    tail_tip = tail_mid - 0.42 * L * _unit(tail[:, 1])
    return np.stack(
        [
            nose,
            ear_c + ear_l,
            ear_c - ear_l,
            neck,
            fore_l,
            fore_r,
            centre,
            hind_c + hind_l - hind_s,
            hind_c - hind_l + hind_s,
            tail_base,
            tail_mid,
            tail_tip,
        ],
        axis=1,
    )


class _Agent:
    """Mutable behavioural state of one animal (the kinematic state lives in arrays)."""

    __slots__ = (
        "act",
        "deadline",
        "engaged",
        "flank",
        "forced",
        "forcer",
        "gait",
        "osc_f",
        "osc_p",
        "point",
        "side",
        "target",
        "timer",
        "turn",
        "wall_bias",
    )

    def __init__(self, rng: np.random.Generator) -> None:
        self.act, self.target, self.timer, self.engaged = 0, -1, 0, True
        self.deadline, self.point, self.forced, self.forcer, self.side = 0, NOSE, 0, -1, 1.0
        self.osc_f, self.osc_p, self.turn, self.gait, self.flank = 8.0, 0.0, 0.0, 1.0, 0.0
        self.wall_bias = rng.choice([-0.7, 0.7])


Control = tuple[float, float, float, float, bool, np.ndarray]
"""(desired heading, desired speed in L/s, head yaw, head extension, grooming, forepaw jitter)"""
_NO_JITTER = np.zeros((2, 2))
_NO_JITTER.flags.writeable = False


@dataclass(frozen=True, slots=True)
class _State:
    """What every control of animal `i` at time `t_s` (s) reads: its walking speed (L/s),
    the shared head wander, centre (2,) px, heading and body length."""

    i: int
    t_s: float
    walk: float
    wander_head: float
    c: np.ndarray
    th: float
    L: float


class _Simulator:
    def __init__(
        self,
        species: Species,
        n_frames: int,
        fps: float,
        arena: Arena,
        rng: np.random.Generator,
        cond: Conditions,
        size: int,
    ) -> None:
        self.sp, self.T, self.fps, self.dt = species, n_frames, fps, 1.0 / fps
        self.arena, self.rng, self.cond = arena, rng, cond
        n = species.n_animals
        self.n = n
        self.L = species.body_length * size * cond.scale * rng.uniform(0.94, 1.06, n)
        self.agents = [_Agent(rng) for _ in range(n)]
        self.kinds = [a.kind for a in species.actions]
        # kinematic state
        self.c = self._initial_positions()
        self.th = rng.uniform(-np.pi, np.pi, n)
        self.v = np.zeros(n)
        self.bend = np.zeros(n)
        self.phi = np.zeros(n)
        self.stride = rng.uniform(0, 2 * np.pi, n)
        back = self.th
        self.tail = np.stack([back, back], axis=1)
        self.kp = self._pose(np.ones(n), np.zeros(n, bool), np.zeros((n, 2, 2)))

    # ----------------------------------------------------------------- helpers
    def _initial_positions(self) -> np.ndarray:
        pts: list[np.ndarray] = []
        a, rng = self.arena, self.rng
        for i in range(self.n):
            for _ in range(1000):
                p = np.array([a.cx, a.cy]) + rng.uniform(-a.half, a.half, 2)
                if a.inside(p, 0.6 * self.L[i]) and all(
                    np.linalg.norm(p - q) > 1.2 * self.L.max() for q in pts
                ):
                    break
            pts.append(p)
        return np.array(pts)

    def _pose(self, ext: np.ndarray, groom: np.ndarray, jit: np.ndarray) -> np.ndarray:
        supine = np.array([ag.forced == SUPINE for ag in self.agents])
        return pose(
            self.c,
            self.th,
            self.bend,
            self.phi,
            ext,
            self.stride,
            self.tail,
            self.L,
            groom,
            supine,
            jit,
        )

    def _duration(self, act: Action) -> int:
        s = act.median_s * math.exp(self.rng.normal(0.0, act.sigma))
        return max(2, round(s * self.fps))

    def _dist(self, i: int, j: int) -> float:
        return float(np.linalg.norm(self.c[i] - self.c[j]))

    def _is_free_solo(self, k: int) -> bool:
        ag = self.agents[k]
        return ag.forced == 0 and self.kinds[ag.act] in SOLO_KINDS

    # ------------------------------------------------------------ bout choice
    def _eligible(self, kind: str, i: int, k: int) -> bool:
        d, L = self._dist(i, k), self.L[i]
        if self.agents[k].forced == SUPINE:
            return False
        if kind == "approach":
            return d > 1.6 * L
        if kind in ("chase", "huddle", "pin"):
            return self._is_free_solo(k) and d < 5 * L
        if kind == "watch":
            return d > far_distance(L, 2 * self.arena.half, 2.5, 0.5)
        if kind == "retreat":
            return d < 1.6 * L
        # contact: an animal runs off faster than it can be followed nose-first
        return d < 4 * L and self.v[k] < 0.7 * self.sp.walk

    def choose(self, i: int, prefer: int = -1) -> None:
        """End animal i's bout and start the next one (optionally with partner `prefer`)."""
        self._release(i)
        ag, sp, cond, rng = self.agents[i], self.sp, self.cond, self.rng
        weights = np.zeros(len(sp.actions))
        partners: list[list[int]] = [[] for _ in sp.actions]
        for j, act in enumerate(sp.actions):
            w = act.weight
            if act.kind in ("explore", "sniff"):
                w *= cond.activity
            elif act.kind == "rest":
                w /= cond.activity
            if act.kind in SOCIAL_KINDS:
                cands = [k for k in range(self.n) if k != i and self._eligible(act.kind, i, k)]
                if prefer >= 0:
                    # Right after an approach the animal usually engages the one it approached.
                    cands = [k for k in cands if k == prefer]
                    w *= 4.0 if act.kind in ("contact", "huddle") else 0.0
                partners[j] = cands
                w = w * cond.sociality if cands else 0.0
            weights[j] = w
        j = int(rng.choice(len(weights), p=weights / weights.sum()))
        act = sp.actions[j]
        ag.act, ag.target, ag.forced, ag.forcer = j, -1, 0, -1
        ag.timer = self._duration(act)
        ag.engaged = act.kind not in REACH_KINDS
        ag.deadline = int(REACH_TIMEOUT_S * self.fps)
        ag.osc_f, ag.osc_p = rng.uniform(6.0, 10.0), rng.uniform(0, 2 * np.pi)
        ag.flank = rng.choice([-0.9, 0.0, 0.0, 0.9]) if act.kind == "groom" else 0.0
        if act.kind in SOCIAL_KINDS:
            cands = partners[j]
            d = np.array([self._dist(i, k) for k in cands])
            p = np.exp(-d / (2 * self.L[i]))
            ag.target = int(cands[int(rng.choice(len(cands), p=p / p.sum()))])
            if act.points:
                ag.point = int(rng.choice(act.points))
            t = ag.target
            rel = self.c[i] - self.c[t]
            ag.side = 1.0 if rel @ _left(np.array(self.th[t])) >= 0 else -1.0
            if act.kind in FORCING_KINDS and (act.kind != "chase" or act.target_speed > 0):
                partner = self.agents[t]
                partner.forced, partner.forcer = (FLEE if act.kind == "chase" else HOLD), i
                partner.target = -1

    def _release(self, i: int) -> None:
        """Free the partner that animal i has been forcing, letting it choose anew."""
        ag = self.agents[i]
        t = ag.target
        if t >= 0 and self.agents[t].forced and self.agents[t].forcer == i:
            self.agents[t].forced, self.agents[t].forcer = 0, -1
            self.choose(t)

    # --------------------------------------------------------------- control
    def _control(self, i: int, f: int) -> Control:
        """(desired heading, desired speed in L/s, head yaw, head extension, grooming,
        forepaw jitter (2, 2)) of animal i at frame f: the shared random wandering, then the
        forced state's or the bout's own control (`_CONTROL`, one method per action kind)."""
        ag, sp, rng = self.agents[i], self.sp, self.rng
        t_s = f * self.dt
        # slow random wandering of heading, gait and head shared by several modes
        ag.turn += -ag.turn * 1.5 * self.dt + 0.9 * math.sqrt(self.dt) * rng.normal()
        ag.gait += (1.0 - ag.gait) * 1.0 * self.dt + 0.5 * math.sqrt(self.dt) * rng.normal()
        s = _State(
            i=i,
            t_s=t_s,
            walk=sp.walk * self.cond.activity,
            wander_head=0.25 * math.sin(2 * np.pi * 0.4 * t_s + ag.osc_p),
            c=self.c[i],
            th=float(self.th[i]),
            L=self.L[i],
        )
        if ag.forced:
            return self._forced(s)
        return _CONTROL[sp.actions[ag.act].kind](self, s)

    def _forced(self, s: _State) -> Control:
        """Fleeing from a chaser, or held still (struggling when pinned supine)."""
        ag, rng = self.agents[s.i], self.rng
        if ag.forced == FLEE:
            chaser = self.agents[ag.forcer]
            away = _angle(s.c - self.c[ag.forcer]) + 0.4 * ag.turn
            speed = self.sp.actions[chaser.act].target_speed * s.walk
            return away, speed, 0.0, 1.0, False, _NO_JITTER
        struggle = rng.normal(0, 0.05, (2, 2)) if ag.forced == SUPINE else _NO_JITTER
        return s.th, 0.0, s.wander_head * 0.3, 1.0, False, struggle

    def _head_motion(self, s: _State, base: float) -> tuple[float, float, np.ndarray]:
        """(yaw, extension, forepaw jitter) of the head while engaged, by the action's `head`."""
        ag, rng = self.agents[s.i], self.rng
        act = self.sp.actions[ag.act]
        if act.head == "osc":
            ph = 2 * np.pi * ag.osc_f * s.t_s + ag.osc_p
            return base + act.head_amp * math.sin(ph), 1.0 + 0.12 * math.sin(ph + 1.0), _NO_JITTER
        if act.head == "jitter":
            return (
                base + rng.normal(0, act.head_amp),
                1.0 + rng.normal(0, 0.08),
                rng.normal(0, 0.03, (2, 2)),
            )
        return base, 1.0, _NO_JITTER

    def _explore(self, s: _State) -> Control:
        ag = self.agents[s.i]
        speed = s.walk * min(max(ag.gait, 0.0), 1.3)
        return s.th + ag.turn, speed, s.wander_head, 1.0, False, _NO_JITTER

    def _rest(self, s: _State) -> Control:
        return s.th, 0.0, s.wander_head * 0.4, 1.0, False, _NO_JITTER

    def _groom(self, s: _State) -> Control:
        ag, rng = self.agents[s.i], self.rng
        yaw = ag.flank + rng.normal(0, self.sp.actions[ag.act].head_amp)
        return s.th, 0.0, yaw, 0.55 + rng.normal(0, 0.06), True, rng.normal(0, 0.04, (2, 2))

    def _sniff(self, s: _State) -> Control:
        yaw, ext, jit = self._head_motion(s, 0.0)
        return s.th + 0.5 * self.agents[s.i].turn, 0.25 * s.walk, yaw, ext, False, jit

    def _approach(self, s: _State) -> Control:
        ct = self.c[self.agents[s.i].target]
        return _angle(ct - s.c), 1.1 * s.walk, s.wander_head * 0.5, 1.0, False, _NO_JITTER

    def _watch(self, s: _State) -> Control:
        i, kp = s.i, self.kp
        tgt = self.agents[i].target
        gaze = _angle(kp[tgt, NOSE] - kp[i, NECK]) - s.th - self.bend[i]
        yaw = float(np.clip(_wrap(gaze), -0.6, 0.6))
        return _angle(self.c[tgt] - s.c), 0.0, yaw, 1.0, False, _NO_JITTER

    def _retreat(self, s: _State) -> Control:
        ag = self.agents[s.i]
        away = _angle(s.c - self.c[ag.target]) + 0.2 * ag.turn
        return away, self.sp.actions[ag.act].speed * s.walk, 0.0, 1.0, False, _NO_JITTER

    def _chase(self, s: _State) -> Control:
        ag = self.agents[s.i]
        tgt, top = ag.target, self.sp.actions[ag.act].speed * s.walk
        p = self.kp[tgt, TAIL_BASE]
        d = float(np.linalg.norm(self.kp[s.i, NOSE] - p)) / s.L
        v = top if d > 0.8 else min(top, self.v[tgt] + 3 * max(d - 0.3, 0))
        return _angle(p - s.c), v, 0.0, 1.0, False, _NO_JITTER

    def _contact(self, s: _State) -> Control:
        i, kp = s.i, self.kp
        p, spot = self._contact_spot(i)
        d = float(np.linalg.norm(kp[i, NOSE] - p)) / s.L
        aim = float(np.clip(_wrap(_angle(p - kp[i, NECK]) - s.th - self.bend[i]), -0.8, 0.8))
        if not self.agents[i].engaged:
            to_spot = float(np.linalg.norm(spot - s.c)) / s.L
            # Slow down as the nose nears the point, so as not to overshoot it.
            v = min(1.2 * s.walk, 4.0 * to_spot, 3.0 * d)
            if to_spot > 0.35:  # first get to where the body must stand ...
                return _angle(spot - s.c), v, aim, 1.0, False, _NO_JITTER
            # ... then face the point and close in nose first
            return _angle(p - s.c), v, aim, 1.0, False, _NO_JITTER
        yaw, ext, jit = self._head_motion(s, aim)
        # Keep the nose on the (possibly moving) partner point.
        return _angle(p - s.c), min(0.5 * s.walk, 3.0 * max(d - 0.03, 0)), yaw, ext, False, jit

    def _huddle(self, s: _State) -> Control:
        ag = self.agents[s.i]
        tgt = ag.target
        side = ag.side * _left(np.array(self.th[tgt]))
        p = self.c[tgt] + 0.45 * (s.L + self.L[tgt]) / 2 * side
        d = float(np.linalg.norm(s.c - p)) / s.L
        if not ag.engaged:
            return (
                _angle(p - s.c),
                min(1.1 * s.walk, 4.0 * d),
                s.wander_head * 0.5,
                1.0,
                False,
                _NO_JITTER,
            )
        return (
            float(self.th[tgt]),
            min(0.3 * s.walk, 3.0 * d),
            s.wander_head * 0.3,
            1.0,
            False,
            _NO_JITTER,
        )

    def _pin(self, s: _State) -> Control:
        ag = self.agents[s.i]
        if not ag.engaged:
            d = self._dist(s.i, ag.target) / s.L
            ct = self.c[ag.target]
            return _angle(ct - s.c), min(1.2 * s.walk, 4.0 * d), 0.0, 1.0, False, _NO_JITTER
        yaw, ext, jit = self._head_motion(s, 0.0)
        return s.th, 0.0, yaw, ext, False, jit

    def _contact_spot(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(contact point on the partner, where animal i's centre must be to touch it nose
        first from outside the partner's body), both (2,) pixels."""
        ag = self.agents[i]
        t = ag.target
        p = self.kp[t, ag.point]
        out = p - self.c[t]
        r = float(np.linalg.norm(out))
        # Points on the partner's midline (centre back, neck) are reached from its side.
        out = out / r if r > 0.15 * self.L[t] else ag.side * _left(np.array(self.th[t]))
        spot = p + 0.67 * self.L[i] * out  # 0.67 L: centre-to-nose reach
        return p, self.arena.clamp(spot[None], np.array([0.35 * self.L[i]]))[0]

    def _progress(self, i: int) -> None:
        """Advance animal i's bout clock; engage, lose contact, or end the bout."""
        ag, sp, L = self.agents[i], self.sp, self.L[i]
        if ag.forced:
            return
        kind, tgt = sp.actions[ag.act].kind, ag.target
        if kind in REACH_KINDS:
            if kind == "approach":
                if self._dist(i, tgt) < 1.3 * L:
                    self.choose(i, prefer=tgt if self.rng.random() < 0.7 else -1)
                    return
            elif kind == "contact":
                d = float(np.linalg.norm(self.kp[i, NOSE] - self.kp[tgt, ag.point])) / L
                if not ag.engaged and d < ENGAGE_DIST:
                    ag.engaged = True
                    # An investigated animal that was on its own stands still for it.
                    if self._is_free_solo(tgt):
                        self.agents[tgt].forced, self.agents[tgt].forcer = HOLD, i
                elif ag.engaged and d > LOSE_DIST:
                    ag.engaged, ag.deadline = False, int(2.0 * self.fps)
            elif kind == "huddle":
                p = self.c[tgt] + 0.45 * (L + self.L[tgt]) / 2 * ag.side * _left(
                    np.array(self.th[tgt])
                )
                if not ag.engaged and np.linalg.norm(self.c[i] - p) < 0.2 * L:
                    ag.engaged = True
            elif kind == "pin" and not ag.engaged and self._dist(i, tgt) < 0.3 * L:
                ag.engaged = True
                self.agents[tgt].forced = SUPINE
            if not ag.engaged:
                ag.deadline -= 1
                if ag.deadline <= 0:
                    self.choose(i)
                return
        ag.timer -= 1
        if ag.timer <= 0:
            self.choose(i)

    # ------------------------------------------------------------------ main
    def run(self) -> Simulation:
        T, n, dt, rng, sp = self.T, self.n, self.dt, self.rng, self.sp
        kps = np.empty((T, n, 12, 2), np.float32)
        action = np.empty((T, n), np.int16)
        forced = np.empty((T, n), np.int8)
        target = np.empty((T, n), np.int8)
        engaged = np.empty((T, n), bool)
        speed = np.empty((T, n), np.float32)
        for i in range(n):
            self.choose(i)
            # Desynchronise the first bouts so that clips do not all start with a change.
            self.agents[i].timer = max(1, int(self.agents[i].timer * rng.uniform(0.1, 1.0)))
        turn_step = sp.turn_rate * dt
        smooth = 1 - math.exp(-dt / 0.1)
        for f in range(T):
            th_des, v_des = np.empty(n), np.empty(n)
            yaw, ext = np.empty(n), np.empty(n)
            groom, jit = np.zeros(n, bool), np.zeros((n, 2, 2))
            for i in range(n):
                th_des[i], v_des[i], yaw[i], ext[i], groom[i], jit[i] = self._control(i, f)
                if self._wanders(i) and v_des[i] > 0:
                    th_des[i] = self._steer_off_walls(i, th_des[i])
            # kinematics
            dth = np.clip(_wrap(th_des - self.th), -turn_step, turn_step)
            self.th = _wrap(self.th + dth)
            self.v += (v_des - self.v) * smooth
            self.c = self.c + (self.v * self.L)[:, None] * _unit(self.th) * dt
            self.c = self.arena.clamp(self.c, 0.3 * self.L)
            self._separate()
            flank = np.array([ag.flank if g else 0.0 for ag, g in zip(self.agents, groom)])
            bend_target = np.where(groom, 0.6 * flank, np.clip(0.1 * dth / dt, -0.6, 0.6))
            self.bend += (bend_target - self.bend) * 0.3
            self.phi += (yaw - self.phi) * np.where(np.abs(yaw - self.phi) > 0.2, 0.6, 1.0)
            back = self.th - self.bend / 2
            # The tail trails the body: each segment relaxes toward the one before it.
            self.tail[:, 0] += 0.3 * _wrap(back - self.tail[:, 0]) + rng.normal(0, 0.03, n)
            self.tail[:, 1] += 0.25 * _wrap(self.tail[:, 0] - self.tail[:, 1])
            self.stride += 2 * np.pi * np.abs(self.v) / 0.55 * dt
            self.kp = self._pose(ext, groom, jit)
            kps[f] = self.kp
            for i, ag in enumerate(self.agents):
                action[f, i] = -1 if ag.forced else ag.act
                forced[f, i], target[f, i], engaged[f, i] = ag.forced, ag.target, ag.engaged
            speed[f] = self.v
            for i in range(n):
                self._progress(i)
        return Simulation(
            kps,
            self.L.astype(np.float32),
            action,
            forced,
            target,
            engaged,
            speed,
            float(2 * self.arena.half),
        )

    def _wanders(self, i: int) -> bool:
        """Moving without a goal (exploring, fleeing, ...): must be kept off the walls.
        Goal-directed movers aim at points inside the arena and need no steering."""
        ag = self.agents[i]
        return ag.forced == FLEE or (
            not ag.forced and self.kinds[ag.act] in ("explore", "sniff", "retreat")
        )

    def _steer_off_walls(self, i: int, th_des: float) -> float:
        L, c = self.L[i], self.c[i]
        ahead = c + (0.6 + 0.3 * self.v[i]) * L * _unit(np.array(th_des))
        if self.arena.inside(ahead, 0.45 * L):
            return th_des
        # Turn toward the centre, biased to one side per animal so it runs along the wall.
        return _angle(np.array([self.arena.cx, self.arena.cy]) - c) + self.agents[i].wall_bias

    def _forcing_kind(self, i: int, j: int) -> str | None:
        """Kind of the action by which one of animals i, j is forcing the other, if any."""
        for a, b in ((i, j), (j, i)):
            if self.agents[b].forced and self.agents[b].forcer == a:
                return self.kinds[self.agents[a].act]
        return None

    def _separate(self) -> None:
        """Push apart animals whose trunks (neck-to-tail-base capsules) interpenetrate.

        A pinning pair is exempt (one lies under the other)."""
        L = self.L[:, None]
        neck = self.c + 0.27 * L * _unit(self.th + self.bend / 2)  # as in pose()
        tail = self.c - 0.33 * L * _unit(self.th - self.bend / 2)
        for i in range(self.n):
            for j in range(i + 1, self.n):
                if self._forcing_kind(i, j) == "pin":
                    continue
                # Trunks are ~0.38 L wide; let them touch and squash a little, not overlap.
                min_sep = 0.32 * (self.L[i] + self.L[j]) / 2
                pi, pj = _closest_points(neck[i], tail[i], neck[j], tail[j])
                d = pi - pj
                r = float(np.linalg.norm(d))
                if r < min_sep:
                    push = (
                        (min_sep - r)
                        / 2
                        * (d / r if r > 1e-6 else _unit(np.array(self.th[i] + np.pi / 2)))
                    )
                    for k, sgn in ((i, 1), (j, -1)):
                        self.c[k] += sgn * push
                        neck[k] += sgn * push
                        tail[k] += sgn * push


def _closest_points(
    a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closest points between segments a0-a1 and b0-b1 (2-D)."""
    da, db, r = a1 - a0, b1 - b0, a0 - b0
    aa, bb, ab, ar, br = da @ da, db @ db, da @ db, da @ r, db @ r
    den = aa * bb - ab * ab
    s = float(np.clip((ab * br - bb * ar) / den, 0, 1)) if den > 1e-9 else 0.0
    t = float(np.clip((ab * s + br) / bb, 0, 1)) if bb > 1e-9 else 0.0
    s = float(np.clip((ab * t - ar) / aa, 0, 1)) if aa > 1e-9 else 0.0
    return a0 + s * da, b0 + t * db


def simulate(
    species: Species,
    n_frames: int,
    fps: float,
    arena: Arena,
    size: int,
    rng: np.random.Generator,
    conditions: Conditions,
) -> Simulation:
    """Simulate one clip of `n_frames` frames of `species.n_animals` animals (see module doc)."""
    return _Simulator(species, n_frames, fps, arena, rng, conditions, size).run()


# the control of each action kind (SOLO_KINDS + SOCIAL_KINDS), one method each
_CONTROL = {
    "explore": _Simulator._explore,
    "rest": _Simulator._rest,
    "groom": _Simulator._groom,
    "sniff": _Simulator._sniff,
    "approach": _Simulator._approach,
    "watch": _Simulator._watch,
    "retreat": _Simulator._retreat,
    "chase": _Simulator._chase,
    "contact": _Simulator._contact,
    "huddle": _Simulator._huddle,
    "pin": _Simulator._pin,
}
