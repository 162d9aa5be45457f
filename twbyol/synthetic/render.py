"""Draw simulated animals from their keypoints and encode the frames as H.264 video.

Top-view grayscale: a textured arena floor, then each animal as tail (lines), body (a bent
tapered polygon along tail base -> centre back -> neck), head (a teardrop from neck to nose),
ears, paws and nose tip, all placed at its 12 keypoints. Drawing is done at 2x resolution and
box-downsampled, so sub-pixel motions (sniffing, grooming jitter) still change the pixels.
Camera effects (exposure, vignetting, sensor noise) are applied per frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

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
    TAIL_MIDDLE,
    TAIL_TIP,
)
from twbyol.io import atomic_path
from twbyol.synthetic.social import SUPINE, Arena, Simulation

SUPERSAMPLE = 2  # draw at 2x, then average 2x2 blocks: cheap anti-aliasing
NOISE_POOL = 8  # distinct sensor-noise frames per clip, drawn at random per frame

# x264 settings: CRF 20 keeps the small body parts legible; one thread makes the bitstream
# reproducible and lets clips be encoded in parallel processes instead.
X264_OPTIONS = {"crf": "20", "preset": "veryfast"}


@dataclass(frozen=True)
class Coat:
    """Grey levels (0-255) of one animal's parts; `marks` > 0 draws fur marks on the back."""

    body: float
    ear: float
    paw: float
    tail: float
    nose: float
    belly: float
    marks: float = 0.0


@dataclass(frozen=True)
class Scene:
    """Look of the enclosure and camera of one clip."""

    arena: Arena
    floor: float  # floor grey level
    wall: float  # grey level outside the floor
    texture: float  # amplitude of the floor's smooth texture
    gain: float  # exposure multiplier (lights off -> < 1)
    offset: float  # black-level offset
    noise: float  # sensor noise s.d. (grey levels)
    vignette: float  # brightness fall-off at the frame corners (fraction)


def background_image(scene: Scene, size: int, rng: np.random.Generator) -> Image.Image:
    """Floor, walls and texture at the supersampled resolution, as an 8-bit PIL image."""
    big = size * SUPERSAMPLE
    coarse = rng.normal(0.0, 1.0, (8, 8)).astype(np.float32)
    texture = np.asarray(Image.fromarray(coarse, mode="F").resize((big, big), Image.BICUBIC))
    grain = rng.normal(0.0, 0.4, (big, big)).astype(np.float32)
    yy, xx = (np.mgrid[0:big, 0:big] + 0.5) / SUPERSAMPLE
    a = scene.arena
    dx, dy = xx - a.cx, yy - a.cy
    if a.shape == "square":
        dist_out = np.maximum(np.abs(dx), np.abs(dy)) - a.half  # > 0 outside the floor
    else:
        dist_out = np.hypot(dx, dy) - a.half
    floor = scene.floor + scene.texture * (texture + grain)
    # The wall darkens toward the floor edge (its shadow), a cue of where the arena ends.
    shade = np.clip(dist_out / (0.04 * size), 0.0, 1.0)
    wall = scene.wall * (0.75 + 0.25 * shade) + 0.5 * scene.texture * texture
    img = np.where(dist_out > 0, wall, floor)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="L")


def _disc(draw: ImageDraw.ImageDraw, p: np.ndarray, r: float, fill: float) -> None:
    draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=int(fill))


def _points(a: np.ndarray) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in a]


def _body_outline(
    tail_base: np.ndarray, centre: np.ndarray, neck: np.ndarray, L: float
) -> np.ndarray:
    """Closed outline (m, 2) of the trunk: a tapered band along a quadratic curve through
    tail base, centre back and neck, widest at the hips/flanks."""
    ctrl = 2 * centre - (tail_base + neck) / 2  # makes the curve pass through the centre
    t = np.linspace(0.0, 1.0, 9)[:, None]
    spine = (1 - t) ** 2 * tail_base + 2 * (1 - t) * t * ctrl + t**2 * neck
    tangent = 2 * (1 - t) * (ctrl - tail_base) + 2 * t * (neck - ctrl)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-6)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    half = L * (0.08 + 0.11 * np.sin(np.pi * (0.12 + 0.8 * t)))
    back_cap = tail_base - 0.07 * L * tangent[0]
    front_cap = neck + 0.06 * L * tangent[-1]
    return np.concatenate(
        [[back_cap], spine + half * normal, [front_cap], (spine - half * normal)[::-1]]
    )


