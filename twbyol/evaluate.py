"""Stage `evaluate`: score one embedding of one dataset (linear probes, kNN, temporal locality).

    twbyol evaluate --embedding results/smoke/embed/twbyol/seed0/mice.npy \\
        --labels results/smoke/labels/mice.npz --index results/smoke/frames/mice/index.tsv \\
        --protocol results/smoke/labels/mice.protocol.json \\
        --out results/smoke/evaluate/twbyol/seed0/mice.json \\
        [--config '{"crop_policy": "max_gap", "crop_gap": 30}'] \\
        [--run-id twbyol --seed 0 --dataset mice --method byol]

The files are flags; the settings are one JSON object, `--config` (the fields of
`EvaluateConfig`, each with its default and the reason for it; the workflow's evaluate rule
passes twbyol.experiment.evaluation_config). With the files alone it scores with the
defaults and the input window the embed stage recorded in the embedding's .projection.npz.
The run's identity (--run-id, --seed, --dataset, --method) is recorded, never used.

Linear probes follow the public MABe22 evaluator (damaggu/MABe2022, round2/training) on the
dataset's protocol (twbyol.split: the release's split and tasks files, or a derived split
with the release's shares): `protocol_scores`, per task of the protocol's task list and per
probe seed, fits `RidgeClassifier(class_weight='balanced', alpha=1)` (Discrete) or
`Ridge(alpha=1)` (Continuous) on `train_test_split(SubmissionTrain, test_size=0.1,
random_state=seed)[0]` (the other 10 % unused), NaN-labelled frames dropped, and predicts
privateTest + publicTest; the seeds' predictions are aggregated as the evaluator does (a
frame is positive when any seed's probe calls it; the mean for continuous tasks).
Sequence-level tasks are fitted and scored per frame, as there; the clip-pooled score is an
extra column. Per task: `f1` / `mse` = the private score (privateTest + publicTest, the
leaderboard's), `*_public` (publicTest), `*_no_ensemble` (mean over seeds of each seed's
private score), `*_pooled` (sequence-level tasks), recall per class, sizes. F1 is binary,
0 when the test frames hold no positive (sklearn's default, the evaluator's); NaN only when
no frame is labelled.
- `mean_f1` (headline; the study's "mean of the 8 tasks"): mean private F1 over
  `headline_tasks` — the per-frame Discrete (behaviour) tasks of the task list, or every
  Discrete task when it holds none (the MABe22 round-2 list: strain, lights, ...).
  `mean_f1_public` likewise; `mean_f1_all`: over every Discrete task of the list.
- The other metrics use one reference split: the first headline task's, its probe train
  clips for probe seed `seeds[0]`, and privateTest + publicTest as the test clips.
- `knn_balanced_accuracy` (the kNN headline): cosine kNN (majority of k; ties to the more
  similar voters), train frames -> test frames, per headline task the mean recall over the
  classes of its test frames, then averaged over the tasks; chance is 1 / n_classes whatever
  the class balance (0.5 for a behaviour). `knn_accuracy`: the plain share correct, kept for
  reference: "never the behaviour" scores the majority's share there (0.83 on smoke).
  At most knn_max_train / knn_max_test frames, drawn at random.
- `rare_action_f1` (headline), `rare_action_precision`, `rare_action_recall`: the rarest
  rare_fraction (20 %, at least one) of the behaviour labels — the positive class of each
  headline task (every class for a multi-class task) that occurs among the test frames,
  rarity = share of labelled frames in the whole dataset — and the mean over them of the
  probes' private F1, precision and recall of that class (`protocol_scores`); each label's
  three scores are in `rare_actions`. F1, because recall rewards over-prediction: calling
  every frame positive has recall 1 and F1 2p / (1 + p) for a label of frequency p.
- `few_shot_f1`: one probe trained on a fraction (1 %, 10 %; at least one clip) of the
  labelled train clips, mean F1 over the headline tasks, averaged over few_shot_draws
  random subsets (nested: each draw's 1 % is inside its 10 %).
- `spearman_rho`, `distance_by_dt`, `retrieval_mrr`, `retrieval_mrr_chance`:
  twbyol.temporal over all clips, on the network and not its input window: only the rows
  at the embed stage's window centres whose window lies inside the clip, and only pairs
  whose input windows (num_frames frames every frame_stride, centred every
  window_stride frames) do not overlap, over the gaps the training crops span
  (crop_policy, crop_rho, crop_gap; uniform: up to the clip's length minus the crop
  span). `gap_range` records [smallest, largest] gap used. rho: Spearman correlation of
  cosine distance with the gap, gaps drawn uniformly over the range; MRR: a query window's
  5 nearest temporal neighbours beyond its window are the relevant items, ranked against
  the other candidate windows of its clip. Any embedding that knows nothing about time
  beyond its own window (window-averaged noise included) scores rho ~ 0 and MRR ~
  `retrieval_mrr_chance`. The workflow passes the experiment's `crop` block and
  `embedding.window_stride` for every run, a run with its own crop_policy included, so
  that all runs of an experiment are scored on the same pairs and queries. The report
  shows each metric beside the untrained control.

Every random draw (kNN frames, few-shot clips, window pairs, retrieval queries) is seeded by
split_seed alone, not by the run's seed, so all runs are scored on the same samples and
the paired t-tests of `stats` compare like with like. --seed is recorded, not used.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from twbyol import io
from twbyol.data.artifacts import Labels, labelled_spans, load_labels, read_index
from twbyol.predictor import save_probes
from twbyol.probe import (
    Moments,
    aggregate_seeds,
    clip_counts,
    fit_probe,
    knn_neighbours,
    knn_scores,
    label_key,
    linear_probe,
    pooled_score,
    task_score,
)
from twbyol.reference import reference_lines, window_label_features
from twbyol.settings import EVALUATOR_SEED, EVALUATOR_TEST_SIZE, FRAME_FITS, check_keys
from twbyol.split import Protocol, read_protocol
from twbyol.temporal import (
    CropPolicy,
    Window,
    gap_range,
    retrieval_mrr,
    spearman_distance_vs_gap,
)

# the crop policies whose frame gaps the temporal metrics cover (near_pairs is a run's own)
EVALUATED_CROP_POLICIES = ("uniform", "max_gap", "min_gap")
# fields the workflow fills from other blocks of the experiment than `evaluation` (the
# crop and embedding blocks, the dataset's frames and synthetic blocks): no property of the
# schema's evaluation block (tests/test_configs.py)
DERIVED_FIELDS = (
    "num_frames",
    "frame_stride",
    "window_stride",
    "crop_policy",
    "crop_rho",
    "crop_gap",
    "crop_gap_s",
    "ceiling",
    "frames_size",
    "frames_fit",
)


@dataclass(frozen=True)
class EvaluateConfig:
    """The settings of one evaluation, every default here once: the rule passes them as one
    JSON object (`--config`; twbyol.experiment.evaluation_config builds it), and a call
    without one scores with these. The files are flags of their own."""

    split_seed: int = EVALUATOR_SEED  # seeds every draw (kNN frames, few-shot clips, pairs,
    # queries), the same for every run: the evaluator's seed 42
    test_size: float = EVALUATOR_TEST_SIZE  # share of SubmissionTrain each probe leaves
    # unused: the evaluator's 0.1
    knn_k: int = 20  # neighbours per vote: DINO's k=20
    knn_max_train: int = 10_000  # train frames in the kNN index: bounds the (test x train)
    # similarity cost
    knn_max_test: int = 2_000  # test frames queried by kNN
    n_pairs: int = 20_000  # window pairs for Spearman rho: sampling SE of rho <= ~0.007
    mrr_k: int = 5  # nearest temporal neighbours retrieved beyond the query's window: the
    # study's 5
    n_queries: int = 1000  # query frames for retrieval MRR
    few_shot: tuple[float, ...] = (0.01, 0.1)  # shares of the labelled train clips of the
    # few-shot probes (at least one clip): the study's 1 % and 10 %
    few_shot_draws: int = 5  # random clip subsets averaged per share (one 1 % subset is
    # one clip: very noisy)
    rare_fraction: float = 0.2  # share of the rarest behaviour labels: the study's 20 %
    num_frames: int | None = None  # the embed stage's input window: frames (crop.num_frames)
    # ...; None: the window the embed stage recorded in the .projection.npz (windows that
    # share input are never compared)
    frame_stride: int | None = None  # ... source frames between them (crop.stride) ...
    window_stride: int | None = None  # ... and between window centres
    # (embedding.window_stride)
    crop_policy: str = CropPolicy.policy  # the training crops' policy (crop.policy), whose
    # frame gaps the temporal metrics cover: the sampler's default (twbyol.data.crops)
    crop_rho: int = CropPolicy.rho  # crops per sample (crop.rho): the sampler's default
    crop_gap: int = CropPolicy.gap  # max_gap / min_gap's gap in frames (crop.gap): the
    # sampler's default
    crop_gap_s: float | None = None  # the gap in seconds instead (crop.gap_s): converted
    # with the median fps of the dataset's labelled clips, recorded; None: crop_gap
    ceiling: bool = False  # the labels are the generator's ground truth (synthetic data):
    # add the ceiling reference line (twbyol.reference); real labels have none
    frames_size: int | None = None  # the dataset's frames.size and ...
    frames_fit: str | None = None  # ... frames.fit, recorded in the probes for `twbyol
    # predict` (required with --probes-out; nothing else reads them)

    @classmethod
    def from_dict(cls, d: dict) -> EvaluateConfig:
        """The config of a JSON object; an unknown key or a bad choice is a ValueError
        naming it."""
        check_keys(cls, d, "evaluate")
        d = dict(d)
        if "few_shot" in d:
            d["few_shot"] = tuple(d["few_shot"])
        cfg = cls(**d)
        if cfg.crop_policy not in EVALUATED_CROP_POLICIES:
            raise ValueError(
                f"evaluate config: crop_policy {cfg.crop_policy!r}, expected one of "
                f"{EVALUATED_CROP_POLICIES}"
            )
        if cfg.frames_fit is not None and cfg.frames_fit not in FRAME_FITS:
            raise ValueError(
                f"evaluate config: frames_fit {cfg.frames_fit!r}, expected one of {FRAME_FITS}"
            )
        return cfg

    def to_dict(self) -> dict:
        return {**asdict(self), "few_shot": list(self.few_shot)}

    @property
    def window(self) -> Window:
        """The input window of each frame's embedding (Window's 1 where a field is None)."""
        given = {"num_frames": self.num_frames, "stride": self.frame_stride}
        given["window_stride"] = self.window_stride
        return Window(**{k: v for k, v in given.items() if v is not None})

    @property
    def crop(self) -> CropPolicy:
        """The training crops' policy (the gap in frames: crop_gap_s resolved by `main`)."""
        return CropPolicy(self.crop_policy, self.crop_rho, self.crop_gap)


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


