"""MABe22 mouse-triplet layout: `read(root) -> ClipSet`, and `write` for the synthetic benchmark.

Layout (files of the MABe 2022 release and its public evaluator, damaggu/MABe2022):

    root/
      videos/{seq_id}.mp4     one video per sequence (.avi also accepted); top view, 30 Hz
      submission_labels.npy   pickled dict, the evaluator's label file:
                                vocabulary        [task names]
                                task_type         ['Discrete' | 'Continuous' per task]
                                label_array       float32 (n_tasks, total_frames), NaN = unlabelled
                                frame_number_map  {seq_id: (start, end)} into the frame axis
      frame_number_map.npy    pickled dict {seq_id: (start, end)} (evaluator's FRAME_MAP_FILE)
      user_train.npy          pickled dict {'vocabulary': [...], 'sequences': {seq_id: {
                                'keypoints': float32 (T, 3, 12, 2),
                                'annotations': float32 (n_tasks, T)}}}
      tasks.json              {"seeds": [...], "task_id_list": [...],
                               "sequence_level_tasks": [...]}
      splits/{task}.json      {"UserTrain": [...], "SubmissionTrain": [...], "publicTest": [...],
                               "privateTest": [...]} clip names per split

The reader needs `submission_labels.npy` and the videos; the other files are checked when
present (keypoints -> `ClipSet.keypoints`, tasks.json -> sequence-level flags).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from twbyol.data.clips import (
    ClipSet,
    check_frame_axis,
    check_label_array,
    check_video_lengths,
    find_video,
)
from twbyol.io import atomic_path, read_json, write_json

VIDEOS = "videos"
LABELS = "submission_labels.npy"
FRAME_MAP = "frame_number_map.npy"
KEYPOINTS = "user_train.npy"
TASKS = "tasks.json"
SPLITS = "splits"
LABEL_KEYS = ("vocabulary", "task_type", "label_array", "frame_number_map")


def video_path(root: str | os.PathLike, clip_id: str) -> Path:
    """Where the writer puts clip `clip_id`'s video."""
    return Path(root) / VIDEOS / f"{clip_id}.mp4"


def _save_dict(path: Path, obj: dict) -> None:
    # The MABe22 files are dicts pickled inside .npy (np.load(..., allow_pickle=True).item()).
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.array(obj, dtype=object), allow_pickle=True)


def _load_dict(path: Path, keys: tuple[str, ...] = ()) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        obj = np.load(path, allow_pickle=True)
        obj = (
            obj.item()
            if isinstance(obj, np.ndarray) and obj.dtype == object and obj.ndim == 0
            else obj
        )
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"{path}: not a readable .npy file ({e})") from None
    if not isinstance(obj, dict):
        msg = f"{path}: expected a pickled dict, got {type(obj).__name__}"
        raise ValueError(msg)  # noqa: TRY004 (a bad file, like every other reader error)
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    return obj


