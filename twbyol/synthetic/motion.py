"""The three mice's kinematics for a clip's bouts, as MABe22's 12 keypoints per mouse.

Each mouse turns a bout into per-frame kinematic parameters (position, heading, body bend,
head yaw and reach, gait phase, forepaws raised and their offsets, tail, body length), drawn
afresh per mouse and bout within each behaviour's ranges, so that the three mice of a clip
move out of phase and two clips differ in every detail but the behaviour. Parameters blend
over `BLEND` frames at a bout change (no jumps). `twbyol.synthetic.social.pose` turns them into
keypoints; the renderer draws from the keypoints only, so the two agree by construction.
All lengths are in body lengths L (the body length in pixels is the same for every mouse of
every clip), times in seconds.
"""

from __future__ import annotations

import math

import numpy as np

from twbyol.synthetic.ethogram import ETHOGRAM, NAMES
from twbyol.synthetic.social import Arena, pose

N_MICE = 3
BLEND = 4  # frames over which the pose parameters move from one bout's to the next's
TURN_NOISE = 1.5  # rad/s: s.d. of a walking mouse's spontaneous turning (OU, 0.5 s)
MAX_TURN = 4.0  # rad/s: turning away from a wall or another mouse
HEAD_YAW = 0.7  # rad: a scan's head sweep
HELD_YAW = 0.85  # rad: the range of a held head turn (covers a scan's, body bend included)
BEND = 0.3  # rad: the range of a held body bend (a scan's sweep bends the body as far)
PAWS_UP = 0.4  # share of resting and scanning bouts held with the forepaws at the snout

_I = {name: i for i, name in enumerate(NAMES)}


