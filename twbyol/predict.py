"""Behaviour predictions for every video of a dataset, or of any folder (the `predict` stage).

    twbyol predict --model pretrain/R/seed0/model.pt --probes evaluate/R/seed0/mice.probes.npz \\
        --frames-dir frames/mice --index frames/mice/index.tsv --out-dir predict/R/seed0/mice
    twbyol predict --model model.pt --probes mice.probes.npz --videos new_recordings/ --out-dir DIR

The probes are the evaluation's own (`evaluate --probes-out`; twbyol.predictor): per
behaviour and probe seed, the ridge classifier whose F1 the evaluation reports, as an affine
map of the backbone's features. A frame is called (1) as the evaluator aggregates the seeds
(any seed's probe calls it); its score is the mean decision value over seeds (> 0: the
probe's side of "doing it"; not a probability).

Every video's frames are embedded as the embed stage embeds them (windows of the run's
`num_frames` at its `stride` centred every `window_stride` frames, the probes file's) —
labelled and unlabelled videos alike. With `--videos`, every video under the folder (format
`videos`: the same clip ids) is decoded at the probes' frame size and fit; label files
beside the videos are not read. Output per video: `{out}/{clip_id}.csv` with columns
`frame, time_s` (frame / the video's fps), then each behaviour's 0/1 call, then each
behaviour's score (`{behaviour}_score`), one row per frame; written atomically, and the
folder as a whole replaces `--out-dir` only when every video is done.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from twbyol import io
from twbyol.allocator import keep_large_allocations
from twbyol.data.artifacts import read_index
from twbyol.features import EmbedConfig, embed_clip, load_backbone
from twbyol.hardware import pick_device, run_autocast
from twbyol.predictions import SUMMARY, write_predictions
from twbyol.predictor import load_probes
from twbyol.progress import Progress


class _Embedder:
    """A pretraining run's backbone embedding one clip's frames as the embed stage does."""

    def __init__(self, model: str | os.PathLike, window_stride: int, batch_size: int) -> None:
        self.device = pick_device()
        if self.device.type == "cpu":  # as the embed stage
            keep_large_allocations()
        self.backbone, self.cfg = load_backbone(model, self.device)
        self.autocast = run_autocast(self.cfg, self.device)  # as the embed stage
        self.window_stride, self.batch_size = window_stride, batch_size

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return embed_clip(
            self.backbone,
            frames,
            self.cfg["crop"],
            self.window_stride,
            self.batch_size,
            self.device,
            self.autocast,
        )


def _summary(
    out: Path, probes, model, clips: list[str], fps: list[float], media: list[str]
) -> None:
    """predictions.json beside the CSVs: what made them, how well the probes scored, and each
    clip's frame rate and video file (twbyol.predictions)."""
    keep = ("run_id", "seed", "dataset", "probe_seeds", "frames", "window_stride", "f1")
    io.write_json(
        out / SUMMARY,
        {
            "model": str(model),
            "behaviours": probes.behaviours,
            "probes": {k: probes.meta.get(k) for k in keep},
            "clips": clips,
            "fps": dict(zip(clips, map(float, fps))),
            "media": dict(zip(clips, media)),
        },
    )


def _fill_dir(out_dir: Path, write) -> None:
    """Run write(tmp_dir), then put tmp_dir in place of out_dir (nothing left on failure).
    An existing out_dir is replaced only when it is empty or an earlier predictions folder
    (it holds SUMMARY); any other folder is an error naming it, before any work."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir}: exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / SUMMARY).is_file():
            raise FileExistsError(
                f"{out_dir}: a folder that is not an earlier predictions folder (no {SUMMARY}); "
                "give a new or empty one (its files would be replaced)"
            )
    with io.atomic_dir(out_dir) as tmp:
        write(tmp)


def predict_dataset(
    model: str | os.PathLike,
    probes_path: str | os.PathLike,
    frames_dir: str | os.PathLike,
    index_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    batch_size: int,
) -> dict:
    """Predictions for every clip of a study's dataset (its extracted frames), labelled or not."""
    probes = load_probes(probes_path)
    emb = _Embedder(model, int(probes.meta["window_stride"]), batch_size)
    index = read_index(index_path)

    progress = Progress(int(index["n_frames"].sum()), "frame")

    def write(tmp: Path) -> None:
        done = 0
        for k, (cid, fps) in enumerate(zip(index["clip_id"], index["fps"])):
            frames = np.load(Path(frames_dir) / f"{cid}.npy", mmap_mode="r")
            calls, scores = probes.predict(emb(frames))
            write_predictions(tmp / f"{cid}.csv", probes.behaviours, calls, scores, float(fps))
            done += len(frames)
            if progress.due(done) or k + 1 == len(index):
                print(progress.line(done, prefix=f"[predict] video {k + 1}/{len(index)} |"))
        _summary(
            tmp, probes, model, list(index["clip_id"]), list(index["fps"]), list(index["source"])
        )

    _fill_dir(Path(out_dir), write)
    return {"clips": len(index), "behaviours": probes.behaviours}


