"""`twbyol extract-frames`: decode one shard of videos into memory-mappable uint8 .npy files.

    twbyol extract-frames --clips results/smoke/frames/mice/clips.tsv --shard 0 --size 48 \\
        --out-dir results/smoke/frames/mice --done results/smoke/frames/mice/shard0.done \\
        --root results/smoke/data/mice

Each clip becomes `{out-dir}/{clip_id}.npy`, uint8 (n_frames, size, size) grayscale, read later
with `np.load(p, mmap_mode="r")`. Frames go from PyAV's decoder through swscale (which
converts to gray and resizes in one pass, at no extra cost) straight into an `open_memmap`
at a temp path that is renamed only when the whole clip decoded with the expected frame
count. The .done file (JSON: clip ids and frame counts) is written after the last clip.

Disk space: before decoding, the shard's bytes still needed are checked against the free
space of --out-dir (an error naming both, before any work); each clip's file is then
allocated whole before it is mapped, so a disk that fills meanwhile is an error naming the
clip's file, never a SIGBUS. Either way nothing that looks complete is left, and the same
command finishes once there is room.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from twbyol.data.artifacts import read_clips, resolve_source
from twbyol.data.clips import count_video_frames
from twbyol.io import atomic_path, require_space, reserve, write_json
from twbyol.settings import DEFAULT_FRAME_FIT
from twbyol.settings import FRAME_FITS as FITS

# Area averaging: the right filter when shrinking by large factors (512 -> 112), where the
# default bilinear filter aliases fine detail (tails, paws); it also measured no slower.
INTERPOLATION = "AREA"


def fitted_size(width: int, height: int, size: int, fit: str) -> tuple[int, int]:
    """(width, height) a `width` x `height` frame is resized to before it is placed on the
    `size` x `size` output: aspect kept, the longer side = size ("letterbox": the whole frame,
    black bars on the short sides) or the shorter side = size ("crop": the centre square)."""
    if fit not in FITS:
        raise ValueError(f"frames fit must be one of {FITS}, got {fit!r}")
    longer = fit == "letterbox"
    scale = size / (max(width, height) if longer else min(width, height))
    by_width = width >= height if longer else width <= height  # the side that becomes `size`
    w = size if by_width else max(1, round(width * scale))
    h = size if not by_width or width == height else max(1, round(height * scale))
    return w, h


def decode_gray(frame: av.VideoFrame, size: int, fit: str = DEFAULT_FRAME_FIT) -> np.ndarray:
    """uint8 (size, size) grayscale of a decoded frame, converted and resized by swscale with
    its aspect ratio kept (`fitted_size`): letterboxed with black bars, or centre-cropped.
    A square frame is resized as it is (both fits agree)."""
    w, h = fitted_size(frame.width, frame.height, size, fit)
    img = frame.to_ndarray(format="gray", width=w, height=h, interpolation=INTERPOLATION)
    if (w, h) == (size, size):
        return img
    if fit == "crop":
        x, y = (w - size) // 2, (h - size) // 2
        return np.ascontiguousarray(img[y : y + size, x : x + size])
    out = np.zeros((size, size), np.uint8)
    x, y = (size - w) // 2, (size - h) // 2
    out[y : y + h, x : x + w] = img
    return out


def iter_gray(video_path: str | os.PathLike, size: int, fit: str, n: int) -> Iterator[np.ndarray]:
    """The first `n` frames of a video as uint8 (size, size) grayscale (`decode_gray`); a
    ValueError naming the video when one cannot be decoded or the video holds fewer."""
    i = 0
    try:
        with av.open(str(video_path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads: ~2x on 2 cores
            for frame in container.decode(stream):
                if i == n:
                    break
                yield decode_gray(frame, size, fit)
                i += 1
    except (av.FFmpegError, IndexError) as e:
        raise ValueError(f"{video_path}: cannot decode frame {i} ({e})") from None
    if i != n:
        raise ValueError(f"{video_path}: decoded {i} frames, expected {n} (truncated video?)")


def decode_video(
    video_path: str | os.PathLike,
    size: int,
    fit: str = DEFAULT_FRAME_FIT,
    expected: int | None = None,
) -> np.ndarray:
    """A video's frames in memory, uint8 (T, size, size), as extract_frames writes them (T:
    `expected` when given, else the container's frame count)."""
    video_path = Path(video_path)
    if not video_path.is_file():
        raise FileNotFoundError(f"{video_path}: video not found")
    n = expected if expected is not None else count_video_frames(video_path)[0]
    return (
        np.stack(list(iter_gray(video_path, size, fit, n)))
        if n
        else np.zeros((0, size, size), np.uint8)
    )


