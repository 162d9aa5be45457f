"""MABe22 mouse triplets as released: `read(root, ...) -> Dataset`, and `write` (the layout,
for the synthetic benchmark and the tests).

The release as a user has it (sources: the CaltechDATA record rdsa8-rde65, the AIcrowd
video-data round, the public evaluator damaggu/MABe2022 `round2/`):

    root/                                  any nesting: files are found by name under root
      mouse_submission_labels.npy          labels (CaltechDATA; AIcrowd/evaluator name:
                                           submission_labels.npy), a pickled dict:
                                             vocabulary        [task names]
                                             task_type         ['Discrete' | 'Continious'] per
                                                               task (the release's spelling;
                                                               'Continuous' accepted too)
                                             label_array       float32 (n_tasks, total_frames),
                                                               NaN = unlabelled
                                             frame_number_map  {seq_id: (start, end)}
      mouse_submission_keypoints.npy       (AIcrowd: submission_keypoints.npy)
                                           {'sequences': {seq_id: {'keypoints':
                                             (T, 3 mice, 12 points, 2)}}} of the labelled clips
      user_train.npy                       the 784 userTrain clips: {'vocabulary': [...],
                                           'sequences': {seq_id: {'keypoints', 'annotations'}}}
      mouse_round2_frame_number_map.npy    the evaluator's frame map (AIcrowd:
                                           frame_number_map.npy); must equal the labels' one
      mouse_round2_tasks.json              {seeds, task_id_list, sequence_level_tasks}
      mouse_round2_splits/{task}.json      {UserTrain, SubmissionTrain, publicTest, privateTest}
      .../{seq_id}.avi                     one video per clip, anywhere under root (the
                                           archives submission_videos[_resized_224]/ and
                                           userTrain_videos[_resized_224]/, unzipped in place,
                                           possibly nesting a folder); .mp4/.mov/.mkv as well

Labelled clips are those of the labels' frame map; userTrain clips (in user_train.npy or a
split's UserTrain list, never in the frame map) are video-only clips for pretraining. A
labelled clip whose video is missing (the resized submission set lacks
R6R4SNHGFM0ZOOH9A1TN) is left out and named; `missing_videos="error"` makes it fatal. A video
one frame longer than its labels (the evaluator trims mouse video embeddings by one trailing
frame) is trimmed and named; any other length mismatch is an error naming the video.

Keypoint coordinate order: the AIcrowd pages say (x, y), third-party loaders disagree; the
pipeline learns from video only, so nothing here depends on it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from twbyol.data.clips import (
    ClipSet,
    Dataset,
    VideoOnlyClip,
    check_frame_axis,
    check_label_array,
    count_video_frames,
    match_video_length,
    normalise_task_types,
)
from twbyol.io import atomic_path, read_json, write_json
from twbyol.settings import VIDEO_SUFFIXES
from twbyol.split import SCORED, SPLITS, Protocol

# Logical file -> names tried in order (CaltechDATA first, then AIcrowd / the evaluator).
FILE_NAMES: dict[str, tuple[str, ...]] = {
    "labels": ("mouse_submission_labels.npy", "submission_labels.npy"),
    "keypoints": ("mouse_submission_keypoints.npy", "submission_keypoints.npy"),
    "user_train": ("user_train.npy",),
    "frame_map": ("mouse_round2_frame_number_map.npy", "frame_number_map.npy"),
    "tasks": ("mouse_round2_tasks.json",),
    "splits": ("mouse_round2_splits",),  # a folder of {task}.json
}
LABEL_KEYS = ("vocabulary", "task_type", "label_array", "frame_number_map")
NAMINGS = ("caltech", "aicrowd")
# Video folders of the two naming schemes, as the archives unzip (the CaltechDATA zip nests
# its folder; either scheme is found the same way, by clip id anywhere under the root).
VIDEO_DIRS = {
    "caltech": {
        "submission": "mouse_submission_videos_resized_224/submission_videos_resized_224",
        "userTrain": "mouse_userTrain_videos_resized_224/userTrain_videos_resized_224",
    },
    "aicrowd": {"submission": "submission_videos", "userTrain": "userTrain_videos"},
}


def video_path(
    root: str | os.PathLike, clip_id: str, naming: str, group: str = "submission"
) -> Path:
    """Where the writer puts clip `clip_id`'s video (group `submission` or `userTrain`)."""
    return Path(root) / VIDEO_DIRS[naming][group] / f"{clip_id}.avi"


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


