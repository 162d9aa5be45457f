"""Motion-benchmark clips written as the MABe22 release lays them out.

`generate` writes `n_clips` labelled clips (and `n_user_train` video-only userTrain clips) of
three mice acting the ethogram's behaviours (twbyol.synthetic.ethogram), rendered in one
fixed scene (twbyol.synthetic.scene), H.264-encoded, with the release's keypoints, frame map,
labels (one per-frame Discrete task per behaviour: 1 while the clip's state is it, else 0),
the evaluator's tasks file and its split files (the release's shares), so that the reader,
the protocol and the evaluator's scoring run on it as on the release. Clip i depends only on
(seed, i). `synth.json`, written last, records the settings and each behaviour's measured
occupancy and bout lengths beside the documented ones.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from twbyol.bouts import run_spans
from twbyol.data import mabe22
from twbyol.io import write_json
from twbyol.settings import EVALUATOR_SEED
from twbyol.split import derived_protocol
from twbyol.synthetic import ethogram, motion, scene
from twbyol.synthetic.render import encode_video

TASKS = ethogram.NAMES


def simulate(
    seed: np.random.SeedSequence,
    n_frames: int,
    size: int,
    fps: float,
    body_scale: float,
    bout_scale: float = 1.0,
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """Clip id, keypoints (T, 3, 12, 2), drawn body lengths (T, 3), states (T,) and the
    generator that renders it, for one clip's seed."""
    rng = np.random.default_rng(seed)
    clip_id = mabe22.random_clip_id(rng)
    kinds, starts, lengths = ethogram.bouts(rng, n_frames, fps, scale=bout_scale)
    body = scene.MOUSE_LENGTH * body_scale * size
    kp, drawn = motion.animate(rng, kinds, starts, lengths, fps, scene.arena(size), body)
    return clip_id, kp, drawn, ethogram.states(kinds, lengths), rng


def simulated_labels(
    n_clips: int,
    n_frames: int,
    seed: int,
    fps: float = 30.0,
    n_user_train: int = 0,
    bout_scale: float = 1.0,
) -> np.ndarray:
    """float32 (n_clips, n_behaviours, n_frames): the labels `generate` writes for these
    settings, without animating or rendering (the bouts are drawn first from each clip's
    generator, right after its id)."""
    out = []
    for s in np.random.SeedSequence(seed).spawn(n_clips + n_user_train)[:n_clips]:
        rng = np.random.default_rng(s)
        mabe22.random_clip_id(rng)
        kinds, _, lengths = ethogram.bouts(rng, n_frames, fps, scale=bout_scale)
        out.append(labels_of(ethogram.states(kinds, lengths)))
    return np.stack(out)


def labels_of(states: np.ndarray) -> np.ndarray:
    """(n_behaviours, T) float32 one-hot labels of the states."""
    return (states[None, :] == np.arange(len(TASKS))[:, None]).astype(np.float32)


def make_clip(
    seed: np.random.SeedSequence,
    n_frames: int,
    size: int,
    fps: float,
    body_scale: float,
    video_path,
    extra_frames: int,
    bout_scale: float = 1.0,
) -> tuple[str, np.ndarray, np.ndarray]:
    """Simulate, render and encode one clip (its video `extra_frames` longer than its labels,
    as the release's); return its id, keypoints and labels."""
    clip_id, kp, drawn, states, rng = simulate(
        seed, n_frames + extra_frames, size, fps, body_scale, bout_scale
    )
    encode_video(video_path(clip_id), scene.render(kp, drawn, size, rng), fps)
    return clip_id, kp[:n_frames], labels_of(states[:n_frames])


def bout_summary(labels: list[np.ndarray], fps: float) -> dict[str, dict]:
    """Per behaviour: measured share of frames, bouts and bout lengths (frames and seconds:
    median, 5th and 95th percentile; bouts cut by a clip's ends included), beside the
    ethogram's documented distribution and expected share."""
    expected = ethogram.expected_occupancy()
    out = {}
    for k, b in enumerate(ethogram.ETHOGRAM):
        frames = np.concatenate([y[k] for y in labels])
        n = np.concatenate([run_spans(y[k] == 1)[1] for y in labels])
        q = np.percentile(n, [5, 50, 95]) if n.size else [0, 0, 0]
        out[b.name] = {
            "frame_frequency": float(frames.mean()),
            "expected_frequency": float(expected[k]),
            "n_bouts": int(n.size),
            "bout_frames_p5_median_p95": [float(v) for v in q],
            "bout_s_p5_median_p95": [float(v) / fps for v in q],
            "documented": {
                "median_s": b.median_s,
                "sigma": b.sigma,
                "weight": b.weight,
                "rate_hz": list(b.rate_hz),
                "motion": b.motion,
            },
        }
    return out


def generate(
    out_dir: str | os.PathLike,
    n_clips: int,
    n_frames: int,
    size: int,
    seed: int,
    fps: float,
    jobs: int,
    body_scale: float,
    n_user_train: int,
    naming: str,
    trailing_frame: bool,
    bout_scale: float,
) -> dict:
    """Write the dataset under `out_dir` (see the module docstring); return the summary also
    written to `out_dir/synth.json`, last. `bout_scale` multiplies every bout's length (the
    slow variant, whose bouts outlast the crops' gaps). The settings' defaults are
    twbyol.synthetic.generate.SynthConfig's (`twbyol synth --config '{..., "generator":
    "motion"}'` calls this)."""
    out_dir = Path(out_dir).resolve()
    start = time.time()
    seeds = np.random.SeedSequence(seed).spawn(n_clips + n_user_train)
    extra = int(trailing_frame)
    args = []
    for i, s in enumerate(seeds):
        group = "submission" if i < n_clips else "userTrain"
        place = functools.partial(mabe22.video_path, out_dir, group=group, naming=naming)
        args.append((s, n_frames, size, fps, body_scale, place, extra, bout_scale))
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            made = list(pool.map(make_clip, *zip(*args)))
    else:
        made = [make_clip(*a) for a in args]
    ids = [m[0] for m in made]
    if len(set(ids)) != len(ids):
        raise ValueError(f"seed {seed} produced duplicate clip ids; choose another seed")
    clips, user_train = made[:n_clips], made[n_clips:]
    tasks = list(TASKS)
    split = derived_protocol(ids[:n_clips], tasks, [], EVALUATOR_SEED).splits["all"]
    mabe22.write(
        out_dir,
        ids[:n_clips],
        [kp for _, kp, _ in clips],
        np.concatenate([y for _, _, y in clips], axis=1),
        tasks,
        ["Discrete"] * len(tasks),
        [],
        split,
        {c: kp for c, kp, _ in user_train},
        naming=naming,
    )
    summary = {
        "format": "mabe22",
        "generator": "motion",
        "n_clips": n_clips,
        "n_frames": n_frames,
        "size": size,
        "seed": seed,
        "fps": fps,
        "body_scale": body_scale,
        "bout_scale": bout_scale,
        "naming": naming,
        "trailing_frame": bool(extra),
        "clips": ids[:n_clips],
        "user_train_clips": ids[n_clips:],
        "wall_s": round(time.time() - start, 2),
        "tasks": bout_summary([y for _, _, y in clips], fps),
    }
    write_json(out_dir / "synth.json", summary)
    return summary
