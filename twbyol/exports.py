"""Bouts, time budgets, BORIS events and NWB files of one predictions folder (the `export` stage).

    twbyol export --predictions results/smoke/predict/twbyol_tau30/seed0/mice \\
        --out-dir results/smoke/export/twbyol_tau30/seed0/mice \\
        --bouts results/smoke/export/twbyol_tau30/seed0/mice.bouts.csv \\
        --time-budget results/smoke/export/twbyol_tau30/seed0/mice.time_budget.csv

Reads the predict stage's CSVs and predictions.json (twbyol.predictions; each clip's frame
rate and video file from predictions.json, or from `--index`, a dataset's index.tsv, for a
folder written before predictions.json recorded them). Per video, in `--out-dir`:

- `{clip}.bouts.csv`: one row per bout of a called behaviour (twbyol.bouts.BOUT_COLUMNS):
  behaviour, start_frame, stop_frame (the bout's first and last frame), start_s, stop_s (the
  end of the last frame, (stop_frame + 1) / fps), duration_s, mean_score (the mean of the
  behaviour's score over the bout's frames);
- `{clip}.time_budget.csv`: per behaviour total_s, percent (of the video's duration; the
  behaviours may co-occur), bouts, mean_bout_s;
- `{clip}.boris.tsv`: the bouts as BORIS tabular events (the 8.x/9.x "Export events" layout
  with BORIS's headers): a START and a STOP row per bout at `Time` (s), state events, the
  video's file in `Media file name`; twbyol's own BORIS reader reads it back to the calls;
- `{clip}.nwb` (with the optional extra `nwb`: pynwb and ndx-ethogram): the bouts as an
  ndx-ethogram EthogramBouts table (label, start_time, stop_time, mean_score; labeling_method
  "automated"), its Ethogram (the behaviour catalogue), and the scores as a TimeSeries, in a
  processing module "behavior". Without the extra, no .nwb and the manifest says why;
- `manifest.json`: the files written and the NWB status.

Across the videos: `--bouts` (every bout, `clip` first) and `--time-budget` (per behaviour:
videos with a bout, total_s, percent of all the videos' duration, bouts, mean_bout_s). The
folder replaces `--out-dir` whole once every video is done.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path

import numpy as np

from twbyol import io
from twbyol.bouts import BOUT_COLUMNS, BUDGET_COLUMNS, bout_table, time_budget
from twbyol.predictions import read_predictions, read_summary

# BORIS 8.x/9.x tabular events export header (olivierfriard/BORIS; docs/own_videos.md)
BORIS_TABULAR = (
    "Observation id",
    "Observation date",
    "Description",
    "Observation duration",
    "Observation type",
    "Source",
    "Time offset (s)",
    "Media duration (s)",
    "FPS",
    "Subject",
    "Behavior",
    "Behavioral category",
    "Behavior type",
    "Time",
    "Media file name",
    "Image index",
    "Image file path",
    "Comment",
)
ACROSS_COLUMNS = ("behaviour", "videos", "total_s", "percent", "bouts", "mean_bout_s")
MANIFEST = "manifest.json"
# NWB needs a session start; the videos carry none, so the NWB files say the Unix epoch and
# that their times are seconds from the video's first frame (session_description)
NWB_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.4f}"
    return str(v)


def table_csv(columns: tuple[str, ...], rows: list[dict]) -> str:
    """CSV text of `rows` under `columns`; floats to 4 decimals, NaN empty."""
    out = StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r[c]) for c in columns])
    return out.getvalue()


def boris_events(
    clip: str, media: str, behaviours: list[str], bouts: list[dict], n_frames: int, fps: float
) -> str:
    """One video's bouts as BORIS tabular events (tab-separated, BORIS_TABULAR): a START and a
    STOP state event per bout, in time order."""
    duration = n_frames / fps
    events = []
    for r in bouts:
        events.append((r["start_s"], 1, r["behaviour"], "START", r["start_frame"]))
        events.append((r["stop_s"], 0, r["behaviour"], "STOP", min(r["stop_frame"] + 1, n_frames)))
    events.sort(key=lambda e: (e[0], e[1], behaviours.index(e[2])))
    out = StringIO()
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(BORIS_TABULAR)
    for t, _, b, kind, frame in events:
        row = {
            "Observation id": clip,
            "Description": "twbyol predictions",
            "Observation duration": f"{duration:.6f}",
            "Observation type": "Media file(s)",
            "Source": f"player #1:{media}",
            "Time offset (s)": "0.0",
            "Media duration (s)": f"{duration:.6f}",
            "FPS": f"{fps:g}",
            "Subject": "No focal subject",
            "Behavior": b,
            "Behavior type": kind,
            "Time": f"{t:.6f}",
            "Media file name": media,
            "Image index": str(frame),
        }
        w.writerow([row.get(c, "") for c in BORIS_TABULAR])
    return out.getvalue()


def across_budget(behaviours: list[str], videos: list[tuple[list[dict], float]]) -> list[dict]:
    """Per behaviour over every video's (bouts, duration_s): videos with a bout, total_s,
    percent of all the videos' duration, bouts, mean_bout_s."""
    total_duration = sum(d for _, d in videos)
    rows = time_budget(behaviours, [r for bouts, _ in videos for r in bouts], total_duration)
    for row in rows:
        b = row["behaviour"]
        row["videos"] = sum(any(r["behaviour"] == b for r in bouts) for bouts, _ in videos)
    return rows


