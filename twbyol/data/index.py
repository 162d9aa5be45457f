"""`twbyol read-dataset`: read a dataset into the pipeline's clip list, clip index, labels
and protocol, in two steps.

    twbyol read-dataset --format mabe22 --root results/smoke/data/mice \\
        --clips-out results/smoke/frames/mice/clips.tsv --n-shards 2
    twbyol read-dataset --format mabe22 --root results/smoke/data/mice \\
        --clips results/smoke/frames/mice/clips.tsv \\
        --index-out results/smoke/frames/mice/index.tsv \\
        --labels-out results/smoke/labels/mice.npz \\
        --protocol-out results/smoke/labels/mice.protocol.json

The first (`--clips-out`) lists the videos: every clip with its frame count, rate, source
and frame-extraction shard (balanced by frame count), from the videos alone (a `videos`
folder's label files are not opened; a release's clip set is its own files'). Frame
extraction and pretraining read only it, so a label edit reruns neither. The second reads
the labels with the reader of the format (`twbyol.data.mabe22` / `.ratsi` / `.videos`),
which validates them; it fixes the canonical clip order (the labelled clips in frame-map
order, then the video-only clips by id), takes each clip's shard from the clip list (and
checks that the two agree) and writes index.tsv, the labels .npz and the evaluation protocol
(twbyol.split; derived when the layout has no split files) described in docs/artifacts.md.
Without `--clips` the second assigns the shards itself (`--n-shards`). `read_clips`,
`read_index` and `load_labels` are the validated loaders other stages use.
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
# twbyol.data.artifacts (which the later stages import without the readers)
from twbyol.data.artifacts import CLIP_COLUMNS, INDEX_COLUMNS, read_clips, source_path
from twbyol.data.clips import Dataset, VideoOnlyClip
from twbyol.io import write_npz, write_text
from twbyol.settings import CLIP_OPTIONS, EVALUATOR_SEED, READER_OPTIONS
from twbyol.split import Protocol, derived_protocol, write_protocol

READERS = {"mabe22": mabe22.read, "ratsi": ratsi.read, "videos": videos.read}


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


def clip_frame(
    clips: list[VideoOnlyClip], n_shards: int, root: str | os.PathLike | None = None
) -> pd.DataFrame:
    """The clip list (one row per clip, CLIP_COLUMNS, in the given order), shards balanced
    by frame count; sources relative to `root` where they lie under it (`source_path`)."""
    root = Path(root).resolve() if root is not None else None
    n_frames = np.array([c.n_frames for c in clips], np.int64)
    return pd.DataFrame(
        {
            "clip_id": [c.clip_id for c in clips],
            "n_frames": n_frames,
            "fps": np.array([c.fps for c in clips], np.float64),
            "source": [source_path(c.video_path, root) for c in clips],
            "shard": assign_shards(n_frames, n_shards),
        },
        columns=list(CLIP_COLUMNS),
    )


def all_clips(ds: Dataset) -> list[VideoOnlyClip]:
    """Every clip of a read dataset, labelled first (frame-axis order), as plain video clips."""
    cs = ds.clips
    lab = [
        VideoOnlyClip(c, Path(p), int(n), float(f))
        for c, p, n, f in zip(cs.clip_ids, cs.video_paths, cs.n_frames, cs.fps)
    ]
    return lab + list(ds.video_only)


def scan_clips(fmt: str, root: str | os.PathLike, options: dict | None = None, log=print):
    """The clip list of a dataset, from its videos alone where the format allows: a `videos`
    folder's videos by path (no label file read); a release's clips as its reader lists them
    (its clip set is its own files': the frame map, the video folder)."""
    if fmt == "videos":
        unknown = sorted(set(options or {}) - set(CLIP_OPTIONS[fmt]))
        if unknown:
            raise ValueError(
                f"{root}: option(s) {unknown} do not decide the clip list of format {fmt!r}"
            )
        clips = videos.scan(root)
        log(f"{root}: {len(clips)} videos")
        return clips
    return all_clips(read_dataset(fmt, root, options, log=log))


def check_lengths(clips: list[VideoOnlyClip], min_frames: int, root) -> None:
    """ValueError naming every clip shorter than `min_frames` (the experiment's crop span):
    pretraining cannot crop them, and would find out only after every video's frames were
    extracted."""
    short = [c for c in clips if c.n_frames < min_frames]
    if short:
        named = ", ".join(f"{c.clip_id} ({c.n_frames} frames, {c.video_path})" for c in short[:10])
        more = f" and {len(short) - 10} more" if len(short) > 10 else ""
        raise ValueError(
            f"{root}: {len(short)} clip(s) shorter than the experiment's crop span of "
            f"{min_frames} frames ((crop.num_frames - 1) x crop.stride + 1), which "
            f"pretraining cannot crop: {named}{more}. Remove them from the dataset, or "
            "shorten the crops"
        )


def shards_from(clips: pd.DataFrame, where: Path, ds: Dataset, root: Path) -> dict[str, int]:
    """{clip id: shard} of the clip list `clips` (read from `where`), checked against the
    dataset as read now: the same clips, sources and frame counts, else an error naming the
    file (a clip list written before the videos changed)."""
    have = clip_frame(all_clips(ds), 1, root).set_index("clip_id")
    listed = clips.set_index("clip_id")
    if set(have.index) != set(listed.index):
        extra = sorted(set(listed.index) - set(have.index))[:3]
        lost = sorted(set(have.index) - set(listed.index))[:3]
        raise ValueError(
            f"{where}: the clip list does not match the dataset under {root} (listed but not "
            f"read: {extra}; read but not listed: {lost}); rewrite it with --clips-out"
        )
    for col in ("source", "n_frames"):
        bad = [c for c in have.index if have.loc[c, col] != listed.loc[c, col]]
        if bad:
            then, now = (t.loc[bad[0], col] for t in (listed, have))
            then, now = (v.item() if isinstance(v, np.generic) else v for v in (then, now))
            raise ValueError(
                f"{where}: clip {bad[0]!r} has {col} {then!r} there but {now!r} in the "
                f"dataset under {root}; rewrite it with --clips-out"
            )
    return {str(c): int(k) for c, k in listed["shard"].items()}


def index_frame(
    ds: Dataset,
    splits: dict[str, set[str]],
    n_shards: int | dict[str, int],
    root: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The index table (one row per clip, INDEX_COLUMNS): the clip list of every clip
    (`clip_frame`), labelled clips first in frame-axis order, then the video-only ones, with
    what the labels decide; start/end lay all of them end to end, so the labelled clips' rows
    keep the labels' frame axis. `n_shards`: a count to balance the clips over, or each
    clip's shard ({clip id: shard}, the clip list's)."""
    given = isinstance(n_shards, dict)
    df = clip_frame(all_clips(ds), 1 if given else n_shards, root)
    if given:
        df["shard"] = np.array([n_shards[c] for c in df["clip_id"]], np.int64)
    ends = np.cumsum(df["n_frames"].to_numpy())
    df["start"] = ends - df["n_frames"].to_numpy()
    df["end"] = ends
    df["labelled"] = [1] * len(ds.clips.clip_ids) + [0] * len(ds.video_only)
    df["splits"] = [
        ",".join(
            s
            for s in ("UserTrain", "SubmissionTrain", "publicTest", "privateTest")
            if s in splits.get(c, ())
        )
        for c in df["clip_id"]
    ]
    return df[list(INDEX_COLUMNS)]


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
    p.add_argument(
        "--clips-out",
        type=Path,
        help="write only the clip list (clips.tsv) to this path, from the videos alone "
        "(with --n-shards; not with the outputs below)",
    )
    p.add_argument(
        "--clips",
        type=Path,
        help="the dataset's clips.tsv (from --clips-out): each clip's shard is taken from "
        "it, and the two are checked to agree",
    )
    p.add_argument("--index-out", type=Path, help="index.tsv to write")
    p.add_argument("--labels-out", type=Path, help="labels .npz to write")
    p.add_argument(
        "--protocol-out",
        type=Path,
        help="evaluation protocol .json to write (twbyol.split.Protocol)",
    )
    p.add_argument(
        "--n-shards",
        type=int,
        help="frame-extraction shards (one extract-frames job each); with --clips-out, or "
        "without --clips",
    )
    p.add_argument(
        "--min-frames",
        type=int,
        default=0,
        help="with --clips-out: fail, naming them, on clips shorter than this (the "
        "experiment's crop span, for its pretraining dataset), before any frame is extracted",
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
    outs = {
        "--index-out": a.index_out,
        "--labels-out": a.labels_out,
        "--protocol-out": a.protocol_out,
    }
    if a.clips_out is not None:
        given = [k for k, v in {**outs, "--clips": a.clips}.items() if v is not None]
        if given or a.n_shards is None:
            p.error(
                "--clips-out writes the clip list alone: give it --n-shards"
                + (f", not {', '.join(given)}" if given else "")
            )
        if a.n_shards < 1:
            p.error(f"--n-shards must be >= 1, got {a.n_shards}")
        clips = scan_clips(a.fmt, a.root, io.json_arg(a.options))
        check_lengths(clips, a.min_frames, a.root)
        write_text(
            a.clips_out,
            clip_frame(clips, a.n_shards, a.root).to_csv(sep="\t", index=False),
        )
        print(
            f"{a.root}: {len(clips)} clips, {sum(c.n_frames for c in clips)} frames -> "
            f"{a.clips_out} ({a.n_shards} shards)"
        )
        return 0
    missing = [k for k, v in outs.items() if v is None]
    if missing:
        p.error(f"give {', '.join(missing)} (or --clips-out for the clip list alone)")
    if a.clips is None and a.n_shards is None:
        p.error("give --clips (the clip list's shards) or --n-shards")
    clip_list = read_clips(a.clips) if a.clips is not None else None
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
    shards = a.n_shards if clip_list is None else shards_from(clip_list, a.clips, ds, a.root)
    index = index_frame(ds, protocol.clip_splits(), shards, a.root)
    write_text(a.index_out, index.to_csv(sep="\t", index=False))
    print(
        f"{a.root}: {len(cs.clip_ids)} labelled clips ({cs.total_frames} frames, "
        f"{len(cs.tasks)} tasks; protocol: {protocol.source}, {len(protocol.tasks)} tasks, "
        f"probe seeds {protocol.seeds}), {len(ds.video_only)} video-only clips, "
        f"{len(protocol.missing_videos)} left out for a missing video, "
        f"{len(protocol.trimmed)} trimmed -> {a.index_out} "
        f"({'shards of ' + str(a.clips) if clip_list is not None else f'{a.n_shards} shards'}), "
        f"{a.labels_out}, {a.protocol_out}"
    )
    return 0