def predict_videos(
    model: str | os.PathLike,
    probes_path: str | os.PathLike,
    videos: str | os.PathLike,
    out_dir: str | os.PathLike,
    batch_size: int,
    log=print,
) -> dict:
    """Predictions for every video under the folder `videos` (any layout; labels not read)."""
    # deferred: PyAV and the folder reader, only to predict a folder of videos
    from twbyol.data.clips import count_video_frames
    from twbyol.data.frames import decode_video
    from twbyol.data.videos import clip_id_of, find_videos

    probes = load_probes(probes_path)
    root = Path(videos).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder of videos not found")
    paths = find_videos(root)
    if not paths:
        raise FileNotFoundError(f"{root}: no videos in it or below")
    ids = [clip_id_of(p, root) for p in paths]
    size, fit = int(probes.meta["frames"]["size"]), probes.meta["frames"]["fit"]
    emb = _Embedder(model, int(probes.meta["window_stride"]), batch_size)

    counts = [count_video_frames(p) for p in paths]  # (frames, fps), read from the containers
    for p, (_, fps) in zip(paths, counts):
        if fps <= 0:
            raise ValueError(f"{p}: video has no frame rate")
    progress = Progress(sum(n for n, _ in counts), "frame")

    def write(tmp: Path) -> None:
        rates, done = [], 0
        for k, (p, cid, (n, fps)) in enumerate(zip(paths, ids, counts)):
            frames = decode_video(p, size, fit, expected=n)
            calls, scores = probes.predict(emb(frames))
            write_predictions(tmp / f"{cid}.csv", probes.behaviours, calls, scores, fps)
            rates.append(fps)
            log(f"{p.relative_to(root)}: {len(frames)} frames at {fps:g} fps -> {cid}.csv")
            done += n
            if progress.due(done) or k + 1 == len(paths):
                log(progress.line(done, prefix=f"[predict] video {k + 1}/{len(paths)} |"))
        _summary(tmp, probes, model, ids, rates, [str(p.relative_to(root)) for p in paths])

    _fill_dir(Path(out_dir), write)
    return {"clips": len(paths), "behaviours": probes.behaviours}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="model.pt of a pretraining run")
    ap.add_argument(
        "--probes", required=True, help="{dataset}.probes.npz the evaluation of that model wrote"
    )
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--videos", help="a folder of videos (any nesting) to predict")
    src.add_argument("--frames-dir", help="a study's extracted frames (with --index)")
    ap.add_argument("--index", help="the study dataset's index.tsv (with --frames-dir)")
    ap.add_argument(
        "--out-dir", dest="out", required=True, help="the folder of CSVs to write, one per video"
    )
    ap.add_argument(
        "--config",
        default="{}",
        help="the embedding settings as JSON, inline or a file (twbyol.features.EmbedConfig; "
        "predict uses its batch_size: the window stride is the probes')",
    )
    a = ap.parse_args(argv)
    batch = EmbedConfig.from_dict(io.json_arg(a.config)).batch_size
    if a.frames_dir is not None:
        if a.index is None:
            ap.error("--frames-dir needs --index")
        info = predict_dataset(a.model, a.probes, a.frames_dir, a.index, a.out, batch)
    else:
        info = predict_videos(a.model, a.probes, a.videos, a.out, batch)
    print(f"{info['clips']} videos, behaviours {info['behaviours']} -> {a.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
