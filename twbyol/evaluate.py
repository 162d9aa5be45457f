"""Stage `evaluate`: score one embedding of one dataset (linear probes, kNN, temporal locality).

    twbyol evaluate --embedding results/smoke/embed/twbyol/seed0/mice.npy \\
        --labels results/smoke/labels/mice.npz --index results/smoke/frames/mice/index.tsv \\
        --out results/smoke/evaluate/twbyol/seed0/mice.json \\
        --run-id twbyol --seed 0 --dataset mice --method byol

Metrics (all on the MABe22 clip split `split_clips(clips, test_size, split_seed)`):
- per task: linear probe (twbyol.probe.linear_probe: balanced ridge classifier -> F1 of
  class 1, or ridge -> MSE). Per-frame tasks use every labelled frame. Sequence-level tasks
  (one label per clip, e.g. an experimental condition) are scored per clip: the clip's mean
  embedding is one sample, so their F1 rests on the handful of test clips (10 % of the
  clips) and is noisy; they are reported but kept out of the headline.
- `mean_f1` (headline; the study's "mean of the 8 tasks"): mean F1 over the per-frame
  Discrete tasks. `mean_f1_all`: mean over every Discrete task, sequence-level included.
- `knn_accuracy`: cosine kNN (majority of k; ties to the more similar voters), train
  frames -> test frames, per per-frame Discrete task, then averaged; also balanced accuracy.
  At most --knn-max-train / --knn-max-test frames, drawn at random.
- `rare_action_recall`: the rarest --rare-fraction (20 %, at least one) of the behaviour
  labels — the positive class of each per-frame Discrete task (every class for a
  multi-class task) that occurs among the test frames, rarity = share of labelled frames
  in the whole dataset — and the mean over them of the linear probe's test recall.
- A binary task whose test frames hold no positive gets F1 = NaN (undefined, not
  sklearn's 0) and drops out of the means; `n_f1_tasks` counts the tasks that remain.
- `few_shot_f1`: the probe trained on a fraction (1 %, 10 %; at least one clip) of the
  labelled train clips, mean F1 over the per-frame Discrete tasks, averaged over
  --few-shot-draws random subsets (nested: each draw's 1 % is inside its 10 %).
- `spearman_rho`, `distance_by_dt`, `retrieval_mrr`: twbyol.temporal, over all clips.

Every random draw (kNN frames, few-shot clips, frame pairs, retrieval queries) is seeded by
--split-seed alone, not by the run's seed, so all runs are scored on the same samples and
the paired t-tests of `stats` compare like with like. --seed is recorded, not used.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twbyol import io
from twbyol.probe import Moments, knn_neighbours, knn_scores, label_key, linear_probe, split_clips
from twbyol.temporal import retrieval_mrr, spearman_distance_vs_gap


@dataclass
class Labels:
    """Per-frame labels of one dataset (docs/artifacts.md: labels .npz)."""

    tasks: list[str]
    task_types: list[str]
    sequence_level: np.ndarray  # (n_tasks,) bool
    label_array: np.ndarray  # (n_tasks, n_frames) float32, NaN = unlabelled
    clips: list[str]
    starts: np.ndarray  # (n_clips,) int64
    ends: np.ndarray  # (n_clips,) int64

    @property
    def frame_tasks(self) -> list[int]:
        """Indices of the per-frame Discrete tasks: the headline's tasks."""
        return [
            t
            for t, (ty, sl) in enumerate(zip(self.task_types, self.sequence_level))
            if ty == "Discrete" and not sl
        ]


def load_labels(path: str | Path) -> Labels:
    """Read a labels .npz (validated by twbyol.data.index.load_labels; errors name the file)."""
    from twbyol.data.index import load_labels as read_npz

    z = read_npz(path)
    return Labels(
        [str(t) for t in z["tasks"]],
        [str(t) for t in z["task_types"]],
        z["sequence_level"].astype(bool),
        z["label_array"].astype(np.float32),
        [str(c) for c in z["clips"]],
        z["starts"].astype(np.int64),
        z["ends"].astype(np.int64),
    )