def draw_animal(
    draw: ImageDraw.ImageDraw, kp: np.ndarray, L: float, coat: Coat, supine: bool
) -> None:
    """Draw one animal from its keypoints (12, 2) and body length L (supersampled pixels)."""
    # tail tapers from base to tip
    draw.line(
        _points(kp[[TAIL_BASE, TAIL_MIDDLE]]), fill=int(coat.tail), width=max(1, round(0.07 * L))
    )
    draw.line(
        _points(kp[[TAIL_MIDDLE, TAIL_TIP]]), fill=int(coat.tail), width=max(1, round(0.045 * L))
    )
    paw_r = (0.06 if supine else 0.035) * L  # a supine animal shows its paws in the air
    for p in (LEFT_HINDPAW, RIGHT_HINDPAW):
        _disc(draw, kp[p], paw_r, coat.paw)
    draw.polygon(
        _points(_body_outline(kp[TAIL_BASE], kp[CENTRE], kp[NECK], L)),
        fill=int(coat.belly if supine else coat.body),
    )
    if coat.marks and not supine:
        for s in (-0.12, 0.1):
            _disc(draw, kp[CENTRE] + s * (kp[NECK] - kp[TAIL_BASE]), 0.07 * L, coat.marks)
    nose, neck = kp[NOSE], kp[NECK]
    axis = nose - neck
    axis = axis / max(float(np.linalg.norm(axis)), 1e-6)
    side = np.array([-axis[1], axis[0]])
    head = [
        nose,
        nose - 0.14 * L * axis + 0.075 * L * side,
        neck + 0.11 * L * side,
        neck - 0.05 * L * axis,
        neck - 0.11 * L * side,
        nose - 0.14 * L * axis - 0.075 * L * side,
    ]
    draw.polygon(_points(np.array(head)), fill=int(coat.belly if supine else coat.body))
    for p in (LEFT_EAR, RIGHT_EAR):
        _disc(draw, kp[p], 0.055 * L, coat.ear)
    for p in (LEFT_FOREPAW, RIGHT_FOREPAW):
        _disc(draw, kp[p], paw_r, coat.paw)
    _disc(draw, nose, 0.03 * L, coat.nose)


def render(
    sim: Simulation, coats: list[Coat], scene: Scene, size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield the clip's frames, uint8 (size, size), one per simulated frame."""
    background = background_image(scene, size, rng)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
    gain = (scene.gain * (1.0 - scene.vignette * 2 * (xx**2 + yy**2))).astype(np.float32)
    noise = rng.normal(scene.offset, scene.noise, (NOISE_POOL, size, size)).astype(np.float32)
    picks = rng.integers(0, NOISE_POOL, sim.keypoints.shape[0])
    kps = sim.keypoints * SUPERSAMPLE
    lengths = sim.body_length * SUPERSAMPLE
    supine = sim.forced == SUPINE
    for f in range(kps.shape[0]):
        img = background.copy()
        draw = ImageDraw.Draw(img)
        # A pinned (supine) animal lies under its partner: draw it first.
        for i in sorted(range(kps.shape[1]), key=lambda i: not supine[f, i]):
            draw_animal(draw, kps[f, i], float(lengths[i]), coats[i], bool(supine[f, i]))
        frame = np.asarray(img.reduce(SUPERSAMPLE), dtype=np.float32)
        yield np.clip(frame * gain + noise[picks[f]], 0, 255).astype(np.uint8)


def encode_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> int:
    """Encode grayscale uint8 frames (H, W) to H.264 (yuv420p) at `path`, atomically.

    Returns the number of frames written. The container is chosen from the suffix
    (.mp4, .avi, ...); libx264 runs single-threaded so that equal frames give equal bytes.
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    n = 0
    import av  # only here: rendering frames (e.g. for a GPU benchmark) needs no encoder

    with atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=rate, options=X264_OPTIONS)
                stream.height, stream.width = frame.shape
                stream.pix_fmt = "yuv420p"
                stream.codec_context.thread_count = 1
            vf = av.VideoFrame.from_ndarray(frame, format="gray")
            vf.pts = n
            vf.time_base = 1 / rate
            container.mux(stream.encode(vf))
            n += 1
        if stream is None:
            raise ValueError(f"{path}: no frames to encode")
        container.mux(stream.encode(None))
    return n