# ----------------------------------------------------------------------------- writer


def random_clip_id(rng: np.random.Generator) -> str:
    """A sequence id as the release's: 20 random upper-case letters and digits."""
    return "".join(rng.choice(np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")), 20))


def write(
    root: str | os.PathLike,
    clip_ids: list[str],
    keypoints: list[np.ndarray],
    label_array: np.ndarray,
    tasks: list[str],
    task_types: list[str],
    sequence_level_tasks: list[str],
    splits: Mapping[str, Sequence[str]],
    user_train: Mapping[str, np.ndarray] | None = None,
    *,
    naming: str,
    seeds: Sequence[int] = (42,),
) -> None:
    """Write the metadata files of the release layout (videos are written by the caller, at
    `video_path`).

    keypoints: per labelled clip float32 (T, 3, 12, 2); label_array: float32 (n_tasks, sum T)
    in clip order; splits: {SubmissionTrain, publicTest, privateTest: [clip ids]} written as
    every task's split file, UserTrain = the `user_train` clips ({clip: keypoints}).
    Continuous tasks are spelled 'Continious', as in the release. The labels file is last.
    """
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {NAMINGS}, got {naming!r}")
    root = Path(root)
    user_train = dict(user_train or {})
    ends = np.cumsum([k.shape[0] for k in keypoints])
    starts = ends - [k.shape[0] for k in keypoints]
    fnm = {c: (int(s), int(e)) for c, s, e in zip(clip_ids, starts, ends)}
    kp_name = FILE_NAMES["keypoints"][0 if naming == "caltech" else 1]
    _save_dict(
        root / kp_name,
        {
            "sequences": {
                c: {"keypoints": kp.astype(np.float32)} for c, kp in zip(clip_ids, keypoints)
            }
        },
    )
    if user_train:
        # the release's user_train.npy carries two annotation rows of its own vocabulary
        _save_dict(
            root / "user_train.npy",
            {
                "vocabulary": ["lights", "chase"],
                "sequences": {
                    c: {
                        "keypoints": kp.astype(np.float32),
                        "annotations": np.zeros((2, kp.shape[0]), np.float32),
                    }
                    for c, kp in user_train.items()
                },
            },
        )
    _save_dict(root / FILE_NAMES["frame_map"][0 if naming == "caltech" else 1], fnm)
    write_json(
        root / FILE_NAMES["tasks"][0],
        {
            "seeds": [int(s) for s in seeds],
            "task_id_list": list(tasks),
            "sequence_level_tasks": list(sequence_level_tasks),
        },
    )
    split = {"UserTrain": sorted(user_train), **{k: list(splits[k]) for k in SCORED}}
    for t in tasks:
        write_json(root / FILE_NAMES["splits"][0] / f"{t}.json", split)
    _save_dict(
        root / FILE_NAMES["labels"][0 if naming == "caltech" else 1],
        {
            "vocabulary": list(tasks),
            "task_type": ["Continious" if ty == "Continuous" else ty for ty in task_types],
            "label_array": label_array.astype(np.float32),
            "frame_number_map": fnm,
        },
    )


# ----------------------------------------------------------------------------- reader


class _Tree:
    """One walk of the dataset root: files by name, folders by name and videos by stem."""

    def __init__(self, root: Path, video_roots: Sequence[Path]) -> None:
        self.root = root
        self.files: dict[str, list[Path]] = {}
        self.dirs: dict[str, list[Path]] = {}
        self.videos: dict[str, list[Path]] = {}
        for top in [root]:
            for d, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for name in dirnames:
                    self.dirs.setdefault(name, []).append(Path(d) / name)
                for name in sorted(filenames):
                    self.files.setdefault(name, []).append(Path(d) / name)
        for top in video_roots:
            for d, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for name in sorted(filenames):
                    stem, suffix = os.path.splitext(name)
                    if suffix.lower() in VIDEO_SUFFIXES:
                        self.videos.setdefault(stem, []).append(Path(d) / name)

    def find(self, key: str, override: str | None, folder: bool = False) -> Path | None:
        """The file (or folder) of logical name `key`: the override (relative to root), else
        the first of FILE_NAMES[key] at root, else the only one of that name below root."""
        if override:
            p = Path(override).expanduser()
            p = p if p.is_absolute() else self.root / p
            if not (p.is_dir() if folder else p.is_file()):
                raise FileNotFoundError(
                    f"{p}: {key} {'folder' if folder else 'file'} not found "
                    f"(named in the dataset's files.{key})"
                )
            return p
        found = self.dirs if folder else self.files
        for name in FILE_NAMES[key]:
            if (self.root / name).exists():
                return self.root / name
            hits = found.get(name, [])
            if len(hits) > 1:
                raise ValueError(
                    f"{self.root}: {len(hits)} files named {name} "
                    f"({', '.join(map(str, hits[:3]))}); name the one to use in "
                    f"the dataset's files.{key}"
                )
            if hits:
                return hits[0]
        return None

    def video(self, clip_id: str) -> Path | None:
        hits = self.videos.get(clip_id, [])
        if len(hits) > 1:
            raise ValueError(
                f"clip {clip_id} has {len(hits)} videos: {', '.join(map(str, hits))}; name the "
                f"folder(s) to take videos from in the dataset's `videos` list (e.g. only the "
                f"*_resized_224 archives)"
            )
        return hits[0] if hits else None


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


def _read_tasks(path: Path | None, tasks: list[str], lpath: Path) -> tuple[list, list, list]:
    """(task list, sequence-level tasks, probe seeds) of the tasks file, checked against the
    labels' vocabulary; without a file: every task, none sequence-level, seed 42."""
    if path is None:
        return list(tasks), [], [42]
    info = read_json(path)
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object {{seeds, task_id_list, ...}}")
    task_list = list(info.get("task_id_list", tasks))
    seq = list(info.get("sequence_level_tasks", []))
    seeds = info.get("seeds", [42])
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"{path}: seeds must be a non-empty list of integers, got {seeds!r}")
    for key, names in (("task_id_list", task_list), ("sequence_level_tasks", seq)):
        unknown = sorted(set(names) - set(tasks))
        if unknown:
            raise ValueError(f"{path}: {key} {unknown} are not in the vocabulary of {lpath}")
    return task_list, seq, list(seeds)


def _read_splits(
    folder: Path | None, tasks: list[str], labelled: set[str]
) -> tuple[dict[str, dict[str, list[str]]], dict[str, str], set[str]]:
    """Split files -> (distinct splits by name, task -> split name, UserTrain clips).

    A split file names each labelled clip in SubmissionTrain, publicTest or privateTest (an
    unknown clip there is an error naming the file); UserTrain lists video-only clips. Tasks
    without a file of their own share the split when every file holds the same one."""
    if folder is None:
        return {}, {}, set()
    files = {f.stem: f for f in sorted(folder.glob("*.json"))}
    if not files:
        raise FileNotFoundError(f"{folder}: no split files ({{task}}.json)")
    distinct: dict[str, dict[str, list[str]]] = {}
    by_content: dict[str, str] = {}
    task_split: dict[str, str] = {}
    user_train: set[str] = set()
    for name, f in files.items():
        info = read_json(f)
        if not isinstance(info, dict):
            raise ValueError(f"{f}: expected a JSON object of split lists")
        unknown_keys = sorted(set(info) - set(SPLITS))
        if unknown_keys:
            raise ValueError(f"{f}: unknown split(s) {unknown_keys}; expected {list(SPLITS)}")
        split = {}
        for key in SCORED:
            names = [str(c) for c in info.get(key, [])]
            unknown = sorted(set(names) - labelled)
            if unknown:
                raise ValueError(
                    f"{f}: split {key!r} names clip(s) {unknown[:3]} that are not "
                    f"in the frame_number_map of the labels"
                )
            split[key] = names
        ut = set(map(str, info.get("UserTrain", [])))
        clash = sorted(ut & labelled)
        if clash:
            raise ValueError(
                f"{f}: UserTrain names labelled clip(s) {clash[:3]} (UserTrain "
                f"clips are video only)"
            )
        user_train |= ut
        key = repr(sorted((k, sorted(v)) for k, v in split.items()))
        if key not in by_content:
            by_content[key] = name
            distinct[name] = split
        task_split[name] = by_content[key]
    for t in tasks:
        if t not in task_split:
            if len(distinct) != 1:
                raise ValueError(
                    f"{folder}: no split file {t}.json for task {t!r}, and the "
                    f"split files differ, so none can stand in for it"
                )
            task_split[t] = next(iter(distinct))
    return distinct, {t: task_split[t] for t in tasks}, user_train


def _keypoints(
    path: Path | None,
    clip_ids: list[str],
    lengths: Sequence[int],
    required: bool,
) -> dict[str, np.ndarray] | None:
    """{clip: float32 (T, 3, 12, 2)} of `clip_ids` from a keypoints file (None without one)."""
    if path is None:
        return None
    seqs = _load_dict(path, ("sequences",))["sequences"]
    out = {}
    for c, n in zip(clip_ids, lengths):
        if c not in seqs:
            if required:
                raise ValueError(f"{path}: no sequence {c!r}")
            continue
        kp = np.asarray(seqs[c].get("keypoints") if isinstance(seqs[c], dict) else None)
        if (
            kp.ndim != 4
            or kp.shape[1:] != (3, 12, 2)
            or not np.issubdtype(kp.dtype, np.number)
            or (n is not None and kp.shape[0] != n)
        ):
            expect = f"({n if n is not None else 'T'}, 3, 12, 2)"
            raise ValueError(
                f"{path}: keypoints of {c!r} have shape {kp.shape} ({kp.dtype}), "
                f"expected {expect} numeric"
            )
        out[c] = kp.astype(np.float32, copy=False)
    return out


def read(
    root: str | os.PathLike,
    files: Mapping[str, str] | None = None,
    videos: Sequence[str] | None = None,
    missing_videos: str = "skip",
    log=print,
) -> Dataset:
    """Read a MABe22 release folder (see the module docstring) into a `Dataset`.

    files: optional {labels, keypoints, user_train, frame_map, tasks, splits} paths (relative
    to root) for renamed files; videos: folders (relative to root) to take videos from,
    default all of root; missing_videos: "skip" (leave the clip out, named) or "error".
    `log` receives one line per clip left out or trimmed.
    Raises FileNotFoundError / ValueError naming the file on anything malformed, before any
    video is decoded.
    """
    if missing_videos not in ("skip", "error"):
        raise ValueError(f"missing_videos must be 'skip' or 'error', got {missing_videos!r}")
    files = dict(files or {})
    unknown = sorted(set(files) - set(FILE_NAMES))
    if unknown:
        raise ValueError(f"files: unknown key(s) {unknown}; expected {sorted(FILE_NAMES)}")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    vroots = [root / v if not Path(v).is_absolute() else Path(v) for v in (videos or [])] or [root]
    for v in vroots:
        if not v.is_dir():
            raise FileNotFoundError(f"{v}: video folder not found (named in the dataset's videos)")
    tree = _Tree(root, vroots)

    # ---- labels and the frame axis ---------------------------------------------------
    lpath = tree.find("labels", files.get("labels"))
    if lpath is None:
        raise FileNotFoundError(
            f"{root}: no labels file ({' or '.join(FILE_NAMES['labels'])}) "
            f"under the dataset folder; name it in the dataset's files.labels"
        )
    lab = _load_dict(lpath, LABEL_KEYS)
    tasks = [str(t) for t in lab["vocabulary"]]
    types = normalise_task_types([str(t) for t in lab["task_type"]], str(lpath))
    clip_ids, starts, ends = _frame_map(lpath, lab["frame_number_map"])
    check_frame_axis(clip_ids, starts, ends, str(lpath))
    if len(types) != len(tasks):
        raise ValueError(f"{lpath}: {len(tasks)} tasks in vocabulary but {len(types)} task types")
    check_label_array(lab["label_array"], tasks, types, int(ends[-1]), str(lpath))
    label_array = lab["label_array"].astype(np.float32, copy=False)
    fnm = {c: [int(s), int(e)] for c, s, e in zip(clip_ids, starts, ends)}

    fpath = tree.find("frame_map", files.get("frame_map"))
    if fpath is not None:
        other = _frame_map(fpath, _load_dict(fpath))
        if other[0] != clip_ids or not (
            np.array_equal(other[1], starts) and np.array_equal(other[2], ends)
        ):
            raise ValueError(f"{fpath}: disagrees with the frame_number_map of {lpath}")

    tpath = tree.find("tasks", files.get("tasks"))
    task_list, seq_tasks, seeds = _read_tasks(tpath, tasks, lpath)
    spath = tree.find("splits", files.get("splits"), folder=True)
    splits, task_split, user_train_ids = _read_splits(spath, task_list, set(clip_ids))

    # ---- keypoints: labelled clips from the submission file, userTrain from user_train -
    lengths = [int(e - s) for s, e in zip(starts, ends)]
    kpath = tree.find("keypoints", files.get("keypoints"))
    keypoints = _keypoints(kpath, clip_ids, lengths, required=True)
    upath = tree.find("user_train", files.get("user_train"))
    ut_kp: dict[str, np.ndarray] = {}
    if upath is not None:
        seqs = _load_dict(upath, ("sequences",))["sequences"]
        clash = sorted(set(map(str, seqs)) & set(clip_ids))
        if clash:
            raise ValueError(
                f"{upath}: holds labelled clip(s) {clash[:3]} of {lpath}; it should "
                f"hold the userTrain clips only"
            )
        user_train_ids |= set(map(str, seqs))
        ut_kp = _keypoints(upath, sorted(map(str, seqs)), [None] * len(seqs), required=True) or {}

    # ---- videos --------------------------------------------------------------------------
    present, missing = [], []
    for i, c in enumerate(clip_ids):
        (present if tree.video(c) is not None else missing).append(i)
    if missing and missing_videos == "error":
        raise FileNotFoundError(
            f"{root}: no video for {len(missing)} labelled clip(s) "
            f"({', '.join(clip_ids[i] for i in missing[:5])}) and missing_videos is 'error'"
        )
    if not present:
        raise FileNotFoundError(
            f"{root}: no video of any labelled clip of {lpath} under {', '.join(map(str, vroots))}"
        )
    for i in missing:
        log(
            f"{clip_ids[i]}: labelled in {lpath.name} but no video under "
            f"{', '.join(map(str, vroots))}; left out"
        )
    trimmed: list[str] = []
    video_paths, fps = [], []
    for i in present:
        p = tree.video(clip_ids[i])
        rate, cut = match_video_length(p, clip_ids[i], lengths[i])
        video_paths.append(p)
        fps.append(rate)
        if cut:
            trimmed.append(clip_ids[i])
    video_only = []
    for c in sorted(user_train_ids):
        p = tree.video(c)
        if p is None:
            continue  # a userTrain clip without video adds nothing to pretraining
        n_kp = ut_kp[c].shape[0] if c in ut_kp else None
        if n_kp is None:
            n, rate = count_video_frames(p)
            cut = 0
        else:
            n = n_kp
            rate, cut = match_video_length(p, c, n_kp)
        if cut:
            trimmed.append(c)
        video_only.append(VideoOnlyClip(c, p.resolve(), int(n), float(rate)))

    if trimmed:  # every clip of the release may have it: one line, not thousands
        log(
            f"{len(trimmed)} clip(s) have a video one frame longer than their labels or "
            f"keypoints (the evaluator drops that frame); trimmed: {', '.join(trimmed[:5])}"
            f"{', ...' if len(trimmed) > 5 else ''}"
        )

    # ---- the labelled clips that have video, laid end to end ----------------------------
    keep = np.array(present)
    n_frames = np.array(lengths, np.int64)[keep]
    new_ends = np.cumsum(n_frames)
    cols = np.concatenate([np.arange(starts[i], ends[i]) for i in keep])
    kept_ids = [clip_ids[i] for i in keep]
    clipset = ClipSet(
        kept_ids,
        [p.resolve() for p in video_paths],
        n_frames,
        np.array(fps, np.float64),
        tasks,
        types,
        np.array([t in seq_tasks for t in tasks]),
        label_array if len(keep) == len(clip_ids) else label_array[:, cols],
        new_ends - n_frames,
        new_ends,
        None if keypoints is None else {c: keypoints[c] for c in kept_ids},
        source=str(lpath),
    )
    protocol = None
    if splits:
        kept = set(kept_ids)
        splits = {
            n: {k: [c for c in v if c in kept] for k, v in s.items()} for n, s in splits.items()
        }
        where = spath.relative_to(root) if spath.is_relative_to(root) else spath
        protocol = Protocol(
            task_list,
            seq_tasks,
            seeds,
            splits,
            task_split,
            source=f"split files {where.as_posix()}/",
            frame_number_map=fnm,
            missing_videos=[clip_ids[i] for i in missing],
            trimmed=trimmed,
            video_only=[v.clip_id for v in video_only],
        )
        protocol.validate(kept_ids, str(spath))
    notes = {
        "task_list": task_list,
        "sequence_level": seq_tasks,
        "seeds": seeds,
        "frame_number_map": fnm,
        "missing_videos": [clip_ids[i] for i in missing],
        "trimmed": trimmed,
    }
    return Dataset(clipset, video_only, protocol, notes)
