"""Stage `submission`: one run's embedding of a MABe22 dataset as the evaluator's submission.

    twbyol submission --embedding results/mabe22/embed/twbyol_tau30/seed0/mice.npy \\
        --protocol results/mabe22/labels/mice.protocol.json \\
        --index results/mabe22/frames/mice/index.tsv \\
        --out results/mabe22/submission/twbyol_tau30/seed0/mice.npy

The public evaluator (damaggu/MABe2022, round2_evaluator.py `validate_submission`) takes a
2-D float32 array, finite, at most 128 columns, one row per frame of the release's frame
map (`frame_number_map`, rows in its order). Our embedding holds the labelled clips that
have video, in that order; a clip left out for a missing video (the resized release lacks
R6R4SNHGFM0ZOOH9A1TN) gets zero rows — the embedding's mean after PCA centring, or a
constant for narrower embeddings — and is named in the sidecar `.json`, so a user scoring
the file with the official code knows that those frames carry no information. Score it
from a checkout of damaggu/MABe2022 with

    python round2_evaluator.py --task mouse --submission .../mice.npy \\
        --labels .../mouse_submission_labels.npy
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from twbyol import io
from twbyol.data.artifacts import labelled_spans
from twbyol.split import read_protocol


def submission_array(
    emb: np.ndarray,
    clips: list[str],
    starts: np.ndarray,
    ends: np.ndarray,
    frame_number_map: dict[str, list[int]],
) -> tuple[np.ndarray, list[str]]:
    """(total frames of the frame map, D) float32 in frame-map order, and the clips of the
    map that `emb` lacks (their rows stay 0). `emb` rows are `clips` laid end to end."""
    total = max(int(e) for _, e in frame_number_map.values())
    out = np.zeros((total, emb.shape[1]), np.float32)
    have = set(clips)
    for c, s, e in zip(clips, starts, ends):
        if c not in frame_number_map:
            raise ValueError(f"clip {c} of the embedding is not in the release's frame map")
        a, b = frame_number_map[c]
        if b - a != e - s:
            raise ValueError(f"clip {c}: {e - s} embedded frames, {b - a} in the frame map")
        out[a:b] = emb[s:e]
    return out, sorted(c for c in frame_number_map if c not in have)


def check_submission(sub: np.ndarray, total: int, where: str) -> None:
    """The evaluator's checks (validate_submission), as errors naming `where`."""
    if sub.ndim != 2:
        raise ValueError(f"{where}: a submission is a 2-D array, got {sub.ndim}-D")
    if sub.shape[1] > 128:
        raise ValueError(f"{where}: {sub.shape[1]} columns; the evaluator allows at most 128")
    if sub.dtype != np.float32:
        raise ValueError(f"{where}: dtype {sub.dtype}; the evaluator wants float32")
    if len(sub) != total:
        raise ValueError(f"{where}: {len(sub)} rows for {total} frames of the frame map")
    if not np.isfinite(sub).all():
        raise ValueError(f"{where}: non-finite values")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--embedding", required=True, help="float32 (labelled frames, D) .npy")
    ap.add_argument("--protocol", required=True, help="the dataset's protocol .json")
    ap.add_argument("--index", required=True, help="the dataset's index.tsv")
    ap.add_argument("--out", required=True, help="submission .npy to write (+ a .json beside it)")
    a = ap.parse_args(argv)
    protocol = read_protocol(a.protocol)
    if protocol.frame_number_map is None:
        raise ValueError(
            f"{a.protocol}: the dataset has no release frame map (not a MABe22 "
            f"layout): there is no leaderboard to submit to"
        )
    clips, starts, ends = labelled_spans(a.index)
    emb = np.load(a.embedding, mmap_mode="r")
    if emb.shape[0] != (ends[-1] if len(ends) else 0):
        raise ValueError(
            f"{a.embedding}: {emb.shape[0]} rows, but {a.index} has {int(ends[-1])} labelled frames"
        )
    sub, filled = submission_array(emb, clips, starts, ends, protocol.frame_number_map)
    check_submission(sub, len(sub), a.out)
    io.write_npy(a.out, sub)
    info = {
        "embedding": a.embedding,
        "frames": len(sub),
        "dim": int(sub.shape[1]),
        "dtype": "float32",
        "order": "frame_number_map",
        "zero_filled_clips": filled,
    }
    io.write_json(a.out.removesuffix(".npy") + ".json", info)
    print(
        f"{a.out}: {sub.shape} float32; {len(filled)} clip(s) without video zero-filled "
        f"{filled[:5]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