def _nanmean(values: list[float]) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.mean(v[~np.isnan(v)])) if np.any(~np.isnan(v)) else float("nan")


def _scores(prefix: str, res: dict) -> dict:
    """{"f1": .., "precision": ..} -> {"f1_public": .., ...} ({} for prefix "")."""
    return {
        (k if not prefix else f"{k}_{prefix}"): v
        for k, v in res.items()
        if k in ("f1", "mse", "precision")
    }


def protocol_scores(
    emb: np.ndarray,
    lab: Labels,
    protocol: Protocol,
    test_size: float = EvaluateConfig.test_size,
    alpha: float = 1.0,
    fitted: dict[str, list] | None = None,
) -> dict[str, dict]:
    """The MABe22 evaluator's scores of every task of `protocol` on one embedding.

    Per task and probe seed: fit on `train_test_split(SubmissionTrain, test_size, seed)[0]`
    (the rest unused), NaN-labelled frames dropped; predict privateTest + publicTest; the
    seeds' predictions aggregated (`aggregate_seeds`). Scores: private (privateTest +
    publicTest: the leaderboard's), public (publicTest), no-ensemble (mean over seeds of each
    seed's private score) and, for sequence-level tasks, the clip-pooled private score. Tasks
    sharing a split and seed share one copy of the train rows and one Gram pass (Moments).
    Returns {task: {type, sequence_level, split, f1|mse, f1_public|mse_public, ...}}.
    `fitted`, when given, receives {task: [FittedProbe or None per seed]} of the per-frame
    Discrete tasks: the probes scored here (twbyol.predict applies them to new videos).
    """
    t_index = {t: i for i, t in enumerate(lab.tasks)}
    unknown = [t for t in protocol.tasks if t not in t_index]
    if unknown:
        raise ValueError(f"protocol tasks {unknown} are not in the labels ({lab.tasks})")
    y = lab.label_array
    pos = {c: i for i, c in enumerate(lab.clips)}
    length = {c: int(lab.ends[i] - lab.starts[i]) for c, i in pos.items()}
    out: dict[str, dict] = {}

    def is_behaviour(t: str) -> bool:  # a per-frame Discrete task: a behaviour
        return lab.task_types[t_index[t]] == "Discrete" and t not in protocol.sequence_level

    for name, split in protocol.splits.items():
        tasks = [t for t in protocol.tasks if protocol.task_split[t] == name]
        if not tasks:
            continue
        priv_clips = sorted(split["privateTest"], key=pos.__getitem__)
        pub_clips = sorted(split["publicTest"], key=pos.__getitem__)
        test = np.concatenate([lab.rows(priv_clips), lab.rows(pub_clips)])
        n_priv = len(test) - sum(length[c] for c in pub_clips)
        x_test = np.asarray(emb[test])  # (N_test, D): private frames, then public frames
        clip_len = [length[c] for c in priv_clips + pub_clips]
        preds: dict[str, list[np.ndarray]] = {t: [] for t in tasks}
        n_train: dict[str, list[int]] = {t: [] for t in tasks}
        for seed in protocol.seeds:
            train = lab.rows(protocol.train_clips(tasks[0], seed, test_size))
            x_train = np.asarray(emb[train])
            moments = Moments(x_train)
            for t in tasks:
                k = t_index[t]
                probe = fit_probe(x_train, y[k, train], lab.task_types[k], alpha, moments)
                if fitted is not None and is_behaviour(t):
                    fitted.setdefault(t, []).append(probe)
                n_train[t].append(0 if probe is None else probe.n_train)
                preds[t].append(
                    np.full(len(test), np.nan) if probe is None else probe.predict(x_test)
                )
            del x_train, moments
        for t in tasks:
            k = t_index[t]
            kind = lab.task_types[k]
            yt = y[k, test]
            ok = ~np.isnan(yt)
            pub = ok.copy()
            pub[:n_priv] = False
            r: dict = {
                "type": kind,
                "sequence_level": t in protocol.sequence_level,
                "split": name,
                "n_train": int(np.mean(n_train[t])) if n_train[t] else 0,
                "n_test": int(ok.sum()),
                "n_test_public": int(pub.sum()),
            }
            metric = "f1" if kind == "Discrete" else "mse"
            if not any(n_train[t]) or not ok.any():
                r.update(
                    {
                        metric: float("nan"),
                        f"{metric}_public": float("nan"),
                        "reason": "no labelled train frames"
                        if not any(n_train[t])
                        else "no labelled test frames",
                    }
                )
                out[t] = r
                continue
            agg = aggregate_seeds(preds[t], kind)
            priv = task_score(yt[ok], agg[ok], kind)
            r.update(_scores("", priv))
            for key in ("recall", "per_class"):
                if key in priv:
                    r[key] = priv[key]
            r.update(_scores("public", task_score(yt[pub], agg[pub], kind)))
            r[f"{metric}_no_ensemble"] = float(
                np.mean([task_score(yt[ok], p[ok], kind)[metric] for p in preds[t]])
            )
            if kind == "Discrete":
                r.update(n_pos_test=int(np.sum(yt[ok] == 1)), pos_rate=float(np.mean(yt[ok] == 1)))
                if not r["sequence_level"] and priv.get("average") == "binary":
                    # the F1's per-clip sufficient statistics: a clip bootstrap resamples them
                    r["clip_counts"] = clip_counts(yt, agg, ok, priv_clips + pub_clips, clip_len)
            if r["sequence_level"]:
                # per clip, over its labelled frames (labelled test frames are in clip order)
                labelled_per_clip = [int(c.sum()) for c in np.split(ok, np.cumsum(clip_len)[:-1])]
                bounds = np.concatenate([[0], np.cumsum(labelled_per_clip)])
                r[f"{metric}_pooled"] = pooled_score(yt[ok], agg[ok], bounds, kind)
            out[t] = r
    return {t: out[t] for t in protocol.tasks}


