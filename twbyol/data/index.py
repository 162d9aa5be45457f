"""`twbyol read-dataset`: read a dataset into the pipeline's clip index and label file.

    twbyol read-dataset --format mabe22 --root results/smoke/data/mice \\
        --index-out results/smoke/frames/mice/index.tsv \\
        --labels-out results/smoke/labels/mice.npz --n-shards 2

The reader of the format (`twbyol.data.mabe22` / `.ratsi`) validates the files and videos;
this stage fixes the canonical clip order (the readers' order), assigns frame-extraction
shards balanced by frame count, and writes index.tsv and the labels .npz described in
docs/artifacts.md. `read_index` and `load_labels` are the validated loaders other stages use.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from twbyol.data import mabe22, ratsi
from twbyol.data.clips import TASK_TYPES, ClipSet
from twbyol.io import write_npz, write_text

READERS = {"mabe22": mabe22.read, "ratsi": ratsi.read}
INDEX_COLUMNS = ("clip_id", "n_frames", "fps", "source", "shard", "start", "end")
LABEL_KEYS = ("tasks", "task_types", "sequence_level", "label_array", "clips", "starts", "ends")


def assign_shards(n_frames: np.ndarray, n_shards: int) -> np.ndarray:
    """int64 (n,) shard of each clip, balancing total frames per shard.

    Longest clips first, each to the currently lightest shard (lowest index on ties):
    deterministic, and within one clip of the best balance for equal-length clips.
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    load = np.zeros(n_shards, np.int64)
    shard = np.empty(len(n_frames), np.int64)
    for i in np.argsort(-np.asarray(n_frames), kind="stable"):
        k = int(np.argmin(load))
        shard[i] = k
        load[k] += n_frames[i]
    return shard


def index_frame(cs: ClipSet, shards: np.ndarray) -> pd.DataFrame:
    """The index table (one row per clip, INDEX_COLUMNS) of a ClipSet."""
    return pd.DataFrame(
        {
            "clip_id": cs.clip_ids,
            "n_frames": cs.n_frames,
            "fps": cs.fps,
            "source": [str(p) for p in cs.video_paths],
            "shard": shards,
            "start": cs.starts,
            "end": cs.ends,
        },
        columns=list(INDEX_COLUMNS),
    )


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    """Load and validate an index.tsv (columns INDEX_COLUMNS, rows in canonical clip order).

    Raises FileNotFoundError / ValueError naming the file on a missing file, a missing
    column, bad types, duplicate clip ids or a frame axis that is not the clips end to end.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: index not found")
    try:
        # Clip ids and paths stay strings ("0012" must not become 12, "NA" not NaN).
        df = pd.read_csv(
            path, sep="\t", dtype={"clip_id": str, "source": str}, keep_default_na=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path}: not a readable TSV file ({e})") from None
    missing = [c for c in INDEX_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    df = df[list(INDEX_COLUMNS)]
    for col, kind in (
        ("n_frames", "i"),
        ("shard", "i"),
        ("start", "i"),
        ("end", "i"),
        ("fps", "f"),
    ):
        if df[col].dtype.kind not in ("i", kind):
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
    ends = df["n_frames"].cumsum().to_numpy()
    if not (
        np.array_equal(df["end"].to_numpy(), ends)
        and np.array_equal(df["start"].to_numpy(), ends - df["n_frames"].to_numpy())
    ):
        raise ValueError(
            f"{path}: start/end must lay the clips end to end (end - start = n_frames)"
        )
    return df


def load_labels(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load and validate a labels .npz (keys LABEL_KEYS, see docs/artifacts.md).

    Returns the arrays as stored: tasks/task_types/clips str (K,)/(K,)/(n,), sequence_level
    bool (K,), label_array float32 (K, total_frames), starts/ends int64 (n,).
    """
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
    return out


def main(argv: list[str] | None = None, prog: str = "twbyol read-dataset") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--format", required=True, choices=sorted(READERS), dest="fmt")
    p.add_argument("--root", required=True, type=Path, help="dataset folder in that layout")
    p.add_argument("--index-out", required=True, type=Path, help="index.tsv to write")
    p.add_argument("--labels-out", required=True, type=Path, help="labels .npz to write")
    p.add_argument(
        "--n-shards",
        required=True,
        type=int,
        help="frame-extraction shards (one extract-frames job each)",
    )
    a = p.parse_args(argv)
    cs = READERS[a.fmt](a.root)
    shards = assign_shards(cs.n_frames, a.n_shards)
    write_npz(
        a.labels_out,
        tasks=np.array(cs.tasks),
        task_types=np.array(cs.task_types),
        sequence_level=cs.sequence_level.astype(bool),
        label_array=cs.label_array,
        clips=np.array(cs.clip_ids),
        starts=cs.starts.astype(np.int64),
        ends=cs.ends.astype(np.int64),
    )
    write_text(a.index_out, index_frame(cs, shards).to_csv(sep="\t", index=False))
    print(
        f"{a.root}: {len(cs.clip_ids)} clips, {cs.total_frames} frames, {len(cs.tasks)} tasks "
        f"-> {a.index_out} ({a.n_shards} shards), {a.labels_out}"
    )
    return 0
