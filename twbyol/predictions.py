"""The predict stage's output folder, read and written: one CSV per video and predictions.json.

A video's CSV has columns `frame, time_s` (frame / the video's fps), then each behaviour's 0/1
call, then each behaviour's score (`{behaviour}_score`), one row per frame. predictions.json
beside them records what made them (model, probes, behaviours, clips) and, per clip, the
video's frame rate (`fps`) and its file (`media`, as the dataset or folder names it).
Shared by the stages that read predictions (ethogram, export) and the one that writes them.
"""

from __future__ import annotations

import csv
import os
from io import StringIO
from pathlib import Path

import numpy as np

from twbyol import io

SUMMARY = "predictions.json"


def write_predictions(
    path: str | os.PathLike,
    behaviours: list[str],
    calls: np.ndarray,
    scores: np.ndarray,
    fps: float,
) -> None:
    """One video's predictions as CSV: frame, time_s, the calls, the scores (module doc)."""
    out = StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["frame", "time_s", *behaviours, *(f"{b}_score" for b in behaviours)])
    for f in range(len(calls)):
        w.writerow([f, f"{f / fps:.4f}", *calls[f].tolist(), *(f"{s:.4f}" for s in scores[f])])
    io.write_text(path, out.getvalue())


def read_predictions(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(behaviours, calls (T, K), scores (T, K)) of a predictions CSV."""
    import pandas as pd  # deferred: pandas costs a second to import

    df = pd.read_csv(path)
    k = (df.shape[1] - 2) // 2
    names = list(df.columns[2 : 2 + k])
    return names, df.iloc[:, 2 : 2 + k].to_numpy(np.uint8), df.iloc[:, 2 + k :].to_numpy()


def read_summary(pred_dir: str | os.PathLike) -> dict:
    """predictions.json of a predictions folder."""
    return io.read_json(Path(pred_dir) / SUMMARY)