def headline_tasks(tasks: dict[str, dict]) -> list[str]:
    """The tasks of the headline mean F1: the per-frame Discrete (behaviour) tasks, or, for a
    task list with none (the MABe22 round-2 list holds only experimental conditions), every
    Discrete task, scored per frame as the evaluator scores them."""
    discrete = [t for t, r in tasks.items() if r["type"] == "Discrete"]
    frame = [t for t in discrete if not tasks[t]["sequence_level"]]
    return frame or discrete


def rare_actions(
    tasks: dict[str, dict],
    lab: Labels,
    head: list[str],
    fraction: float = EvaluateConfig.rare_fraction,
) -> list[dict]:
    """The rarest `fraction` (at least one) of the behaviour labels, each with the probes'
    private F1, precision and recall of it (`protocol_scores`' per-class scores).

    The labels are the positive class of each headline task (every class of a multi-class
    task) that occurs among the test frames; rarity = share of labelled frames in the whole
    dataset (ties by task name). Returns [{"task", "class", "frequency", "f1", "precision",
    "recall"}], rarest first. F1, not recall, is the score: a probe that calls every frame
    positive has recall 1 but F1 2p / (1 + p) for a label of frequency p.
    """
    candidates = []  # (frequency in the whole dataset, task, class, its private scores)
    for name in head:
        yt = lab.label_array[lab.tasks.index(name)]
        yt = yt[~np.isnan(yt)]
        classes = np.unique(yt)
        recall = tasks[name].get("recall", {})
        per_class = tasks[name].get("per_class", {})
        for c in classes if len(classes) > 2 else [1.0]:
            key = label_key(c)
            if key in recall and key in per_class:  # the class is among the test frames
                candidates.append((float(np.mean(yt == c)), name, float(c), per_class[key]))
    candidates.sort(key=lambda c: (c[0], c[1]))
    return [
        {
            "task": task,
            "class": c,
            "frequency": freq,
            "f1": sc["f1"],
            "precision": sc["precision"],
            "recall": sc["recall"],
        }
        for freq, task, c, sc in candidates[: max(1, math.ceil(fraction * len(candidates)))]
    ]