def nwb_missing() -> str | None:
    """Why no .nwb can be written (the extra `nwb` not installed), or None."""
    try:
        import ndx_ethogram  # noqa: F401  (deferred: the optional extra `nwb`)
        import pynwb  # noqa: F401
    except ImportError as e:
        return f"the optional extra 'nwb' (pynwb, ndx-ethogram) is not installed ({e})"
    return None


def write_nwb(
    path: str | os.PathLike,
    clip: str,
    behaviours: list[str],
    bouts: list[dict],
    scores: np.ndarray,
    fps: float,
    provenance: dict,
) -> None:
    """One video's bouts (ndx-ethogram EthogramBouts + Ethogram) and scores (TimeSeries) as an
    NWB file (module doc)."""
    # deferred: the optional extra `nwb`
    from ndx_ethogram import Ethogram, EthogramBouts
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwb = NWBFile(
        session_description=(
            f"twbyol behaviour predictions of video {clip}; times are seconds from the "
            "video's first frame (the recording's start time is unknown: session_start_time "
            "is the Unix epoch)"
        ),
        identifier=f"twbyol-{provenance.get('run_id', 'run')}-{clip}",
        session_start_time=NWB_EPOCH,
    )
    module = nwb.create_processing_module("behavior", "twbyol's per-frame behaviour predictions")
    ethogram = Ethogram(name="ethogram", description="the behaviours the probes call")
    for b in behaviours:
        ethogram.add_row(behavior=b, definition=f"called by the linear probe of {b!r}")
    table = EthogramBouts(
        name="bouts",
        description="bouts of the per-frame calls: runs of consecutive called frames",
        labeling_method="automated",
        source_software="twbyol",
        parameters=json.dumps(provenance, sort_keys=True, default=str),
        ethogram=ethogram,
    )
    for r in bouts:
        table.add_row(start_time=r["start_s"], stop_time=r["stop_s"], label=r["behaviour"])
    table.add_column(  # after the rows, as an array: an empty list has no dtype for HDF5
        "mean_score",
        "mean probe decision value over the bout's frames",
        data=np.array([r["mean_score"] for r in bouts], np.float64),
    )
    module.add(ethogram)
    module.add(table)
    module.add(
        TimeSeries(
            name="scores",
            description="per-frame probe scores (mean decision value over the probe seeds; "
            "> 0: called), columns in the order of `comments`",
            comments=json.dumps(behaviours),
            data=np.asarray(scores, np.float32),
            unit="a.u.",
            rate=float(fps),
            starting_time=0.0,
        )
    )
    with io.atomic_path(path) as tmp, NWBHDF5IO(str(tmp), "w") as f:
        f.write(nwb)