def load_index(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Clip ids, starts and ends of an index.tsv (docs/artifacts.md: clip index)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for col in ("clip_id", "start", "end"):
        if rows and col not in rows[0]:
            raise ValueError(f"{path}: missing column {col!r}")
    return (
        [r["clip_id"] for r in rows],
        np.array([int(r["start"]) for r in rows], dtype=np.int64),
        np.array([int(r["end"]) for r in rows], dtype=np.int64),
    )


def load_embedding(path: str | Path, n_frames: int) -> np.ndarray:
    """Memory-map an embedding and check it: (n_frames, D) with D <= 128, all finite."""
    emb = np.load(path, mmap_mode="r")
    if emb.ndim != 2 or emb.shape[0] != n_frames:
        raise ValueError(
            f"{path}: embedding has shape {emb.shape}, but the labels hold {n_frames} frames"
        )
    if emb.shape[1] > 128:
        raise ValueError(
            f"{path}: {emb.shape[1]} dimensions; the MABe22 protocol allows at most 128"
        )
    for i in range(0, n_frames, 1 << 18):  # blockwise: never load a huge embedding at once
        if not np.isfinite(emb[i : i + (1 << 18)]).all():
            raise ValueError(f"{path}: non-finite values from row {i} on (a diverged model?)")
    return emb


def _rows(lab: Labels, clips: list[str]) -> np.ndarray:
    """Concatenated frame rows of the named clips."""
    pos = {c: i for i, c in enumerate(lab.clips)}
    return np.concatenate([np.arange(lab.starts[pos[c]], lab.ends[pos[c]]) for c in clips])


def _clip_labels(lab: Labels, t: int) -> np.ndarray:
    """(n_clips,) the most frequent non-NaN label of task t in each clip (NaN if none)."""
    out = np.full(len(lab.clips), np.nan)
    for i, (s, e) in enumerate(zip(lab.starts, lab.ends)):
        y = lab.label_array[t, s:e]
        y = y[~np.isnan(y)]
        if len(y):
            vals, counts = np.unique(y, return_counts=True)
            out[i] = vals[counts.argmax()]
    return out


def _nanmean(values: list[float]) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.mean(v[~np.isnan(v)])) if np.any(~np.isnan(v)) else float("nan")