def few_shot_scores(
    emb: np.ndarray,
    lab: Labels,
    train_clips: list[str],
    test_rows: np.ndarray,
    head_idx: list[int],
    fractions: tuple[float, ...],
    draws: int,
    seed: int,
) -> tuple[dict[str, float], dict[str, int]]:
    """Mean headline F1 of linear probes fitted on `fractions` of the labelled train clips
    (nested subsets of one permutation per draw, `draws` draws), scored on `test_rows`.
    Returns ({fraction: mean F1 over draws}, {fraction: clips per probe})."""
    y = lab.label_array
    labelled = [
        c
        for c, rows in ((c, lab.rows([c])) for c in train_clips)
        if any(np.any(~np.isnan(y[t, rows])) for t in head_idx)
    ]
    x_te = np.asarray(emb[test_rows])  # (N_te, D)
    scores: dict[float, list[float]] = {f: [] for f in fractions}
    n_shot = {f: max(1, round(f * len(labelled))) for f in fractions}
    for draw in range(draws if labelled and head_idx else 0):
        order = np.random.default_rng([seed, draw]).permutation(len(labelled))
        for f in fractions:
            rows = lab.rows([labelled[i] for i in order[: n_shot[f]]])
            xs = np.asarray(emb[rows])
            m = Moments(xs)
            probes = [
                linear_probe(xs, y[t, rows], x_te, y[t, test_rows], moments=m)["f1"]
                for t in head_idx
            ]
            scores[f].append(_nanmean(probes))
    return (
        {str(f): _nanmean(v) for f, v in scores.items()},
        {str(f): n for f, n in n_shot.items()},
    )


