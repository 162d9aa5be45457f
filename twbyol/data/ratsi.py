"""RatSI layout (Lorbach et al. 2018, Noldus): `read(root) -> ClipSet`, and `write` for the
synthetic benchmark.

RatSI ships, per observation (two rats in a PhenoTyper cage, top view), a video, a
frame-by-frame annotation file (one behaviour label per frame, scored by an expert) and
tracking of each rat's nose, centre and tail base. Layout assumed here (semicolon CSV, as
Noldus tools export):

    root/
      videos/Observation01.mp4        (.avi also accepted)
      annotations/Observation01.csv   Frame;Time;Behavior      one row per frame, Frame = 0..T-1
      tracking/Observation01.csv      Frame;Time;marked_nose_x;marked_nose_y;marked_center_x;...
                                      ...;white_tail_x;white_tail_y   (pixels; optional folder)

Behaviours: the eight RatSI classes below, plus "Uncertain" (frames the annotator could not
score). The reader turns the single label into one binary Discrete task per behaviour,
with NaN for every task on Uncertain frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from twbyol.data.clips import (
    CENTRE,
    NOSE,
    TAIL_BASE,
    ClipSet,
    Dataset,
    check_video_lengths,
    find_video,
)
from twbyol.io import write_text

BEHAVIOURS = (
    "Allogrooming",
    "Approaching",
    "Following",
    "Moving away",
    "Nape attacking",
    "Pinning",
    "Social Nose Contact",
    "Solitary",
)
UNCERTAIN = "Uncertain"
SUBJECTS = ("marked", "white")
TRACKED = (("nose", NOSE), ("center", CENTRE), ("tail", TAIL_BASE))  # RatSI name, keypoint
VIDEOS, ANNOTATIONS, TRACKING = "videos", "annotations", "tracking"
TRACK_COLUMNS = [f"{s}_{p}_{xy}" for s in SUBJECTS for p, _ in TRACKED for xy in "xy"]


def video_path(root: str | os.PathLike, clip_id: str) -> Path:
    """Where the writer puts clip `clip_id`'s video."""
    return Path(root) / VIDEOS / f"{clip_id}.mp4"


def write(
    root: str | os.PathLike,
    clip_ids: list[str],
    keypoints: list[np.ndarray],
    labels: list[np.ndarray],
    fps: float,
) -> None:
    """Write annotation and tracking files (videos are written by the caller).

    keypoints: per clip float32 (T, 2, 12, 2) (only nose, centre, tail base are kept, as in
    RatSI); labels: per clip float32 (8, T) one-hot over BEHAVIOURS, NaN = Uncertain.
    """
    root = Path(root)
    for c, kp, lab in zip(clip_ids, keypoints, labels):
        T = kp.shape[0]
        frame = np.arange(T)
        time_s = np.round(frame / fps, 3)
        names = np.array(BEHAVIOURS + (UNCERTAIN,))
        idx = np.where(
            np.isnan(lab).any(axis=0), len(BEHAVIOURS), np.nan_to_num(lab).argmax(axis=0)
        )
        ann = pd.DataFrame({"Frame": frame, "Time": time_s, "Behavior": names[idx]})
        write_text(root / ANNOTATIONS / f"{c}.csv", ann.to_csv(sep=";", index=False))
        pts = kp[:, :, [k for _, k in TRACKED]].reshape(T, -1)  # (T, 2 rats * 3 points * 2)
        track = pd.DataFrame(np.round(pts, 2), columns=TRACK_COLUMNS)
        track.insert(0, "Time", time_s)
        track.insert(0, "Frame", frame)
        write_text(root / TRACKING / f"{c}.csv", track.to_csv(sep=";", index=False))


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep=";")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable ';'-separated file ({e})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (has {list(df.columns)})")
    frames = pd.to_numeric(df["Frame"], errors="coerce").to_numpy()
    if len(df) == 0 or not np.array_equal(frames, np.arange(len(df))):
        raise ValueError(f"{path}: Frame must count 0, 1, ..., {len(df) - 1} (one row per frame)")
    return df


def _read_annotation(path: Path) -> np.ndarray:
    """float32 (8, T) one-hot labels of an annotation file; NaN on Uncertain frames."""
    df = _read_csv(path, ["Frame", "Behavior"])
    beh = df["Behavior"].astype(str).str.strip().to_numpy()
    known = np.isin(beh, BEHAVIOURS + (UNCERTAIN,))
    if not known.all():
        i = int(np.argmin(known))
        raise ValueError(
            f"{path}: row {i + 2}: unknown behaviour {beh[i]!r}; expected one of "
            f"{list(BEHAVIOURS) + [UNCERTAIN]}"
        )
    onehot = (beh[None, :] == np.array(BEHAVIOURS)[:, None]).astype(np.float32)
    onehot[:, beh == UNCERTAIN] = np.nan
    return onehot


def _read_tracking(path: Path, n_frames: int) -> np.ndarray:
    """float32 (T, 2 rats, 3 points, 2) nose/centre/tail positions of a tracking file."""
    df = _read_csv(path, ["Frame", *TRACK_COLUMNS])
    if len(df) != n_frames:
        raise ValueError(f"{path}: {len(df)} rows but the annotation has {n_frames} frames")
    values = df[TRACK_COLUMNS].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
    # Lost tracks (NaN) are legitimate in tracking output; text in a number column is not.
    bad = np.isnan(values) & df[TRACK_COLUMNS].notna().to_numpy()
    if bad.any():
        r, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: row {r + 2}, column {TRACK_COLUMNS[col]}: not a number "
            f"({df[TRACK_COLUMNS[col]].iloc[r]!r})"
        )
    return values.reshape(n_frames, len(SUBJECTS), len(TRACKED), 2)


def read(root: str | os.PathLike) -> Dataset:
    """Read a RatSI-layout dataset (see the module docstring) into a `Dataset` (every clip
    labelled; no split files, so read-dataset derives the evaluation protocol).

    Clips are the annotation files in name order. Raises FileNotFoundError for a missing
    folder or video, ValueError naming the file for a malformed annotation/tracking file or a
    video whose frame count differs from its annotation.
    """
    root = Path(root).resolve()
    adir = root / ANNOTATIONS
    files = sorted(adir.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"{adir}: no annotation files (*.csv)")
    clip_ids = [f.stem for f in files]
    labels = [_read_annotation(f) for f in files]
    n_frames = np.array([lab.shape[1] for lab in labels], np.int64)
    keypoints = None
    if (root / TRACKING).is_dir():
        keypoints = {}
        for c, n in zip(clip_ids, n_frames):
            tpath = root / TRACKING / f"{c}.csv"
            if not tpath.is_file():
                raise FileNotFoundError(f"{tpath}: tracking of clip {c} not found")
            keypoints[c] = _read_tracking(tpath, int(n))
    videos = [find_video(root / VIDEOS, c) for c in clip_ids]
    fps = check_video_lengths(clip_ids, videos, n_frames)
    ends = np.cumsum(n_frames)
    return Dataset(
        ClipSet(
            clip_ids,
            videos,
            n_frames,
            fps,
            list(BEHAVIOURS),
            ["Discrete"] * len(BEHAVIOURS),
            np.zeros(len(BEHAVIOURS), bool),
            np.concatenate(labels, axis=1),
            ends - n_frames,
            ends,
            keypoints,
            source=str(adir),
        )
    )