def extract_frames(
    video_path: str | os.PathLike,
    out_path: str | os.PathLike,
    size: int,
    expected: int | None = None,
    fit: str = DEFAULT_FRAME_FIT,
) -> int:
    """Decode `video_path` to uint8 (T, size, size) grayscale frames in the .npy `out_path`.

    T is `expected` when given (the labelled clip length), else the container's frame count.
    Frames beyond T are not decoded: read-dataset checked the video's length and lets a
    MABe22 video keep one trailing frame beyond its labels, which is dropped here, as the
    evaluator drops it. Writes atomically: on any error (unreadable video, decoded frame count
    != T) no file is left at `out_path`, and the ValueError/FileNotFoundError names the video.
    Returns T.
    """
    video_path = Path(video_path)
    if not video_path.is_file():
        raise FileNotFoundError(f"{video_path}: video not found")
    n = expected if expected is not None else count_video_frames(video_path)[0]
    i = 0
    with atomic_path(out_path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, size, size))
        reserve(
            tmp, os.path.getsize(tmp), out_path
        )  # a full disk fails here, not as SIGBUS mid-write
        for i, img in enumerate(iter_gray(video_path, size, fit, n)):
            out[i] = img
        out.flush()
        del out  # close the memmap before the rename
    return n


NPY_HEADER = 128  # bytes before the frames of an .npy of a 3-D uint8 array


def shard_bytes(rows, out_dir: Path, size: int) -> int:
    """Bytes a shard's extraction still needs on its disk: each clip's .npy (header and
    frames) less the file it replaces, and room for the largest one's temporary copy (the
    old file goes only once the new one is whole)."""
    new = [NPY_HEADER + int(n) * size * size for n in rows["n_frames"]]
    old = [
        (out_dir / f"{c}.npy").stat().st_size if (out_dir / f"{c}.npy").exists() else 0
        for c in rows["clip_id"]
    ]
    return max(sum(new) - sum(old), 0) + (max(new) if any(old) else 0)


def main(argv: list[str] | None = None, prog: str = "twbyol extract-frames") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--clips",
        "--index",
        dest="clips",
        required=True,
        type=Path,
        help="clips.tsv from read-dataset (an index.tsv reads as its clips too)",
    )
    p.add_argument("--shard", required=True, type=int, help="which shard's clips to extract")
    p.add_argument("--size", required=True, type=int, help="output frame width = height (pixels)")
    p.add_argument("--out-dir", required=True, type=Path, help="folder of the {clip_id}.npy files")
    p.add_argument(
        "--fit",
        required=True,
        choices=FITS,
        help="a non-square video: letterbox (whole frame, black bars) or crop (centre square)",
    )
    p.add_argument("--done", required=True, type=Path, help="marker written after the last clip")
    p.add_argument(
        "--root",
        required=True,
        type=Path,
        help="the dataset root (read-dataset's --root): the index's relative sources "
        "are relative to it",
    )
    a = p.parse_args(argv)
    index = read_clips(a.clips)
    rows = index[index["shard"] == a.shard]
    require_space(a.out_dir, shard_bytes(rows, a.out_dir, a.size), f"shard {a.shard}'s frames")
    start, counts = time.time(), {}
    for row in rows.itertuples(index=False):
        counts[row.clip_id] = extract_frames(
            resolve_source(row.source, a.root),
            a.out_dir / f"{row.clip_id}.npy",
            a.size,
            expected=int(row.n_frames),
            fit=a.fit,
        )
        print(f"{row.clip_id}: {counts[row.clip_id]} frames", flush=True)
    wall = time.time() - start
    write_json(
        a.done,
        {
            "shard": a.shard,
            "size": a.size,
            "fit": a.fit,
            "clips": counts,
            "frames": sum(counts.values()),
            "wall_s": round(wall, 3),
        },
    )
    print(f"shard {a.shard}: {len(counts)} clips, {sum(counts.values())} frames in {wall:.1f} s")
    return 0