def knn_task_scores(
    emb: np.ndarray,
    lab: Labels,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    head_idx: list[int],
    k: int,
    max_train: int,
    max_test: int,
    seed: int,
) -> dict[str, dict]:
    """kNN accuracy and balanced accuracy per headline task, on random subsets of at most
    `max_train` / `max_test` frames; tasks whose labelled masks agree share one search."""
    y = lab.label_array
    rng = np.random.default_rng([seed, 1_000])
    ktr = np.sort(rng.choice(train_rows, min(len(train_rows), max_train), replace=False))
    kte = np.sort(rng.choice(test_rows, min(len(test_rows), max_test), replace=False))
    e_tr, e_te = np.asarray(emb[ktr]), np.asarray(emb[kte])
    neighbours: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    out: dict[str, dict] = {}
    for t in head_idx:
        ytr, yte = y[t, ktr], y[t, kte]
        mtr, mte = ~np.isnan(ytr), ~np.isnan(yte)
        if not mtr.any() or not mte.any():
            nan = float("nan")
            out[lab.tasks[t]] = {"accuracy": nan, "balanced_accuracy": nan, "n_test": 0}
            continue
        key = np.packbits(mtr).tobytes() + b"|" + np.packbits(mte).tobytes()
        if key not in neighbours:
            neighbours[key] = knn_neighbours(e_tr[mtr], e_te[mte], k)
        out[lab.tasks[t]] = knn_scores(neighbours[key], ytr[mtr], yte[mte])
    return out


