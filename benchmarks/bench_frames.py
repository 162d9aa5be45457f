"""Time twbyol.data.frames.extract_frames against a bare PyAV decode loop of the same video.

    python benchmarks/bench_frames.py [--video PATH] [--size 224] [--src-size 512] [--frames 900]

Without --video, one synthetic MABe22-style clip (src-size x src-size, H.264) is generated
in a temp folder. Both sides decode the whole file with the same threading (AUTO) and the
same swscale conversion (gray, resized to size x size, frames.INTERPOLATION); the bare loop
keeps the frames in a list, extract_frames writes them to a memory-mapped .npy. One run
each, after an untimed warm-up decode (page cache, codec set-up). Prints frames/s,
frames/s per core, their ratio (target >= 0.9) and checks that the frames are identical.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from twbyol.data import frames, mabe22
from twbyol.synthetic import generate as synth


def bare_decode(path: Path, size: int) -> list[np.ndarray]:
    """The reference loop: PyAV decode, gray + resize in to_ndarray, frames into a list."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return [
            f.to_ndarray(format="gray", width=size, height=size, interpolation=frames.INTERPOLATION)
            for f in container.decode(stream)
        ]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--video", type=Path, help="video to decode (default: a synthetic clip)")
    ap.add_argument("--size", type=int, default=224, help="output frame size")
    ap.add_argument("--src-size", type=int, default=512, help="synthetic clip frame size")
    ap.add_argument("--frames", type=int, default=900, help="synthetic clip length")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))

    with tempfile.TemporaryDirectory() as tmp:
        video = args.video
        if video is None:
            t = time.perf_counter()
            seed = np.random.SeedSequence(0).spawn(1)[0]
            clip = synth.make_clip("mabe22", 0, seed, Path(tmp), args.frames, args.src_size, 30.0)
            video = mabe22.video_path(tmp, clip.clip_id, synth.SynthConfig.naming)
            print(
                f"generated {video.name}: {args.frames} frames {args.src_size}x{args.src_size} "
                f"in {time.perf_counter() - t:.1f} s"
            )
        # Untimed warm-up: file in the page cache, codec and swscale set up once.
        with av.open(str(video)) as c:
            for _, f in zip(range(30), c.decode(video=0)):
                f.to_ndarray(format="gray", width=args.size, height=args.size)

        t = time.perf_counter()
        ref = bare_decode(video, args.size)
        t_bare = time.perf_counter() - t

        out = Path(tmp) / "frames.npy"
        t = time.perf_counter()
        n = frames.extract_frames(video, out, args.size)
        t_ours = time.perf_counter() - t

        same = n == len(ref) and np.array_equal(np.load(out, mmap_mode="r"), np.stack(ref))
        fps_bare, fps_ours = len(ref) / t_bare, n / t_ours
        print(f"{video.name}: {n} frames -> {args.size}x{args.size} gray, {cores} cores")
        print(f"bare PyAV loop : {fps_bare:8.0f} frames/s  ({fps_bare / cores:.0f} /core)")
        print(f"extract_frames : {fps_ours:8.0f} frames/s  ({fps_ours / cores:.0f} /core)")
        print(f"ratio          : {fps_ours / fps_bare:8.2f}  (target >= 0.9)")
        print(f"identical      : {same}")
        if not same:
            raise SystemExit("extract_frames output differs from the bare decode")


if __name__ == "__main__":
    main()