def evaluate(
    emb: np.ndarray,
    lab: Labels,
    split_seed: int = 42,
    test_size: float = 0.1,
    knn_k: int = 20,
    knn_max_train: int = 10_000,
    knn_max_test: int = 2_000,
    horizon: int = 90,
    n_pairs: int = 20_000,
    mrr_k: int = 5,
    n_queries: int = 1000,
    few_shot: tuple[float, ...] = (0.01, 0.1),
    few_shot_draws: int = 5,
    rare_fraction: float = 0.2,
) -> dict:
    """All metrics of one (N_frames, D) embedding; see the module docstring for definitions."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    train_clips, test_clips = split_clips(lab.clips, test_size, split_seed)
    tr, te = _rows(lab, train_clips), _rows(lab, test_clips)
    x_tr, x_te = np.asarray(emb[tr]), np.asarray(emb[te])  # (N_tr, D), (N_te, D)
    y = lab.label_array
    frame_tasks = lab.frame_tasks

    # ---- linear probes, per task ------------------------------------------------------
    tasks: dict[str, dict] = {}
    pos = {c: i for i, c in enumerate(lab.clips)}
    ptr, pte = [pos[c] for c in train_clips], [pos[c] for c in test_clips]
    pooled = None  # (n_clips, D) mean embedding per clip, for sequence-level tasks only
    moments = Moments(x_tr)  # one pass over the train frames shared by the frame tasks
    for t, name in enumerate(lab.tasks):
        if lab.sequence_level[t]:
            if pooled is None:
                pooled = np.stack(
                    [np.asarray(emb[s:e], np.float64).mean(0) for s, e in zip(lab.starts, lab.ends)]
                )
            yc = _clip_labels(lab, t)
            res = linear_probe(pooled[ptr], yc[ptr], pooled[pte], yc[pte], lab.task_types[t])
        else:
            res = linear_probe(x_tr, y[t, tr], x_te, y[t, te], lab.task_types[t], moments=moments)
        tasks[name] = {**res, "sequence_level": bool(lab.sequence_level[t])}
    f1_frame = [tasks[lab.tasks[t]]["f1"] for t in frame_tasks]
    f1_all = [r["f1"] for r in tasks.values() if r["type"] == "Discrete"]
    timings["probe"] = time.perf_counter() - t0

    # ---- rare-action recall -----------------------------------------------------------
    candidates = []  # (frequency in the whole dataset, task, class, test recall)
    for t in frame_tasks:
        yt = y[t][~np.isnan(y[t])]
        classes = np.unique(yt)
        recall = tasks[lab.tasks[t]].get("recall", {})
        for c in classes if len(classes) > 2 else [1.0]:
            if label_key(c) in recall:  # recall needs the class among the test frames
                candidates.append(
                    (float(np.mean(yt == c)), lab.tasks[t], float(c), recall[label_key(c)])
                )
    candidates.sort(key=lambda c: (c[0], c[1]))
    rare_actions = [
        {"task": task, "class": c, "frequency": freq, "recall": rec}
        for freq, task, c, rec in candidates[: max(1, math.ceil(rare_fraction * len(candidates)))]
    ]

    # ---- few-shot probes on nested subsets of the labelled train clips -----------------
    t0 = time.perf_counter()
    labelled = [
        c
        for c, rows in ((c, _rows(lab, [c])) for c in train_clips)
        if any(np.any(~np.isnan(y[t, rows])) for t in frame_tasks)
    ]
    few = {f: [] for f in few_shot}
    n_shot = {f: max(1, round(f * len(labelled))) for f in few_shot}
    for draw in range(few_shot_draws if labelled and frame_tasks else 0):
        order = np.random.default_rng([split_seed, draw]).permutation(len(labelled))
        for f in few_shot:
            rows = _rows(lab, [labelled[i] for i in order[: n_shot[f]]])
            xs = np.asarray(emb[rows])
            m = Moments(xs)
            few[f].append(
                _nanmean([linear_probe(xs, y[t, rows], x_te, y[t, te], moments=m)["f1"]
                          for t in frame_tasks])
            )
    timings["few_shot"] = time.perf_counter() - t0

    # ---- kNN on a random subset of frames, neighbours shared by tasks with one mask ----
    t0 = time.perf_counter()
    rng = np.random.default_rng([split_seed, 1_000])
    ktr = np.sort(rng.choice(tr, min(len(tr), knn_max_train), replace=False))
    kte = np.sort(rng.choice(te, min(len(te), knn_max_test), replace=False))
    e_tr, e_te = np.asarray(emb[ktr]), np.asarray(emb[kte])
    neighbours: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    for t in frame_tasks:
        ytr, yte = y[t, ktr], y[t, kte]
        mtr, mte = ~np.isnan(ytr), ~np.isnan(yte)
        if not mtr.any() or not mte.any():
            tasks[lab.tasks[t]]["knn"] = {
                "accuracy": float("nan"),
                "balanced_accuracy": float("nan"),
                "n_test": 0,
            }
            continue
        key = np.packbits(mtr).tobytes() + b"|" + np.packbits(mte).tobytes()
        if key not in neighbours:
            neighbours[key] = knn_neighbours(e_tr[mtr], e_te[mte], knn_k)
        tasks[lab.tasks[t]]["knn"] = knn_scores(neighbours[key], ytr[mtr], yte[mte])
    timings["knn"] = time.perf_counter() - t0

    # ---- temporal locality (label-free, all clips) -------------------------------------
    t0 = time.perf_counter()
    rho, curve = spearman_distance_vs_gap(
        emb, lab.starts, lab.ends, horizon, n_pairs, seed=split_seed
    )
    mrr = retrieval_mrr(emb, lab.starts, lab.ends, k=mrr_k, n_queries=n_queries, seed=split_seed)
    timings["temporal"] = time.perf_counter() - t0

    return {
        "dim": int(emb.shape[1]),
        "n_frames": int(emb.shape[0]),
        "split_seed": split_seed,
        "test_size": test_size,
        "n_train_clips": len(train_clips),
        "n_test_clips": len(test_clips),
        "tasks": tasks,
        "mean_f1": _nanmean(f1_frame),
        "n_f1_tasks": int(np.sum(~np.isnan(f1_frame))),
        "mean_f1_all": _nanmean(f1_all),
        "knn_k": knn_k,
        "knn_accuracy": _nanmean([tasks[lab.tasks[t]]["knn"]["accuracy"] for t in frame_tasks]),
        "knn_balanced_accuracy": _nanmean(
            [tasks[lab.tasks[t]]["knn"]["balanced_accuracy"] for t in frame_tasks]
        ),
        "rare_action_recall": _nanmean([r["recall"] for r in rare_actions]),
        "rare_actions": rare_actions,
        "few_shot_f1": {str(f): _nanmean(v) for f, v in few.items()},
        "few_shot_clips": {str(f): n for f, n in n_shot.items()},
        "horizon": horizon,
        "spearman_rho": rho,
        "distance_by_dt": curve,
        "mrr_k": mrr_k,
        "retrieval_mrr": mrr,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--embedding", required=True, help="float32 (n_frames, D) .npy, index.tsv row order"
    )
    ap.add_argument("--labels", required=True, help="labels .npz of the dataset")
    ap.add_argument(
        "--index", required=True, help="index.tsv of the dataset (checked against the labels)"
    )
    ap.add_argument("--out", required=True, help="evaluation .json to write")
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--seed", type=int, required=True, help="pretraining seed (recorded only)")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--method", required=True)
    ap.add_argument(
        "--split-seed",
        type=int,
        default=42,
        help="seed of the clip split and of every evaluation draw (default 42: one fixed split for every run)",
    )
    ap.add_argument(
        "--test-size", type=float, default=0.1, help="share of clips held out (MABe22: 0.1)"
    )
    ap.add_argument("--knn-k", type=int, default=20, help="neighbours per vote (DINO's k=20)")
    ap.add_argument(
        "--knn-max-train",
        type=int,
        default=10_000,
        help="train frames in the kNN index: bounds the (test x train) similarity cost",
    )
    ap.add_argument("--knn-max-test", type=int, default=2_000, help="test frames queried by kNN")
    ap.add_argument(
        "--horizon",
        type=int,
        default=90,
        help="largest frame gap of the Spearman pairs (3 s at 30 fps)",
    )
    ap.add_argument(
        "--n-pairs",
        type=int,
        default=20_000,
        help="frame pairs for Spearman rho (sampling SE of rho <= ~0.007)",
    )
    ap.add_argument(
        "--mrr-k",
        type=int,
        default=5,
        help="temporal neighbours per side retrieved (the study's 5)",
    )
    ap.add_argument("--n-queries", type=int, default=1000, help="query frames for retrieval MRR")
    ap.add_argument(
        "--few-shot",
        type=float,
        nargs="+",
        default=[0.01, 0.1],
        help="shares of labelled train clips for few-shot probes (at least one clip)",
    )
    ap.add_argument(
        "--few-shot-draws",
        type=int,
        default=5,
        help="random clip subsets averaged per share (one 1 %% subset is one clip: very noisy)",
    )
    ap.add_argument(
        "--rare-fraction",
        type=float,
        default=0.2,
        help="share of rarest behaviour labels (study: 20 %%)",
    )
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    lab = load_labels(args.labels)
    clips, starts, ends = load_index(args.index)
    if clips != lab.clips or not (
        np.array_equal(starts, lab.starts) and np.array_equal(ends, lab.ends)
    ):
        raise ValueError(
            f"{args.index} and {args.labels} disagree on the clips or their frame ranges"
        )
    emb = load_embedding(args.embedding, lab.label_array.shape[1])
    result = evaluate(
        emb,
        lab,
        split_seed=args.split_seed,
        test_size=args.test_size,
        knn_k=args.knn_k,
        knn_max_train=args.knn_max_train,
        knn_max_test=args.knn_max_test,
        horizon=args.horizon,
        n_pairs=args.n_pairs,
        mrr_k=args.mrr_k,
        n_queries=args.n_queries,
        few_shot=tuple(args.few_shot),
        few_shot_draws=args.few_shot_draws,
        rare_fraction=args.rare_fraction,
    )
    result = {
        "run_id": args.run_id,
        "seed": args.seed,
        "dataset": args.dataset,
        "method": args.method,
        "embedding": str(args.embedding),
        **result,
    }
    result["timings_s"]["total"] = round(time.perf_counter() - t_start, 3)
    io.write_json(args.out, result)
    print(
        f"{args.run_id} seed {args.seed} {args.dataset}: mean F1 {result['mean_f1']:.3f} "
        f"({result['n_f1_tasks']} tasks), kNN acc {result['knn_accuracy']:.3f}, "
        f"rho {result['spearman_rho']:.3f}, MRR {result['retrieval_mrr']:.3f} "
        f"[{result['timings_s']['total']:.1f} s]",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
