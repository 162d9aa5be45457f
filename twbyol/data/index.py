"""`twbyol read-dataset`: read a dataset into the pipeline's clip index, labels and protocol.

    twbyol read-dataset --format mabe22 --root results/smoke/data/mice \\
        --index-out results/smoke/frames/mice/index.tsv \\
        --labels-out results/smoke/labels/mice.npz \\
        --protocol-out results/smoke/labels/mice.protocol.json --n-shards 2

The reader of the format (`twbyol.data.mabe22` / `.ratsi`) validates the files and videos;
this stage fixes the canonical clip order (the labelled clips in frame-map order, then the
video-only clips by id), assigns frame-extraction shards balanced by frame count, and writes
index.tsv, the labels .npz and the evaluation protocol (twbyol.split; derived when the
layout has no split files) described in docs/artifacts.md. `read_index` and `load_labels`
are the validated loaders other stages use.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from twbyol import io
from twbyol.data import mabe22, ratsi, videos

# the artifacts' columns, the sources' paths and the validated loaders live in
# twbyol.data.artifacts (which the later stages import without the readers); re-exported
from twbyol.data.artifacts import (  # noqa: F401
    INDEX_COLUMNS,
    LABEL_KEYS,
    load_labels,
    read_index,
    resolve_source,
    source_path,
)
from twbyol.data.clips import Dataset
from twbyol.io import write_npz, write_text
from twbyol.split import EVALUATOR_SEED, Protocol, derived_protocol, write_protocol

READERS = {"mabe22": mabe22.read, "ratsi": ratsi.read, "videos": videos.read}
# Reader options a dataset's config may set, by format (workflow/schemas/config.schema.yaml)
READER_OPTIONS = {
    "mabe22": ("files", "videos", "missing_videos"),
    "ratsi": (),
    "videos": ("behaviours",),
}


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


def index_frame(
    ds: Dataset, splits: dict[str, set[str]], n_shards: int, root: str | os.PathLike | None = None
) -> pd.DataFrame:
    """The index table (one row per clip, INDEX_COLUMNS): the labelled clips in frame-axis
    order, then the video-only ones; start/end lay all of them end to end, so the labelled
    clips' rows keep the labels' frame axis. Sources are relative to `root` where they lie
    under it (`source_path`)."""
    root = Path(root).resolve() if root is not None else None
    cs = ds.clips
    ids = cs.clip_ids + [v.clip_id for v in ds.video_only]
    n_frames = np.concatenate([cs.n_frames, [v.n_frames for v in ds.video_only]]).astype(np.int64)
    ends = np.cumsum(n_frames)
    return pd.DataFrame(
        {
            "clip_id": ids,
            "n_frames": n_frames,
            "fps": np.concatenate([cs.fps, [v.fps for v in ds.video_only]]),
            "source": [
                source_path(p, root)
                for p in [*cs.video_paths, *(v.video_path for v in ds.video_only)]
            ],
            "shard": assign_shards(n_frames, n_shards),
            "start": ends - n_frames,
            "end": ends,
            "labelled": [1] * len(cs.clip_ids) + [0] * len(ds.video_only),
            "splits": [
                ",".join(
                    s
                    for s in ("UserTrain", "SubmissionTrain", "publicTest", "privateTest")
                    if s in splits.get(c, ())
                )
                for c in ids
            ],
        },
        columns=list(INDEX_COLUMNS),
    )


def read_dataset(
    fmt: str, root: str | os.PathLike, options: dict | None = None, log=print
) -> Dataset:
    """Read `root` with the reader of `fmt`, passing the dataset's reader `options`."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(READER_OPTIONS[fmt]))
    if unknown:
        raise ValueError(
            f"{root}: option(s) {unknown} do not apply to format {fmt!r} "
            f"(it takes {list(READER_OPTIONS[fmt]) or 'none'})"
        )
    if fmt in ("mabe22", "videos"):
        return READERS[fmt](root, log=log, **options)
    return READERS[fmt](root)


def main(argv: list[str] | None = None, prog: str = "twbyol read-dataset") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--format", required=True, choices=sorted(READERS), dest="fmt")
    p.add_argument("--root", required=True, type=Path, help="dataset folder in that layout")
    p.add_argument(
        "--options",
        default="{}",
        help="reader options as inline JSON (mabe22: files, videos, missing_videos)",
    )
    p.add_argument("--index-out", required=True, type=Path, help="index.tsv to write")
    p.add_argument("--labels-out", required=True, type=Path, help="labels .npz to write")
    p.add_argument(
        "--protocol-out",
        required=True,
        type=Path,
        help="evaluation protocol .json to write (twbyol.split.Protocol)",
    )
    p.add_argument(
        "--n-shards",
        required=True,
        type=int,
        help="frame-extraction shards (one extract-frames job each)",
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=EVALUATOR_SEED,
        help="seed of a derived split, for a layout without split files (default: "
        "the evaluator's 42)",
    )
    p.add_argument(
        "--require-labels",
        action="store_true",
        help="fail when no clip is labelled (the workflow passes it for evaluated datasets)",
    )
    a = p.parse_args(argv)
    ds = read_dataset(a.fmt, a.root, io.json_arg(a.options))
    cs = ds.clips
    protocol = ds.protocol
    if not cs.clip_ids:  # unlabelled videos only: a pretraining dataset, nothing to score
        if a.require_labels:
            raise ValueError(
                f"{a.root}: none of its {len(ds.video_only)} videos has labels, but the "
                "experiment evaluates it (eval_datasets); label some videos, or pretrain on "
                "it and evaluate on a labelled dataset"
            )
        protocol = Protocol(
            [],
            [],
            [a.split_seed],
            {},
            {},
            source="none: no labelled clip (a pretraining-only dataset)",
            video_only=[v.clip_id for v in ds.video_only],
        )
    elif protocol is None:  # no split files: the release's shares, and what the reader noted
        notes = ds.notes
        protocol = replace(
            derived_protocol(
                cs.clip_ids,
                notes.get("task_list", cs.tasks),
                [t for t, s in zip(cs.tasks, cs.sequence_level) if s],
                a.split_seed,
                notes.get("seeds"),
            ),
            frame_number_map=notes.get("frame_number_map"),
            missing_videos=notes.get("missing_videos", []),
            trimmed=notes.get("trimmed", []),
            video_only=[v.clip_id for v in ds.video_only],
        )
    protocol.validate(cs.clip_ids, str(a.protocol_out))
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
    write_protocol(a.protocol_out, protocol)
    index = index_frame(ds, protocol.clip_splits(), a.n_shards, a.root)
    write_text(a.index_out, index.to_csv(sep="\t", index=False))
    print(
        f"{a.root}: {len(cs.clip_ids)} labelled clips ({cs.total_frames} frames, "
        f"{len(cs.tasks)} tasks; protocol: {protocol.source}, {len(protocol.tasks)} tasks, "
        f"probe seeds {protocol.seeds}), {len(ds.video_only)} video-only clips, "
        f"{len(protocol.missing_videos)} left out for a missing video, "
        f"{len(protocol.trimmed)} trimmed -> {a.index_out} ({a.n_shards} shards), "
        f"{a.labels_out}, {a.protocol_out}"
    )
    return 0