def write(
    root: str | os.PathLike,
    clip_ids: list[str],
    keypoints: list[np.ndarray],
    label_array: np.ndarray,
    tasks: list[str],
    task_types: list[str],
    sequence_level_tasks: list[str],
    split_seed: int,
) -> None:
    """Write the metadata files of the layout (videos are written by the caller).

    keypoints: per clip float32 (T, 3, 12, 2); label_array: float32 (n_tasks, sum T) in
    clip order. The evaluator's label file is written last.
    """
    root = Path(root)
    ends = np.cumsum([k.shape[0] for k in keypoints])
    starts = ends - [k.shape[0] for k in keypoints]
    fnm = {c: (int(s), int(e)) for c, s, e in zip(clip_ids, starts, ends)}
    _save_dict(
        root / KEYPOINTS,
        {
            "vocabulary": list(tasks),
            "sequences": {
                c: {"keypoints": kp.astype(np.float32), "annotations": label_array[:, s:e]}
                for c, kp, (s, e) in zip(clip_ids, keypoints, fnm.values())
            },
        },
    )
    _save_dict(root / FRAME_MAP, fnm)
    write_json(
        root / TASKS,
        {
            "seeds": [split_seed],
            "task_id_list": list(tasks),
            "sequence_level_tasks": list(sequence_level_tasks),
        },
    )
    # The evaluator's own 90/10 train/test split is drawn at probe time; these files only
    # mirror the release (all our clips are labelled, so one split serves every task).
    order = np.random.default_rng(split_seed).permutation(len(clip_ids))
    n_test = len(clip_ids) // 10
    train = [clip_ids[i] for i in sorted(order[n_test:])]
    test = [clip_ids[i] for i in sorted(order[:n_test])]
    split = {
        "UserTrain": train,
        "SubmissionTrain": train,
        "publicTest": test[: n_test // 2],
        "privateTest": test[n_test // 2 :],
    }
    for t in tasks:
        write_json(root / SPLITS / f"{t}.json", split)
    _save_dict(
        root / LABELS,
        {
            "vocabulary": list(tasks),
            "task_type": list(task_types),
            "label_array": label_array.astype(np.float32),
            "frame_number_map": fnm,
        },
    )


def _frame_map(path: Path, fnm: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Clip ids, starts, ends of a frame_number_map, in frame-axis order."""
    if not isinstance(fnm, dict) or not fnm:
        raise ValueError(
            f"{path}: frame_number_map must be a non-empty dict {{clip: (start, end)}}"
        )
    items = []
    for c, v in fnm.items():
        try:
            s, e = (int(x) for x in v)
            if (s, e) != tuple(v):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(
                f"{path}: frame_number_map[{c!r}] = {v!r} is not a pair of integers (start, end)"
            ) from None
        items.append((s, e, str(c)))
    items.sort()
    return (
        [c for _, _, c in items],
        np.array([s for s, _, _ in items], np.int64),
        np.array([e for _, e, _ in items], np.int64),
    )


def read(root: str | os.PathLike) -> ClipSet:
    """Read a MABe22-layout dataset (see the module docstring) into a `ClipSet`.

    Raises FileNotFoundError for a missing label file or video, ValueError naming the file
    for a malformed one (wrong shapes, non-numeric or non-binary labels, a frame map that
    disagrees, unknown clips in keypoints/splits, a video whose frame count differs).
    """
    root = Path(root).resolve()
    lpath = root / LABELS
    lab = _load_dict(lpath, LABEL_KEYS)
    tasks = [str(t) for t in lab["vocabulary"]]
    types = [str(t) for t in lab["task_type"]]
    clip_ids, starts, ends = _frame_map(lpath, lab["frame_number_map"])
    check_frame_axis(clip_ids, starts, ends, str(lpath))
    if len(types) != len(tasks):
        raise ValueError(f"{lpath}: {len(tasks)} tasks in vocabulary but {len(types)} task types")
    # Check the labels before the (slower) video checks, so a bad label file fails fast.
    check_label_array(lab["label_array"], tasks, types, int(ends[-1]), str(lpath))
    label_array = lab["label_array"].astype(np.float32, copy=False)

    fpath = root / FRAME_MAP
    if fpath.exists():
        other = _frame_map(fpath, _load_dict(fpath))
        if other[0] != clip_ids or not (
            np.array_equal(other[1], starts) and np.array_equal(other[2], ends)
        ):
            raise ValueError(f"{fpath}: disagrees with the frame_number_map of {lpath}")

    seq_flags = np.zeros(len(tasks), bool)
    tpath = root / TASKS
    if tpath.exists():
        seq = read_json(tpath).get("sequence_level_tasks", [])
        unknown = sorted(set(seq) - set(tasks))
        if unknown:
            raise ValueError(
                f"{tpath}: sequence_level_tasks {unknown} are not in the vocabulary of {lpath}"
            )
        seq_flags = np.array([t in seq for t in tasks])

    spath = root / SPLITS
    if spath.is_dir():
        known = set(clip_ids)
        for f in sorted(spath.glob("*.json")):
            for key, names in read_json(f).items():
                unknown = sorted(set(names) - known)
                if unknown:
                    raise ValueError(
                        f"{f}: split {key!r} names clip(s) {unknown[:3]} that are not "
                        f"in the frame_number_map of {lpath}"
                    )

    keypoints = None
    kpath = root / KEYPOINTS
    if kpath.exists():
        seqs = _load_dict(kpath, ("sequences",))["sequences"]
        keypoints = {}
        for c, s, e in zip(clip_ids, starts, ends):
            if c not in seqs:
                raise ValueError(f"{kpath}: no sequence {c!r} (labelled in {lpath})")
            kp = np.asarray(seqs[c].get("keypoints"))
            if (
                kp.ndim != 4
                or kp.shape[0] != e - s
                or kp.shape[1:] != (3, 12, 2)
                or not np.issubdtype(kp.dtype, np.number)
            ):
                raise ValueError(
                    f"{kpath}: keypoints of {c!r} have shape {kp.shape} "
                    f"({kp.dtype}), expected ({e - s}, 3, 12, 2) numeric"
                )
            keypoints[c] = kp.astype(np.float32, copy=False)

    videos = [find_video(root / VIDEOS, c) for c in clip_ids]
    n_frames = ends - starts
    fps = check_video_lengths(clip_ids, videos, n_frames)
    return ClipSet(
        clip_ids,
        videos,
        n_frames,
        fps,
        tasks,
        types,
        seq_flags,
        label_array,
        starts,
        ends,
        keypoints,
        source=str(lpath),
    )
