"""A lab's own recordings (format `videos`): `read(root, ...) -> Dataset`.

    root/                                 any nesting
      day1/cage 3.mp4                     a clip (any container PyAV reads: VIDEO_SUFFIXES)
      day1/cage 3.csv                     optional per-frame labels beside it (below)
      day2/mouse_B.avi
      day2/mouse_B_labels.csv             (DeepEthogram's name for the same file)
      scoring/boris_export.tsv            optional BORIS exports naming the media files

Every video under `root` is a clip; its id is its path below `root` without the suffix,
folders joined by "__" ("day1__cage 3"): unique, and safe as a file name (spaces are kept).
Frame rate and frame count come from the container (twbyol.data.clips.count_video_frames).

Per-frame labels (DeepEthogram / SimBA style): `{stem}.csv` or `{stem}_labels.csv` beside the
video, a header row, the first column the frame number (0 .. T-1, one row per frame of the
video, in order), then one column per behaviour holding 1 (doing it), 0 (not), -1 or empty
(unlabelled). DeepEthogram's `background` column (the complement of the others, not a
behaviour) is dropped. BORIS exports are read by twbyol.data.boris. A video with neither is a
pretraining-only clip. Behaviours are every behaviour any label file names, in first-seen
order (a labelled video whose file lacks one has it unlabelled, NaN), or exactly the
dataset's `behaviours` when set: a CSV must then hold a column for each (its other columns
are ignored) and a BORIS event of another behaviour is an error.

Every problem is an error naming the file (and the row or column) before any frame is decoded:
a label CSV of the wrong length, a frame column out of order, a value other than 0/1/-1/empty,
an unknown behaviour, a BORIS event naming no video under root, two label sources for one
video, a per-frame label file beside no video (`*_labels.csv`, or any CSV whose first rows
read as per-frame labels: stray_label_files). Other CSVs (pose tables, features) are not
read.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from twbyol.data import boris
from twbyol.data.clips import (
    ClipSet,
    Dataset,
    VideoOnlyClip,
    count_video_frames,
)
from twbyol.io import files_under
from twbyol.settings import VIDEO_SUFFIXES

CLIP_SEP = "__"
BACKGROUND = "background"  # DeepEthogram's "no behaviour" column
LABEL_SUFFIXES = ("", "_labels")  # {stem}.csv, {stem}_labels.csv
UNLABELLED = -1


def clip_id_of(path: Path, root: Path) -> str:
    """The clip id of video `path` under `root`: its relative path without the suffix, folders
    joined by CLIP_SEP. Characters a file name cannot hold (NUL, control characters) are an
    error naming the video; a leading dot is replaced."""
    rel = path.relative_to(root).with_suffix("")
    cid = CLIP_SEP.join(rel.parts)
    if re.search(r"[\x00-\x1f]", cid):
        raise ValueError(f"{path}: the video's name holds control characters; rename it")
    return "_" + cid[1:] if cid.startswith(".") else cid


def find_videos(root: Path) -> list[Path]:
    """Every video file under `root` (suffix in VIDEO_SUFFIXES, any case), sorted by relative
    path; hidden folders and files (".*") are skipped."""
    return sorted(files_under(root, VIDEO_SUFFIXES), key=lambda p: p.relative_to(root).as_posix())


def read_frame_labels(
    path: Path, n_frames: int, behaviours: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """(behaviours, float32 (n_behaviours, n_frames)) of a per-frame label CSV (module
    docstring); NaN = unlabelled. With `behaviours`, exactly those columns are read (each must
    be there) and the others ignored: SimBA's targets_inserted tables carry the pose features
    before the behaviour columns. Errors name the file, and the row (1 = the header) or
    column."""
    try:
        raw = pd.read_csv(
            path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from None
    # the header as written (pandas would rename a repeated column "x.1")
    df = raw.iloc[1:].reset_index(drop=True)
    df.columns = [str(c).strip() for c in raw.iloc[0]]
    if df.shape[1] < 2:
        raise ValueError(
            f"{path}: needs a frame column and at least one behaviour column, "
            f"has {df.shape[1]} column(s)"
        )
    if len(df) != n_frames:
        raise ValueError(
            f"{path}: {len(df)} label rows but the video has {n_frames} frames (one row per frame)"
        )
    frame_col = df.columns[0]
    frames = pd.to_numeric(df.iloc[:, 0].str.strip(), errors="coerce").to_numpy()
    bad = np.flatnonzero(frames != np.arange(n_frames))
    if bad.size:
        r = int(bad[0])
        raise ValueError(
            f"{path}: row {r + 2}, column {frame_col!r}: frame {df.iloc[r, 0]!r}, "
            f"expected {r} (frames 0..{n_frames - 1} in order)"
        )
    names = [str(c).strip() for c in df.columns[1:]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{path}: behaviour column(s) {dup} appear twice")
    if behaviours is not None:
        missing = [b for b in behaviours if b not in names]
        if missing:
            raise ValueError(
                f"{path}: no column for behaviour(s) {missing} of the dataset's behaviours"
            )
        keep = [names.index(b) for b in behaviours]
    else:
        empty = [i + 2 for i, n in enumerate(names) if not n]
        if empty:
            raise ValueError(f"{path}: column {empty[0]} has no behaviour name in the header")
        keep = [i for i, n in enumerate(names) if n.lower() != BACKGROUND]
    values = np.empty((len(keep), n_frames), np.float32)
    for j, i in enumerate(keep):
        col = df.iloc[:, i + 1].str.strip()
        num = pd.to_numeric(col.replace("", str(UNLABELLED)), errors="coerce").to_numpy()
        ok = np.isin(num, (0, 1, UNLABELLED))
        if not ok.all():
            r = int(np.argmin(ok))
            hint = (
                ""
                if behaviours is not None
                else (
                    "; a table with other columns (SimBA's features) needs the dataset's "
                    "`behaviours`"
                )
            )
            raise ValueError(
                f"{path}: row {r + 2}, column {names[i]!r}: {col.iloc[r]!r} is not 1, 0, "
                f"{UNLABELLED} or empty{hint}"
            )
        values[j] = np.where(num == UNLABELLED, np.nan, num)
    return [names[i] for i in keep], values


def looks_like_frame_labels(path: Path, rows: int = 20) -> bool:
    """Whether a CSV reads as a per-frame label file: a header of two or more cells, then rows
    whose first cell counts frames from 0 and whose other cells are all 0, 1, -1 or empty.
    (Pose tables, DeepLabCut's or SimBA's features, hold other numbers.)"""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = [r for _, r in zip(range(rows + 1), csv.reader(f))]
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    if len(lines) < 2 or len(lines[0]) < 2:
        return False
    for i, r in enumerate(lines[1:]):
        if len(r) != len(lines[0]) or r[0].strip() != str(i):
            return False
        if any(c.strip() not in ("0", "1", "-1", "") for c in r[1:]):
            return False
    return True


def stray_label_files(root: Path, claimed: set[Path], exports: Sequence[Path]) -> list[Path]:
    """Per-frame label files under `root` that sit beside no video: `*_labels.csv` files and
    CSVs that read as per-frame labels (looks_like_frame_labels), neither claimed by a video
    nor a BORIS export; hidden files and folders skipped."""
    skip = {p.resolve() for p in claimed} | {Path(p).resolve() for p in exports}
    return [
        p
        for p in files_under(root, (".csv",))
        if p.resolve() not in skip
        and (p.name.lower().endswith("_labels.csv") or looks_like_frame_labels(p))
    ]


def label_file_of(video: Path) -> Path | None:
    """The per-frame label CSV beside `video`, if any; both names at once is an error."""
    found = [
        p for p in (video.with_name(video.stem + s + ".csv") for s in LABEL_SUFFIXES) if p.is_file()
    ]
    if len(found) > 1:
        raise ValueError(
            f"{video}: two per-frame label files ({found[0].name} and {found[1].name}); keep one"
        )
    return found[0] if found else None


def scan(root: str | os.PathLike) -> list[VideoOnlyClip]:
    """Every video under `root` (find_videos' order) with its clip id, frame count and frame
    rate, whatever is labelled: the clip list frame extraction and pretraining read (no label
    file is opened, so editing one changes nothing here). Errors name the folder or video:
    no videos, two videos of one clip id, a video without a frame rate."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    paths = find_videos(root)
    if not paths:
        raise FileNotFoundError(
            f"{root}: no videos (looked for {', '.join(VIDEO_SUFFIXES)} in any folder below)"
        )
    ids = [clip_id_of(p, root) for p in paths]
    clash = sorted({c for c in ids if ids.count(c) > 1})
    if clash:
        same = [str(p.relative_to(root)) for p, c in zip(paths, ids) if c == clash[0]]
        raise ValueError(f"{root}: videos {same} give the same clip id {clash[0]!r}; rename one")
    videos = []
    for p, c in zip(paths, ids):
        n, fps = count_video_frames(p)
        if fps <= 0:
            raise ValueError(f"{p}: video has no frame rate")
        videos.append(VideoOnlyClip(c, p, n, fps))
    return videos


def read(
    root: str | os.PathLike,
    behaviours: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> Dataset:
    """Read a folder of videos (module docstring) into a `Dataset`: the labelled videos as
    the ClipSet (one Discrete task per behaviour), the others video-only (pretraining).
    `behaviours`: the dataset's behaviours (default: every one a label file names). A folder
    without any label is a pretraining-only dataset: its ClipSet is empty (`allow_empty`),
    every video video-only. Every error names the file, before any frame is decoded.
    """
    root = Path(root).expanduser().resolve()
    videos = scan(root)
    paths = [v.video_path for v in videos]
    per_frame = {p: label_file_of(p) for p in paths}
    claimed = {f for f in per_frame.values() if f is not None}
    exports = boris.find_exports(root, exclude=claimed)
    stray = stray_label_files(root, claimed, exports)
    if stray:
        p = stray[0]
        stem = p.name[: -len("_labels.csv")] if p.name.lower().endswith("_labels.csv") else p.stem
        raise ValueError(
            f"{p}: a per-frame label file that names no video (no {stem} with a suffix of "
            f"{', '.join(VIDEO_SUFFIXES)} beside it); rename it to match its video or remove it"
            + (f" ({len(stray) - 1} more such files)" if len(stray) > 1 else "")
        )
    events = boris.read_exports(exports, paths, root)  # {video path: [Event]}
    for p in paths:
        if per_frame[p] is not None and p in events:
            raise ValueError(
                f"{p}: labelled twice, by {per_frame[p].name} and by the BORIS export "
                f"{events[p][0].source}; keep one"
            )
    labelled: dict[str, tuple[list[str], np.ndarray]] = {}
    for v in videos:
        if per_frame[v.video_path] is not None:
            labelled[v.clip_id] = read_frame_labels(per_frame[v.video_path], v.n_frames, behaviours)
        elif v.video_path in events:
            got = boris.to_frames(events[v.video_path], v.n_frames, v.fps)
            unknown = [b for b in got[0] if behaviours is not None and b not in behaviours]
            if unknown:
                e = next(e for e in events[v.video_path] if e.behaviour == unknown[0])
                raise ValueError(
                    f"{e.source}: behaviour {unknown[0]!r} is not one of the dataset's "
                    f"behaviours {list(behaviours)}"
                )
            labelled[v.clip_id] = got
    names = (
        list(behaviours)
        if behaviours is not None
        else list(dict.fromkeys(b for got, _ in labelled.values() for b in got))
    )
    lab = [v for v in videos if v.clip_id in labelled]
    only = [v for v in videos if v.clip_id not in labelled]
    log(
        f"{root}: {len(videos)} videos, {len(lab)} labelled ({len(names)} behaviours), "
        f"{len(only)} pretraining-only"
    )
    n_frames = np.array([v.n_frames for v in lab], np.int64)
    ends = np.cumsum(n_frames)
    label_array = np.full((len(names), int(ends[-1]) if lab else 0), np.nan, np.float32)
    for v, s, e in zip(lab, ends - n_frames, ends):
        got, values = labelled[v.clip_id]
        for j, b in enumerate(got):
            label_array[names.index(b), s:e] = values[j]
    clips = ClipSet(
        [v.clip_id for v in lab],
        [v.video_path for v in lab],
        n_frames,
        np.array([v.fps for v in lab]),
        names,
        ["Discrete"] * len(names),
        np.zeros(len(names), bool),
        label_array,
        ends - n_frames,
        ends,
        source=str(root),
        allow_empty=True,
    )
    return Dataset(clips, only, notes={"behaviours": names})
