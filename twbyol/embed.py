"""Per-frame embeddings of a dataset from a pretrained backbone (the `embed` stage).

    twbyol embed --model pretrain/R/seed0/model.pt --frames-dir frames/mice \
        --index frames/mice/index.tsv --out embed/R/seed0/mice.npy

The labelled clips of the index are embedded (video-only clips serve pretraining only).
Windows of the backbone's clip length (the run's `num_frames` at its `stride`) are centred on
every `window_stride`-th frame of a clip (edges replicate the first/last frame); each frame
takes the embedding of its nearest window centre. Frames are resized whole to the training
crop size, the test-time counterpart of the random resized crop. Wider features than
`max_dim` (the MABe22 limit, 128) are reduced by PCA over all embedded frames, as the
MABe22 evaluator reduces a wider submission (`PCA(n_components=128).fit_transform` of every
frame): label-free, like the pretraining, which also sees every clip's video.
Output: float32 (labelled frames, D <= max_dim), rows in index.tsv order (the labels' frame
axis).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from twbyol import io
from twbyol.allocator import keep_large_allocations
from twbyol.data.artifacts import read_index
from twbyol.features import EmbedConfig, embed_clip, load_backbone, read_frames
from twbyol.hardware import pick_device, run_autocast
from twbyol.progress import Progress


def pca_reduce(
    x: np.ndarray, dim: int, block: int = 1 << 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project x (N, D) on its top `dim` principal axes (centred; float64 covariance and eigh),
    as sklearn's PCA(n_components=dim).fit_transform does up to the axes' signs. Streams x in
    blocks: beside x it holds one float64 block, the (D, D) covariance and the output.
    Returns (projected (N, dim) float32, mean (D,), axes (D, dim)): out = (x - mean) @ axes."""
    mean = x.mean(0, dtype=np.float64)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for i in range(0, len(x), block):
        b = x[i : i + block].astype(np.float64) - mean
        cov += b.T @ b
    _, vecs = np.linalg.eigh(cov / max(len(x) - 1, 1))  # ascending eigenvalues
    axes = vecs[:, ::-1][:, :dim]
    out = np.empty((len(x), dim), np.float32)
    for i in range(0, len(x), block):
        out[i : i + block] = (x[i : i + block] - mean) @ axes
    return out, mean, axes


def embed(
    model: str,
    frames_dir: str,
    index_path: str,
    out: str,
    projection: str,
    cfg: EmbedConfig | None = None,
) -> dict:
    """Embed the labelled clips of `index_path` with `model`'s backbone into `out`, and
    write the reduction applied to the backbone's features to `projection` (.npz: mean (D,)
    and axes (D, d), out = (features - mean) @ axes; both empty when none was needed), with
    which the evaluation's probes are applied to the features of any video (twbyol.predict),
    and `window`: the input window of every frame's embedding, (num_frames, stride,
    window_stride), which the evaluation reads when not told.

    Memory: one float32 (frames, feature_dim) array filled clip by clip (3.29 M MABe22 frames
    x 2048 Slow-R50 features = 27 GB), then the PCA's output; nothing is concatenated.
    `cfg`: the embedding settings (None: EmbedConfig's defaults)."""
    cfg = cfg or EmbedConfig()
    device = pick_device()
    if device.type == "cpu":  # 2,552-3,192 vs 2,107-2,472 frames/s (tiny backbone, 2 cores)
        keep_large_allocations()
    backbone, run = load_backbone(model, device)
    autocast = run_autocast(run, device)  # the run's precision, not the device's
    index = read_index(index_path)
    index = index[index["labelled"] == 1]
    t0 = time.time()
    feats = np.empty((int(index["n_frames"].sum()), int(backbone.feature_dim)), np.float32)
    clips = list(zip(index["clip_id"], index["start"], index["end"]))
    progress = Progress(len(feats), "frame")
    # the next clip is read from disk while this one runs through the network
    with ThreadPoolExecutor(1) as pool:
        paths = [Path(frames_dir) / f"{c}.npy" for c, _, _ in clips]
        ahead = pool.submit(read_frames, paths[0], device) if clips else None
        for k, (_, start, end) in enumerate(clips):
            frames = ahead.result()
            if k + 1 < len(clips):
                ahead = pool.submit(read_frames, paths[k + 1], device)
            feats[start:end] = embed_clip(
                backbone, frames, run["crop"], cfg.window_stride, cfg.batch_size, device, autocast
            )
            if progress.due(end) or k + 1 == len(clips):
                print(progress.line(int(end), prefix=f"[embed] clip {k + 1}/{len(clips)} |"))
    if feats.shape[1] > cfg.max_dim:
        emb, mean, axes = pca_reduce(feats, cfg.max_dim)
    else:
        emb, mean, axes = feats, np.zeros(0), np.zeros((0, 0))
    del feats
    if not np.isfinite(emb).all():
        raise FloatingPointError(f"{model}: non-finite embeddings for {index_path}")
    window = [int(run["crop"]["num_frames"]), int(run["crop"]["stride"]), cfg.window_stride]
    io.write_npz(projection, mean=mean, axes=axes, window=np.array(window, np.int64))
    io.write_npy(out, emb)
    wall = time.time() - t0
    info = {
        "frames": len(emb),
        "dim": emb.shape[1],
        "wall_s": round(wall, 3),
        "frames_per_s": round(len(emb) / max(wall, 1e-9), 1),
        "device": device.type,
        "autocast": None if autocast is None else str(autocast).removeprefix("torch."),
    }
    print(info, flush=True)
    return info


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="model.pt of a pretraining run")
    ap.add_argument("--frames-dir", required=True)
    ap.add_argument("--index", required=True, help="the dataset's index.tsv")
    ap.add_argument("--out", required=True, help="output .npy (total_frames, D)")
    ap.add_argument(
        "--projection",
        required=True,
        help="output .npz: the PCA applied to the features (empty arrays: none), for predict",
    )
    ap.add_argument(
        "--config",
        default="{}",
        help="the embedding settings as JSON, inline or a file (twbyol.features.EmbedConfig: "
        "window_stride, batch_size, max_dim; each defaults there)",
    )
    a = ap.parse_args(argv)
    cfg = EmbedConfig.from_dict(io.json_arg(a.config))
    embed(a.model, a.frames_dir, a.index, a.out, a.projection, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
