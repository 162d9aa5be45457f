"""The artifacts every stage after read-dataset reads: clips.tsv, index.tsv and the labels
.npz, their columns and keys, and their validated loaders (docs/artifacts.md).

clips.tsv (`twbyol read-dataset --clips-out`) lists the videos: what frame extraction and
pretraining read, written from the videos alone, so that a label edit reruns neither.
index.tsv (`--index-out`) adds what the labels decide (which clips are labelled, their
order on the labels' frame axis, their protocol splits).

Kept apart from the dataset readers (twbyol.data.index, .mabe22, .ratsi) so that the stages
that only load these files (frames, pretrain, embed, evaluate, figures) neither import nor,
as the rules' code inputs, depend on the readers: editing a reader reruns read-dataset, and
what follows only if the index or labels it writes change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TASK_TYPES = ("Discrete", "Continuous")  # of a task (labels .npz `task_types`)
# labelled: 1 for clips with labels (rows of the labels, embeddings and evaluation), 0 for
# video-only clips (pretraining only); splits: the protocol splits a clip is in, comma-joined
INDEX_COLUMNS = (
    "clip_id",
    "n_frames",
    "fps",
    "source",
    "shard",
    "start",
    "end",
    "labelled",
    "splits",
)
# clips.tsv: the columns of index.tsv that the videos alone decide (its rows in the reader's
# clip order: a `videos` folder's by path, whatever is labelled)
CLIP_COLUMNS = ("clip_id", "n_frames", "fps", "source", "shard")
LABEL_KEYS = ("tasks", "task_types", "sequence_level", "label_array", "clips", "starts", "ends")


def source_path(video: str | os.PathLike, root: Path | None) -> str:
    """A video's `source` as index.tsv stores it: relative to the dataset root when the video
    lies under it (a study moved with its data keeps its index, and so its frames), else
    absolute (a `videos` folder of the reader's options outside the root)."""
    video = Path(video).resolve()
    if root is not None and video.is_relative_to(root):
        return video.relative_to(root).as_posix()
    return str(video)


def resolve_source(source: str, root: str | os.PathLike | None) -> Path:
    """The video of an index row: `source` joined to the dataset root it is relative to."""
    p = Path(source)
    return p if p.is_absolute() or root is None else Path(root) / p


def _read_table(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """A TSV with at least `columns` (those returned, in that order), typed and checked as
    read_clips says; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        # Clip ids and paths stay strings ("0012" must not become 12, "NA" not NaN).
        df = pd.read_csv(
            path,
            sep="\t",
            dtype={"clip_id": str, "source": str, "splits": str},
            keep_default_na=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path}: not a readable TSV file ({e})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    df = df[list(columns)]
    for col, kind in (
        ("n_frames", "i"),
        ("shard", "i"),
        ("start", "i"),
        ("end", "i"),
        ("labelled", "i"),
        ("fps", "f"),
    ):
        if col in columns and df[col].dtype.kind not in ("i", kind):
            raise ValueError(
                f"{path}: column {col} must be numeric "
                f"({'integer' if kind == 'i' else 'number'}), got {df[col].dtype}"
            )
    if df.empty:
        raise ValueError(f"{path}: no clips")
    if df["clip_id"].duplicated().any():
        raise ValueError(
            f"{path}: duplicate clip ids {df['clip_id'][df['clip_id'].duplicated()].tolist()[:5]}"
        )
    if (df["n_frames"] <= 0).any() or (df["fps"] <= 0).any() or (df["shard"] < 0).any():
        raise ValueError(f"{path}: n_frames and fps must be positive and shard >= 0")
    return df


def read_clips(path: str | os.PathLike) -> pd.DataFrame:
    """Load and validate a clips.tsv (columns CLIP_COLUMNS; an index.tsv, which has them
    too, reads as its clips). Raises FileNotFoundError / ValueError naming the file on a
    missing file, a missing column, bad types or duplicate clip ids."""
    return _read_table(Path(path), CLIP_COLUMNS, "clip list")


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    """Load and validate an index.tsv (columns INDEX_COLUMNS, rows in canonical clip order).

    Raises FileNotFoundError / ValueError naming the file on a missing file, a missing
    column, bad types, duplicate clip ids or a frame axis that is not the clips end to end.
    """
    path = Path(path)
    df = _read_table(path, INDEX_COLUMNS, "index")
    lab = df["labelled"].to_numpy()
    if not np.isin(lab, (0, 1)).all() or np.any(np.diff(lab) > 0):
        raise ValueError(
            f"{path}: labelled must be 1 for the labelled clips, listed first, "
            f"and 0 for the video-only clips after them"
        )
    ends = df["n_frames"].cumsum().to_numpy()
    if not (
        np.array_equal(df["end"].to_numpy(), ends)
        and np.array_equal(df["start"].to_numpy(), ends - df["n_frames"].to_numpy())
    ):
        raise ValueError(
            f"{path}: start/end must lay the clips end to end (end - start = n_frames)"
        )
    return df


def labelled_spans(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Clip ids, starts and ends (int64) of the labelled clips of an index.tsv (`read_index`,
    validated): the rows of the labels, the embeddings and the evaluation."""
    df = read_index(path)
    df = df[df["labelled"] == 1]
    return (
        [str(c) for c in df["clip_id"]],
        df["start"].to_numpy(np.int64),
        df["end"].to_numpy(np.int64),
    )


@dataclass
class Labels:
    """Per-frame labels of one dataset (docs/artifacts.md: labels .npz), as `load_labels`
    validates them: the one type every stage reads labels as."""

    tasks: list[str]
    task_types: list[str]
    sequence_level: np.ndarray  # (n_tasks,) bool
    label_array: np.ndarray  # (n_tasks, n_frames) float32, NaN = unlabelled
    clips: list[str]
    starts: np.ndarray  # (n_clips,) int64
    ends: np.ndarray  # (n_clips,) int64

    def rows(self, clips) -> np.ndarray:
        """Frame rows of the named clips, in frame-axis order (as the evaluator's boolean
        frame mask takes them), whatever the order of `clips`."""
        pos = {c: i for i, c in enumerate(self.clips)}
        idx = sorted(pos[c] for c in clips)
        if not idx:
            return np.zeros(0, np.int64)
        return np.concatenate([np.arange(self.starts[i], self.ends[i]) for i in idx])

    @property
    def frame_tasks(self) -> list[int]:
        """Indices of the per-frame Discrete tasks: the headline's tasks."""
        return [
            t
            for t, (ty, sl) in enumerate(zip(self.task_types, self.sequence_level))
            if ty == "Discrete" and not sl
        ]


def load_labels(path: str | os.PathLike) -> Labels:
    """Load and validate a labels .npz (keys LABEL_KEYS, see docs/artifacts.md) as `Labels`.
    Errors name the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: labels not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    missing = [k for k in LABEL_KEYS if k not in out]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    k, n = len(out["tasks"]), len(out["clips"])
    la = out["label_array"]
    if la.dtype != np.float32 or la.ndim != 2 or la.shape[0] != k:
        raise ValueError(
            f"{path}: label_array must be float32 ({k} tasks, frames), got {la.dtype} {la.shape}"
        )
    if len(out["task_types"]) != k or len(out["sequence_level"]) != k:
        raise ValueError(f"{path}: tasks, task_types and sequence_level differ in length")
    if set(out["task_types"].tolist()) - set(TASK_TYPES):
        raise ValueError(f"{path}: task_types must be in {TASK_TYPES}")
    if len(out["starts"]) != n or len(out["ends"]) != n or n == 0 or out["ends"][-1] != la.shape[1]:
        raise ValueError(
            f"{path}: starts/ends must give one (start, end) per clip ending at "
            f"{la.shape[1]} frames"
        )
    return Labels(
        [str(t) for t in out["tasks"]],
        [str(t) for t in out["task_types"]],
        out["sequence_level"].astype(bool),
        la,
        [str(c) for c in out["clips"]],
        out["starts"].astype(np.int64),
        out["ends"].astype(np.int64),
    )