def _clip_info(summary: dict, index_path: str | os.PathLike | None) -> tuple[dict, dict]:
    """({clip: fps}, {clip: media file}) from predictions.json, else the index."""
    if "fps" in summary:
        return summary["fps"], summary.get("media", {})
    if index_path is None:
        raise ValueError(
            "predictions.json records no frame rates (an earlier predictions folder): give "
            "--index, the dataset's index.tsv"
        )
    from twbyol.data.artifacts import read_index  # deferred: pandas

    index = read_index(index_path)
    return (
        dict(zip(index["clip_id"], map(float, index["fps"]))),
        dict(zip(index["clip_id"], index["source"])),
    )


def export(
    pred_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    bouts_path: str | os.PathLike,
    budget_path: str | os.PathLike,
    index_path: str | os.PathLike | None = None,
    nwb: bool = True,
    log=print,
) -> dict:
    """Write the exports of one predictions folder (module doc); returns the manifest."""
    pred_dir, out_dir = Path(pred_dir), Path(out_dir)
    summary = read_summary(pred_dir)
    behaviours, clips = summary["behaviours"], summary["clips"]
    fps_of, media_of = _clip_info(summary, index_path)
    why_no_nwb = nwb_missing() if nwb else "not asked for (--no-nwb)"
    if why_no_nwb:
        log(f"no .nwb files: {why_no_nwb}")
    provenance = {"model": summary.get("model"), **summary.get("probes", {})}
    provenance.pop("f1", None)
    all_bouts: list[dict] = []
    per_video: list[tuple[list[dict], float]] = []
    files: dict[str, list[str]] = {}

    with io.atomic_dir(out_dir) as tmp:
        for cid in clips:
            names, calls, scores = read_predictions(pred_dir / f"{cid}.csv")
            if names != behaviours:
                raise ValueError(f"{pred_dir / cid}.csv: behaviours {names} != {behaviours}")
            fps = float(fps_of[cid])
            bouts = bout_table(behaviours, calls, scores, fps)
            duration = len(calls) / fps
            media = media_of.get(cid) or cid
            written = {
                f"{cid}.bouts.csv": table_csv(BOUT_COLUMNS, bouts),
                f"{cid}.time_budget.csv": table_csv(
                    BUDGET_COLUMNS, time_budget(behaviours, bouts, duration)
                ),
                f"{cid}.boris.tsv": boris_events(cid, media, behaviours, bouts, len(calls), fps),
            }
            for name, text in written.items():
                io.write_text(tmp / name, text)
            files[cid] = list(written)
            if not why_no_nwb:
                write_nwb(tmp / f"{cid}.nwb", cid, behaviours, bouts, scores, fps, provenance)
                files[cid].append(f"{cid}.nwb")
            all_bouts += [{"clip": cid, **r} for r in bouts]
            per_video.append((bouts, duration))
            log(f"{cid}: {len(bouts)} bouts over {duration:.1f} s")
        manifest = {
            "predictions": str(pred_dir),
            "behaviours": behaviours,
            "files": files,
            "nwb": None if why_no_nwb else "ndx-ethogram EthogramBouts",
            "nwb_missing": why_no_nwb,
        }
        io.write_json(tmp / MANIFEST, manifest)
    io.write_text(bouts_path, table_csv(("clip", *BOUT_COLUMNS), all_bouts))
    io.write_text(budget_path, table_csv(ACROSS_COLUMNS, across_budget(behaviours, per_video)))
    return manifest


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--predictions", required=True, help="a predict stage's folder of CSVs")
    ap.add_argument("--out-dir", required=True, help="the folder of per-video exports")
    ap.add_argument("--bouts", required=True, help="the bouts of every video (CSV)")
    ap.add_argument("--time-budget", required=True, help="the time budget across videos (CSV)")
    ap.add_argument(
        "--index", help="the dataset's index.tsv, for a predictions.json without frame rates"
    )
    ap.add_argument("--no-nwb", action="store_true", help="write no .nwb files")
    a = ap.parse_args(argv)
    m = export(a.predictions, a.out_dir, a.bouts, a.time_budget, a.index, nwb=not a.no_nwb)
    print(f"{len(m['files'])} videos -> {a.out_dir} (nwb: {m['nwb'] or m['nwb_missing']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