def _blend(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """x (T, ...) with each bout's first BLEND frames moved linearly from the previous
    bout's last value to the bout's own."""
    x = x.copy()
    for b in starts[1:]:
        prev = x[b - 1].copy()
        for k in range(min(BLEND, len(x) - b)):
            a = (k + 1) / (BLEND + 1)
            x[b + k] = prev + (x[b + k] - prev) * a
    return x


def _bout_params(
    rng: np.random.Generator, kinds: np.ndarray, starts: np.ndarray, lengths: np.ndarray, fps: float
) -> dict[str, np.ndarray]:
    """One mouse's per-frame parameters but for position and heading (walking integrates
    them), from its own draws per bout. Keys: yaw, bend, ext, stride, paws_up, paw (T, 2, 2),
    tail (T, 2) offsets from the body axis, shrink (T,) body length multiplier, speed (L/s),
    phase (rad, walking only)."""
    T = int(starts[-1] + lengths[-1])
    t = np.arange(T) / fps
    p = {
        "yaw": np.zeros(T),
        "bend": np.zeros(T),
        "ext": np.ones(T),
        "stride": np.zeros(T),
        "paws_up": np.zeros(T),
        "paw": np.zeros((T, 2, 2)),
        "tail": np.zeros((T, 2)),
        "shrink": np.ones(T),
        "speed": np.zeros(T),
        "gait": np.zeros(T),
    }
    for k, s, n in zip(kinds, starts, lengths):
        sl, tt = slice(s, s + n), t[s : s + n] - t[s]
        name = NAMES[k]
        lo, hi = ETHOGRAM[k].rate_hz
        f = rng.uniform(lo, hi) if hi > 0 else 0.0
        phi = rng.uniform(0, 2 * math.pi)
        wave = np.sin(2 * math.pi * f * tt + phi)
        # the held posture every behaviour but walk and rear starts from
        yaw0 = rng.uniform(-HELD_YAW, HELD_YAW)
        bend0 = rng.uniform(-BEND, BEND)
        up = rng.random() < PAWS_UP
        p["stride"][sl] = rng.uniform(0, 2 * math.pi)  # where the paws were left
        p["tail"][sl] = rng.uniform(-0.4, 0.4, 2)
        p["yaw"][sl], p["bend"][sl] = yaw0, bend0
        p["paws_up"][sl] = up
        p["ext"][sl] = 0.78 if up else rng.uniform(0.85, 1.0)
        if name == "walk":
            p["speed"][sl] = rng.uniform(0.8, 1.2)
            p["gait"][sl] = f
            p["stride"][sl] = 2 * math.pi * f * tt + phi
            p["bend"][sl] = 0.12 * wave
            p["yaw"][sl] = 0.1 * np.sin(2 * math.pi * f * tt + phi + 1.0)
            p["paws_up"][sl], p["ext"][sl] = 0.0, 1.0
            p["tail"][sl] = 0.25 * np.sin(2 * math.pi * f * tt + phi + 2.0)[:, None] * [1, 1.6]
        elif name == "scan":  # the head and the front of the body sweep together
            p["yaw"][sl] = rng.uniform(0.8, 1.0) * HEAD_YAW * wave
            p["bend"][sl] = 0.3 * bend0 + 0.22 * wave
        elif name == "groom":
            amp = rng.uniform(0.08, 0.10)
            circle = np.stack([np.cos(2 * math.pi * f * tt + phi), wave], -1)  # (n, 2)
            p["paw"][sl] = amp * np.stack([circle, -circle], 1)  # the paws in opposite phase
            p["paws_up"][sl] = 1.0
            p["yaw"][sl] = yaw0 * 0.3 + 0.25 * wave  # the head bobs with the paws ...
            p["ext"][sl] = 0.78 + 0.08 * np.sin(2 * math.pi * f * tt + phi + 1.0)
            p["bend"][sl] = 0.3 * bend0 + 0.12 * np.sin(2 * math.pi * f * tt + phi + 2.0)  # rocks
        elif name == "rear":
            depth = rng.uniform(0.55, 0.65)
            ramp = np.minimum(1.0, np.minimum(tt, tt[-1] - tt) / 0.25)  # 0.25 s up, hold, down
            p["shrink"][sl] = 1 - (1 - depth) * ramp
            p["paws_up"][sl], p["ext"][sl], p["bend"][sl] = 1.0, 0.9, 0.0
    for key in ("yaw", "bend", "ext", "stride", "paws_up", "paw", "tail", "shrink"):
        p[key] = _blend(p[key], starts)
    return p


def animate(
    rng: np.random.Generator,
    kinds: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    fps: float,
    arena: Arena,
    body_length: float,
) -> tuple[np.ndarray, np.ndarray]:
    """float32 (T, 3, 12, 2) keypoints (pixels) of the three mice acting the bouts, and
    (T, 3) each mouse's body length (pixels; shorter while rearing). Mice walk only while the
    clip's state is walk, steering off the walls and off each other."""
    T = int(starts[-1] + lengths[-1])
    L = body_length
    params = [_bout_params(rng, kinds, starts, lengths, fps) for _ in range(N_MICE)]
    # start on a triangle around the arena's centre, facing anywhere
    ring = rng.uniform(0, 2 * math.pi) + np.arange(N_MICE) * 2 * math.pi / N_MICE
    radius = 0.45 * (arena.half - 0.5 * L)
    centre = np.stack([arena.cx + radius * np.cos(ring), arena.cy + radius * np.sin(ring)], 1)
    heading = rng.uniform(-math.pi, math.pi, N_MICE)
    turn = np.zeros(N_MICE)
    dt = 1.0 / fps
    c_all = np.zeros((T, N_MICE, 2))
    h_all = np.zeros((T, N_MICE))
    turning = np.zeros((T, N_MICE))
    margin = np.full(N_MICE, 0.45 * L)
    for f in range(T):
        speed = np.array([p["speed"][f] for p in params])
        moving = speed > 0
        if moving.any():
            # spontaneous turning (Ornstein-Uhlenbeck, 0.5 s) plus steering off walls/mice
            turn += -turn * dt / 0.5 + TURN_NOISE * math.sqrt(2 * dt / 0.5) * rng.normal(
                size=N_MICE
            )
            ahead = centre + 0.8 * L * np.stack([np.cos(heading), np.sin(heading)], 1)
            steer = np.zeros(N_MICE)
            for i in range(N_MICE):
                away = None
                if not arena.inside(ahead[i], 0.6 * L):
                    away = np.array([arena.cx, arena.cy]) - centre[i]
                else:
                    for j in range(N_MICE):
                        if j != i and np.linalg.norm(ahead[i] - centre[j]) < 1.0 * L:
                            away = centre[i] - centre[j]
                if away is not None:
                    want = math.atan2(away[1], away[0])
                    err = (want - heading[i] + math.pi) % (2 * math.pi) - math.pi
                    steer[i] = MAX_TURN * np.sign(err)
            rate = np.where(moving, np.where(steer != 0, steer, turn), 0.0)
            heading = heading + rate * dt
            step = (speed * L * dt)[:, None] * np.stack([np.cos(heading), np.sin(heading)], 1)
            centre = arena.clamp(centre + step, margin)
            turning[f] = rate
        c_all[f], h_all[f] = centre, heading
    out = np.zeros((T, N_MICE, 12, 2), np.float32)
    drawn = np.stack([L * p["shrink"] for p in params], 1).astype(np.float32)
    for i, p in enumerate(params):
        bend = p["bend"] + np.clip(0.08 * turning[:, i], -0.3, 0.3)  # a turning body bends
        back = h_all[:, i] - bend / 2
        out[:, i] = pose(
            c_all[:, i],
            h_all[:, i],
            bend,
            p["yaw"],
            p["ext"],
            p["stride"],
            back[:, None] + p["tail"],
            L * p["shrink"],
            p["paws_up"] > 0.5,
            np.zeros(T, bool),
            p["paw"],
        )
    return out, drawn
