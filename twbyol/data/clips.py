"""`ClipSet`: a dataset read from disk (clips, videos, per-frame labels), and the checks
every reader shares.

Both readers (`twbyol.data.mabe22`, `twbyol.data.ratsi`) return a `ClipSet`, so the rest of
the pipeline never sees a format. Labels follow the MABe22 evaluator's convention: one
`label_array` (n_tasks, total_frames) over the concatenated frame axis of all clips, NaN
where a frame is unlabelled, and `starts`/`ends` (MABe22 `frame_number_map`) giving each
clip's slice of that axis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from twbyol.data.artifacts import TASK_TYPES
from twbyol.settings import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from twbyol.split import Protocol

# The 12 keypoints of a MABe22 mouse, in the release's order, and their indices.
KEYPOINTS = (
    "nose",
    "left_ear",
    "right_ear",
    "neck",
    "left_forepaw",
    "right_forepaw",
    "centre_back",
    "left_hindpaw",
    "right_hindpaw",
    "tail_base",
    "tail_middle",
    "tail_tip",
)
(
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
    TAIL_MIDDLE,
    TAIL_TIP,
) = range(12)

# The MABe22 release spells the continuous type "Continious"; readers map it to TASK_TYPES.
TASK_TYPE_SPELLINGS = {
    "Discrete": "Discrete",
    "Continuous": "Continuous",
    "Continious": "Continuous",
}


def normalise_task_types(types: list[str], source: str) -> list[str]:
    """Task types in TASK_TYPES spelling; both spellings of the continuous type are accepted.
    An unknown type is a ValueError naming `source`."""
    bad = sorted({t for t in types if t not in TASK_TYPE_SPELLINGS})
    if bad:
        raise ValueError(
            f"{source}: unknown task type(s) {bad}; expected one of {sorted(TASK_TYPE_SPELLINGS)}"
        )
    return [TASK_TYPE_SPELLINGS[t] for t in types]


@dataclass(frozen=True)
class ClipSet:
    """Clips of one dataset with their labels, in canonical order.

    Attributes (n = number of clips, K = number of tasks, N = total frames):
        clip_ids:       (n,) clip names, unique, safe as file names.
        video_paths:    (n,) absolute paths of the clip videos.
        n_frames:       int64 (n,) frames per clip (checked against the video container).
        fps:            float64 (n,) frame rate of each video.
        tasks:          (K,) task names (MABe22 `vocabulary`).
        task_types:     (K,) `Discrete` or `Continuous` (MABe22 `task_type`).
        sequence_level: bool (K,) True for per-clip conditions (constant within a clip).
        label_array:    float32 (K, N), NaN = unlabelled; Discrete tasks hold 0/1.
        starts, ends:   int64 (n,) each clip's slice [start, end) of the frame axis.
        keypoints:      optional {clip_id: float32 (T, n_animals, n_points, 2)} in pixels.
        source:         the file the labels were read from (named in validation errors).
    """

    clip_ids: list[str]
    video_paths: list[Path]
    n_frames: np.ndarray
    fps: np.ndarray
    tasks: list[str]
    task_types: list[str]
    sequence_level: np.ndarray
    label_array: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    keypoints: dict[str, np.ndarray] | None = field(default=None, repr=False)
    source: str = "ClipSet"
    allow_empty: bool = False  # a dataset of unlabelled videos only (pretraining)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def total_frames(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def labels_of(self, clip_id: str) -> np.ndarray:
        """float32 (K, T) labels of one clip (a view into `label_array`)."""
        i = self.clip_ids.index(clip_id)
        return self.label_array[:, self.starts[i] : self.ends[i]]

    def validate(self) -> None:
        """Raise ValueError, prefixed with `source`, on any inconsistency."""
        n, k, source = len(self.clip_ids), len(self.tasks), self.source

        def fail(msg: str) -> None:
            raise ValueError(f"{source}: {msg}")

        if n == 0 and not self.allow_empty:
            fail("no clips")
        if len(set(self.clip_ids)) != n:
            dup = sorted({c for c in self.clip_ids if self.clip_ids.count(c) > 1})
            fail(f"duplicate clip ids {dup[:5]}")
        for c in self.clip_ids:
            if not c or os.sep in c or c.startswith("."):
                fail(f"clip id {c!r} is not safe as a file name")
        for name, arr in (
            ("video_paths", self.video_paths),
            ("n_frames", self.n_frames),
            ("fps", self.fps),
            ("starts", self.starts),
            ("ends", self.ends),
        ):
            if len(arr) != n:
                fail(f"{name} has {len(arr)} entries for {n} clips")
        if len(self.task_types) != k or len(self.sequence_level) != k:
            fail(
                f"{k} tasks but {len(self.task_types)} task types and "
                f"{len(self.sequence_level)} sequence-level flags"
            )
        bad = [t for t in self.task_types if t not in TASK_TYPES]
        if bad:
            fail(f"unknown task type(s) {bad}; expected one of {TASK_TYPES}")
        if np.any(self.n_frames <= 0):
            fail(f"clip {self.clip_ids[int(np.argmin(self.n_frames))]} has no frames")
        if not np.all(np.isfinite(self.fps)) or np.any(self.fps <= 0):
            fail("fps must be finite and positive")
        if np.any(self.ends - self.starts != self.n_frames):
            i = int(np.argmax(self.ends - self.starts != self.n_frames))
            fail(
                f"clip {self.clip_ids[i]} spans {self.ends[i] - self.starts[i]} frames "
                f"of the frame axis but has {self.n_frames[i]}"
            )
        check_frame_axis(self.clip_ids, self.starts, self.ends, source)
        check_label_array(self.label_array, self.tasks, self.task_types, self.total_frames, source)
        for t in np.flatnonzero(self.sequence_level):
            for i, c in enumerate(self.clip_ids):
                vals = self.label_array[t, self.starts[i] : self.ends[i]]
                vals = vals[~np.isnan(vals)]
                if vals.size and np.any(vals != vals[0]):
                    fail(f"sequence-level task {self.tasks[t]!r} varies within clip {c}")
        if self.keypoints is not None:
            for i, c in enumerate(self.clip_ids):
                kp = self.keypoints.get(c)
                if kp is None:
                    fail(f"no keypoints for clip {c}")
                if kp.ndim != 4 or kp.shape[0] != self.n_frames[i] or kp.shape[-1] != 2:
                    fail(
                        f"keypoints of clip {c} have shape {kp.shape}, "
                        f"expected ({self.n_frames[i]}, n_animals, n_points, 2)"
                    )


def check_frame_axis(
    clip_ids: list[str], starts: np.ndarray, ends: np.ndarray, source: str
) -> None:
    """The frame axis must be the clips laid end to end, in order, with no gaps or overlaps:
    every per-frame array of the pipeline (labels, embeddings) relies on it."""
    expect = np.concatenate([[0], ends[:-1]])
    if np.any(starts != expect) or np.any(ends <= starts):
        i = int(np.argmax((starts != expect) | (ends <= starts)))
        raise ValueError(
            f"{source}: frame_number_map of clip {clip_ids[i]} is "
            f"({starts[i]}, {ends[i]}); clips must lie end to end from frame 0 "
            f"(expected start {expect[i]})"
        )


def check_label_array(
    label_array: np.ndarray, tasks: list[str], task_types: list[str], total_frames: int, source: str
) -> None:
    """Check a (n_tasks, total_frames) label array: dtype, shape, values per task type.

    NaN marks unlabelled frames; anything else non-finite, or a Discrete label other than
    0/1, is an error naming `source` and the task.
    """
    if not isinstance(label_array, np.ndarray) or not np.issubdtype(label_array.dtype, np.number):
        dtype = getattr(label_array, "dtype", type(label_array).__name__)
        raise ValueError(f"{source}: label_array must be a numeric array, got {dtype}")
    if label_array.shape != (len(tasks), total_frames):
        raise ValueError(
            f"{source}: label_array has shape {label_array.shape}, expected "
            f"({len(tasks)} tasks, {total_frames} frames)"
        )
    for t, (name, kind) in enumerate(zip(tasks, task_types)):
        row = label_array[t]
        if np.isinf(row).any():
            raise ValueError(f"{source}: task {name!r} has infinite labels")
        if kind == "Discrete":
            vals = row[~np.isnan(row)]
            bad = vals[(vals != 0) & (vals != 1)]
            if bad.size:
                raise ValueError(
                    f"{source}: Discrete task {name!r} has non-binary labels "
                    f"(e.g. {bad[:3].tolist()})"
                )


@dataclass(frozen=True)
class VideoOnlyClip:
    """A clip with video and no labels (MABe22 userTrain): pretraining only."""

    clip_id: str
    video_path: Path
    n_frames: int  # frames to use (a trailing extra frame already cut)
    fps: float


@dataclass(frozen=True)
class Dataset:
    """What a reader returns: the labelled clips, the video-only clips and, when the layout
    has split files, the evaluation protocol (else read-dataset derives one).

    notes: facts for the log and the report (the reader's task list, clips left out for a
    missing video, clips trimmed, the release's frame map)."""

    clips: ClipSet
    video_only: list[VideoOnlyClip] = field(default_factory=list)
    protocol: Protocol | None = None
    notes: dict = field(default_factory=dict)


def find_video(folder: Path, clip_id: str) -> Path:
    """Absolute path of clip `clip_id`'s video in `folder` (.mp4 or .avi)."""
    for suffix in VIDEO_SUFFIXES:
        p = folder / f"{clip_id}{suffix}"
        if p.is_file():
            return p.resolve()
    raise FileNotFoundError(
        f"{folder / clip_id}{VIDEO_SUFFIXES[0]}: video of clip {clip_id} "
        f"not found (looked for {' and '.join(VIDEO_SUFFIXES)})"
    )


def count_video_frames(path: str | os.PathLike) -> tuple[int, float]:
    """(frames, fps) of a video from its container, without decoding.

    Counts demuxed packets of the video stream (one per frame for the codecs we meet), which
    also catches files cut short whose header still claims the full length. A missing,
    unreadable or stream-less file raises FileNotFoundError/ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            n = sum(1 for p in container.demux(stream) if p.size)
    except av.FFmpegError as e:
        raise ValueError(f"{path}: unreadable video ({e})") from None
    if n == 0:
        raise ValueError(f"{path}: video has no frames")
    return n, fps


def match_video_length(
    path: Path, clip_id: str, n_labels: int, trailing: int = 1
) -> tuple[float, int]:
    """(fps, frames to cut) of a clip's video against its `n_labels` labelled frames.

    Equal lengths cut nothing; a video longer by at most `trailing` frames (the MABe22
    videos' extra frame, which the evaluator drops from per-frame video embeddings) cuts
    them; anything else is a ValueError naming the video."""
    n, fps = count_video_frames(path)
    if fps <= 0:
        raise ValueError(f"{path}: video has no frame rate")
    if n_labels <= n <= n_labels + trailing:
        return fps, n - n_labels
    raise ValueError(
        f"{path}: video has {n} frames but the labels of clip {clip_id} cover {n_labels} "
        f"({'truncated video?' if n < n_labels else 'wrong video?'})"
    )


def check_video_lengths(
    clip_ids: list[str], video_paths: list[Path], n_frames: np.ndarray
) -> np.ndarray:
    """float64 (n,) fps of each video; raise ValueError naming the video whose container
    frame count differs from the labelled clip length."""
    fps = np.empty(len(clip_ids))
    for i, (c, p) in enumerate(zip(clip_ids, video_paths)):
        n, fps[i] = count_video_frames(p)
        if n != n_frames[i]:
            raise ValueError(
                f"{p}: video has {n} frames but the labels of clip {c} "
                f"cover {int(n_frames[i])} (truncated or wrong video?)"
            )
        if fps[i] <= 0:
            raise ValueError(f"{p}: video has no frame rate")
    return fps