def temporal_scores(
    emb: np.ndarray,
    lab: Labels,
    window: Window,
    crop: CropPolicy,
    n_pairs: int,
    mrr_k: int,
    n_queries: int,
    seed: int,
) -> dict:
    """Label-free temporal locality over all clips, on windows with disjoint inputs: the
    Spearman correlation of embedding distance with frame gap (and its curve), and the
    retrieval MRR of temporal neighbours with its chance level."""
    rho, curve = spearman_distance_vs_gap(
        emb, lab.starts, lab.ends, window, crop, n_pairs, seed=seed
    )
    mrr, info = retrieval_mrr(emb, lab.starts, lab.ends, mrr_k, n_queries, seed, window, crop)
    lo, hi = gap_range(lab.ends - lab.starts, window, crop)
    return {
        "gap_range": [lo, hi],
        "spearman_rho": rho,
        "distance_by_dt": curve,
        "n_pairs": n_pairs,
        "mrr_k": mrr_k,
        "retrieval_mrr": mrr,
        "retrieval_mrr_chance": info["chance"],
        "n_queries": info["n_queries"],
    }


def evaluate(
    emb: np.ndarray,
    lab: Labels,
    protocol: Protocol,
    cfg: EvaluateConfig = EvaluateConfig(),
    fitted: dict[str, list] | None = None,
) -> dict:
    """All metrics of one (N_frames, D) embedding under the settings `cfg` (its crop gap in
    frames); see the module docstring for definitions. `fitted` receives the headline tasks'
    probes (protocol_scores) when given; `cfg.ceiling` (synthetic data: the labels are the
    generator's ground truth) adds the ceiling line to the reference lines
    (twbyol.reference)."""
    split_seed, test_size, knn_k = cfg.split_seed, cfg.test_size, cfg.knn_k
    window, crop = cfg.window, cfg.crop
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    probes: dict[str, list] = {}
    tasks = protocol_scores(emb, lab, protocol, test_size, fitted=probes)
    head = headline_tasks(tasks)
    if fitted is not None:
        fitted.update({t: probes[t] for t in head if t in probes})
    discrete = [t for t, r in tasks.items() if r["type"] == "Discrete"]
    timings["probe"] = time.perf_counter() - t0

    # ---- the reference split of the secondary metrics: the first headline task's -------
    ref = head[0] if head else protocol.tasks[0]
    split = protocol.split_of(ref)
    train_clips = protocol.train_clips(ref, protocol.seeds[0], test_size)
    test_clips = list(split["privateTest"]) + list(split["publicTest"])
    tr, te = lab.rows(train_clips), lab.rows(test_clips)
    t_index = {t: i for i, t in enumerate(lab.tasks)}
    head_idx = [t_index[t] for t in head]

    rare = rare_actions(tasks, lab, head, cfg.rare_fraction)

    t0 = time.perf_counter()
    few, n_shot = few_shot_scores(
        emb, lab, train_clips, te, head_idx, cfg.few_shot, cfg.few_shot_draws, split_seed
    )
    timings["few_shot"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    knn = knn_task_scores(
        emb, lab, tr, te, head_idx, knn_k, cfg.knn_max_train, cfg.knn_max_test, split_seed
    )
    for t, res in knn.items():
        tasks[t]["knn"] = res
    timings["knn"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    temporal = temporal_scores(
        emb, lab, window, crop, cfg.n_pairs, cfg.mrr_k, cfg.n_queries, split_seed
    )
    timings["temporal"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    truth = None
    if cfg.ceiling and head:  # the same probes on the ground truth of each frame's input window
        features = window_label_features(lab, window, lab.frame_tasks)
        truth = protocol_scores(features, lab, replace(protocol, tasks=list(head)), test_size)
    ref_tasks, ref_mean = reference_lines(lab, protocol, head, test_size, truth)
    for t, lines in ref_tasks.items():
        tasks[t]["reference_f1"] = lines
    timings["reference"] = time.perf_counter() - t0

    f1 = {k: [tasks[t].get(k, float("nan")) for t in head] for k in ("f1", "f1_public")}
    return {
        "dim": int(emb.shape[1]),
        "n_frames": int(emb.shape[0]),
        "protocol": {
            "source": protocol.source,
            "probe_seeds": list(protocol.seeds),
            "test_size": test_size,
            "n_clips": {k: len(split[k]) for k in ("SubmissionTrain", "publicTest", "privateTest")},
            "missing_videos": list(protocol.missing_videos),
        },
        "split_seed": split_seed,
        "test_size": test_size,
        "n_train_clips": len(train_clips),
        "n_test_clips": len(test_clips),
        "tasks": tasks,
        "headline_tasks": head,
        "mean_f1": _nanmean(f1["f1"]),
        "mean_f1_public": _nanmean(f1["f1_public"]),
        "n_f1_tasks": int(np.sum(~np.isnan(f1["f1"]))),
        "mean_f1_all": _nanmean([tasks[t]["f1"] for t in discrete]),
        "reference_mean_f1": ref_mean,
        "knn_k": knn_k,
        "knn_accuracy": _nanmean([tasks[lab.tasks[t]]["knn"]["accuracy"] for t in head_idx]),
        "knn_balanced_accuracy": _nanmean(
            [tasks[lab.tasks[t]]["knn"]["balanced_accuracy"] for t in head_idx]
        ),
        "rare_action_f1": _nanmean([r["f1"] for r in rare]),
        "rare_action_precision": _nanmean([r["precision"] for r in rare]),
        "rare_action_recall": _nanmean([r["recall"] for r in rare]),
        "rare_actions": rare,
        "few_shot_f1": few,
        "few_shot_clips": n_shot,
        "window": {
            "num_frames": window.num_frames,
            "stride": window.stride,
            "window_stride": window.window_stride,
            "extent": window.extent,
        },
        "crop_policy": {"policy": crop.policy, "rho": crop.rho, "gap": crop.gap},
        **temporal,
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
    ap.add_argument(
        "--protocol",
        required=True,
        help="the dataset's protocol .json (read-dataset): tasks, splits, probe seeds",
    )
    ap.add_argument("--out", required=True, help="evaluation .json to write")
    ap.add_argument(
        "--projection",
        help="the embed stage's .projection.npz of --embedding (default: beside it); the "
        "input window is read from it unless the config gives it",
    )
    ap.add_argument(
        "--probes-out",
        help="write the behaviour probes scored here (.npz, for twbyol predict); needs the "
        "config's frames_size and frames_fit",
    )
    ap.add_argument(
        "--config",
        default="{}",
        help="the settings (the fields of EvaluateConfig: split_seed, test_size, knn_k, "
        "the window and crop fields, ...) as inline JSON or a JSON file; a field left out "
        "takes its default",
    )
    ap.add_argument("--run-id", help="the run evaluated (recorded only)")
    ap.add_argument("--seed", type=int, help="its pretraining seed (recorded only)")
    ap.add_argument("--dataset", help="the dataset (recorded only)")
    ap.add_argument("--method", help="the run's method (recorded only)")
    args = ap.parse_args(argv)
    cfg = EvaluateConfig.from_dict(io.json_arg(args.config))
    if args.probes_out is not None:
        missing = [k for k in ("frames_size", "frames_fit") if getattr(cfg, k) is None]
        if missing:
            ap.error(f"--probes-out needs the config's {', '.join(missing)}")
    projection = Path(args.projection or Path(args.embedding).with_suffix(".projection.npz"))

    window_fields = ("num_frames", "frame_stride", "window_stride")
    given = [getattr(cfg, k) for k in window_fields]
    if None in given:
        with np.load(projection) if projection.exists() else contextlib.nullcontext({}) as z:
            if "window" not in z:
                ap.error(
                    f"{projection} records no input window (an embedding of an older twbyol "
                    f"embed): give the config's {', '.join(window_fields)}"
                )
            recorded = [int(v) for v in z["window"]]
        cfg = replace(
            cfg,
            **{k: g if g is not None else v for k, g, v in zip(window_fields, given, recorded)},
        )

    t_start = time.perf_counter()
    gap_note = {}
    if cfg.crop_gap_s is not None:
        index = read_index(args.index)
        fps = float(np.median(index.loc[index["labelled"] == 1, "fps"]))
        cfg = replace(cfg, crop_gap=round(cfg.crop_gap_s * fps))
        gap_note = {"gap_s": cfg.crop_gap_s, "fps": fps}
    lab = load_labels(args.labels)
    clips, starts, ends = labelled_spans(args.index)
    if clips != lab.clips or not (
        np.array_equal(starts, lab.starts) and np.array_equal(ends, lab.ends)
    ):
        raise ValueError(
            f"{args.index} and {args.labels} disagree on the clips or their frame ranges"
        )
    emb = load_embedding(args.embedding, lab.label_array.shape[1])
    fitted: dict[str, list] = {}
    protocol = read_protocol(args.protocol)
    protocol.validate(lab.clips, args.protocol)
    result = evaluate(emb, lab, protocol, cfg, fitted=fitted)
    result["crop_policy"].update(gap_note)
    if args.probes_out is not None:
        meta = {
            "run_id": args.run_id,
            "seed": args.seed,
            "dataset": args.dataset,
            "embedding": str(args.embedding),
            "probe_seeds": list(protocol.seeds),
            "frames": {"size": cfg.frames_size, "fit": cfg.frames_fit},
            "window_stride": cfg.window_stride,
            "f1": {t: result["tasks"][t]["f1"] for t in fitted},
        }
        result["probes"] = save_probes(args.probes_out, fitted, str(projection), meta)
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
        f"{args.run_id} seed {args.seed} {args.dataset}: mean F1 private {result['mean_f1']:.3f} "
        f"public {result['mean_f1_public']:.3f} ({result['n_f1_tasks']} tasks), kNN balanced acc "
        f"{result['knn_balanced_accuracy']:.3f}, rare F1 {result['rare_action_f1']:.3f}, "
        f"rho {result['spearman_rho']:.3f}, MRR {result['retrieval_mrr']:.3f} "
        f"(chance {result['retrieval_mrr_chance']:.3f}); reference lines "
        + ", ".join(f"{k} {v:.3f}" for k, v in result["reference_mean_f1"].items())
        + " "
        f"[{result['timings_s']['total']:.1f} s]",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
