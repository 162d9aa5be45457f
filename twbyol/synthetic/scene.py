"""One look for every clip: arena, light, coats and body size are the same in all clips, and
the sensor noise is drawn afresh for every frame, so that two crops of one clip share nothing
that crops of other clips lack but the mice and what they do (no clip-identity shortcut for
a self-supervised loss to match crops by).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from twbyol.synthetic.render import SUPERSAMPLE, Coat, Scene, background_image, draw_animal
from twbyol.synthetic.social import Arena

ARENA_FRACTION = 0.92  # the floor's side as a share of the frame
MOUSE_LENGTH = 0.11  # nose to tail base as a share of the frame at body_scale 1 (MABe22's)
COAT = Coat(body=70, ear=90, paw=125, tail=100, nose=115, belly=100)
NOISE = 3.0  # grey levels, fresh per pixel and frame


def arena(size: int) -> Arena:
    return Arena.centred("square", size, ARENA_FRACTION)


def scene(size: int) -> Scene:
    return Scene(
        arena(size), floor=175, wall=115, texture=4, gain=1.0, offset=0.0, noise=NOISE, vignette=0.1
    )


@cache
def _background(size: int) -> np.ndarray:
    """The floor and walls, the same in every clip (a fixed seed), at the supersampled size."""
    return np.asarray(background_image(scene(size), size, np.random.default_rng(0)))


def render(keypoints: np.ndarray, lengths: np.ndarray, size: int, rng: np.random.Generator):
    """Yield uint8 (size, size) frames of keypoints (T, n, 12, 2) and the drawn body lengths
    (T, n) in pixels."""
    bg = Image.fromarray(_background(size))
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
    gain = (1.0 - scene(size).vignette * 2 * (xx**2 + yy**2)).astype(np.float32)
    kps, lengths = keypoints * SUPERSAMPLE, lengths * SUPERSAMPLE
    for f in range(kps.shape[0]):
        img = bg.copy()
        draw = ImageDraw.Draw(img)
        for i in range(kps.shape[1]):
            draw_animal(draw, kps[f, i], float(lengths[f, i]), COAT, False)
        frame = np.asarray(img.reduce(SUPERSAMPLE), dtype=np.float32) * gain
        noise = rng.normal(0.0, NOISE, frame.shape).astype(np.float32)
        yield np.clip(frame + noise, 0, 255).astype(np.uint8)
