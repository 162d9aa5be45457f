"""The evaluation's behaviour probes as a file: saved by `evaluate --probes-out`, applied by
twbyol.predict to the backbone features of any video.

Per behaviour (a per-frame Discrete task of the headline, 0/1 labels) and probe seed: the
balanced ridge classifier the evaluation fitted and scored, composed with the embed stage's
PCA (when the backbone is wider than `max_dim`) into one affine map of the backbone's
features, decision = features @ coef + intercept. A frame is called (1) as the evaluator
aggregates seeds (any seed's probe calls it); its score is the mean decision over seeds.
File (.npz): coef (K, S, D), intercept (K, S), mode (K, S), meta (JSON: format, behaviours,
left_out, run_id, seed, dataset, probe_seeds, frames {size, fit}, window_stride, f1).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from twbyol import io
from twbyol.probe import FittedProbe

FORMAT = "twbyol-probes/1"


# how a probe calls a frame: by its decision (both classes seen in training), or always 0 /
# always 1 (one class seen: the evaluator's probe then predicts it everywhere)
BY_DECISION = 2


@dataclass(frozen=True)
class Probes:
    """The evaluation's probes of one dataset, on the backbone's features.

    behaviours: K names; coef (K, S, D_features); intercept (K, S); mode (K, S) int8: how
    each probe calls (BY_DECISION: decision > 0, else the one class its train frames held);
    meta: run, seed, dataset, the frames' size and fit, the embedding's window stride,
    per-behaviour F1 of the evaluation."""

    behaviours: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    mode: np.ndarray
    meta: dict

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, D) features -> (calls (T, K) uint8, scores (T, K) float32)."""
        if features.shape[1] != self.coef.shape[2]:
            raise ValueError(
                f"features are {features.shape[1]}-D, the probes expect {self.coef.shape[2]}-D "
                f"(a model other than the one the probes were fitted on?)"
            )
        x = np.asarray(features, np.float64)
        dec = np.einsum("nd,ksd->nks", x, self.coef) + self.intercept  # (T, K, S)
        each = np.where(self.mode == BY_DECISION, dec > 0, self.mode == 1)  # (T, K, S)
        # the evaluator's aggregate of the seeds: positive when any seed's probe calls it
        return each.any(axis=2).astype(np.uint8), dec.mean(axis=2).astype(np.float32)


def compose(probe: FittedProbe, mean: np.ndarray, axes: np.ndarray) -> tuple[np.ndarray, float]:
    """A probe on PCA outputs ((f - mean) @ axes) as (coef (D_features,), intercept) on the
    features f; the identity when `axes` is empty (no reduction)."""
    coef = np.asarray(probe.coef[:, 0], np.float64)
    b = float(probe.intercept[0])
    if axes.size == 0:
        return coef, b
    full = axes @ coef
    return full, b - float(mean @ full)


def call_mode(probe: FittedProbe) -> int:
    """BY_DECISION for a probe fitted on both classes, else the one class it always calls."""
    classes = probe.classes.tolist()
    return BY_DECISION if len(classes) == 2 else int(classes[0])


def save_probes(
    path: str | os.PathLike,
    fitted: dict[str, list[FittedProbe]],
    projection: str | os.PathLike,
    meta: dict,
) -> list[str]:
    """Write the per-frame behaviour probes of `fitted` ({task: one probe per seed}) composed
    with the embed stage's `projection` (.npz of mean, axes). Tasks whose labels are not 0/1,
    or that had no labelled train frame, are left out (and named in meta['left_out']).
    Returns the behaviours written."""
    with np.load(projection) as p:
        mean, axes = p["mean"], p["axes"]
    names, coefs, icepts, modes, left = [], [], [], [], {}
    for task, probes in fitted.items():
        if not probes or any(p is None for p in probes):
            left[task] = "no labelled train frames"
            continue
        if any(p.classes is None or not set(p.classes.tolist()) <= {0.0, 1.0} for p in probes):
            left[task] = "labels are not 0/1"
            continue
        c = [compose(p, mean, axes) for p in probes]
        names.append(task)
        coefs.append(np.stack([a for a, _ in c]))
        icepts.append(np.array([b for _, b in c]))
        modes.append(np.array([call_mode(p) for p in probes], np.int8))
    if not names:
        raise ValueError(f"no behaviour probe to save ({left})")
    doc = {**meta, "format": FORMAT, "behaviours": names, "left_out": left}
    io.write_npz(
        path,
        coef=np.stack(coefs),
        intercept=np.stack(icepts),
        mode=np.stack(modes),
        meta=np.array(json.dumps(doc)),
    )
    return names


def load_probes(path: str | os.PathLike) -> Probes:
    """A probes file of `save_probes`; errors name the file."""
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            return Probes(list(meta["behaviours"]), z["coef"], z["intercept"], z["mode"], meta)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a twbyol probes file ({e})") from None
