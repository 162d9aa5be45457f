"""Ethogram figure of one dataset's predictions (the `ethogram` stage).

    twbyol ethogram --predictions results/smoke/predict/twbyol_tau30/seed0/mice \\
        --labels results/smoke/labels/mice.npz --index results/smoke/frames/mice/index.tsv \\
        --dataset mice --out-dir results/smoke/images

One panel per clip shown, time (s) across; per behaviour a row: the probes' 0/1 calls (dark)
and, where the clip has labels, the labels below them (light; hatched grey where a frame is
unlabelled); an unlabelled clip's rows hold its calls alone. Clips shown: up to --max-clips,
the test clips of the protocol with labels first (the frames the probes never saw), then
labelled train clips, then unlabelled ones (at least one of those when the dataset has any). Writes
`ethogram_{dataset}.pdf/.png` and `ethogram_{dataset}.json` (the figures manifest entry the
report reads, and `videos_pdf`), `ethogram_{dataset}_videos.pdf`: one page per predicted
video (labelled and unlabelled, predictions.json's order), the rasters over the probes'
score traces, and per behaviour the F1 of the calls against the labels over the test clips
shown, in the caption (with the evaluation's F1 of the same probes beside it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.patches import Patch

from twbyol import io
from twbyol.bouts import run_spans
from twbyol.data.artifacts import load_labels, read_index
from twbyol.plotting import Figures
from twbyol.predictions import SUMMARY, read_predictions
from twbyol.probe import classification_scores

TEST_SPLITS = ("privateTest", "publicTest")


def bars(mask: np.ndarray, dt: float) -> list[tuple[float, float]]:
    """(start, duration) in seconds of the runs of True in a per-frame mask (broken_barh)."""
    starts, lengths = run_spans(mask)
    return [(float(s) * dt, float(n) * dt) for s, n in zip(starts, lengths)]


def is_test(splits: str) -> bool:
    """Whether a clip of these index.tsv `splits` is scored (privateTest or publicTest)."""
    return bool(set(splits.split(",")) & set(TEST_SPLITS))


def choose_clips(
    ids: list[str], splits: dict[str, str], labelled: set[str], max_clips: int
) -> list[str]:
    """Test clips with labels, then other labelled clips, then unlabelled ones (at least one
    unlabelled clip when there is one and room for two), in index order, `max_clips` at most."""
    test = [c for c in ids if c in labelled and is_test(splits[c])]
    train = [c for c in ids if c in labelled and c not in test]
    unlab = [c for c in ids if c not in labelled]
    n_unlab = min(len(unlab), 1 if max_clips >= 2 else 0)
    picked = (test + train)[: max_clips - n_unlab]
    return picked + unlab[: max_clips - len(picked)]


def binary_f1(y: np.ndarray, p: np.ndarray) -> float:
    """The evaluator's F1 (probe.classification_scores) of 0/1 calls p against 0/1 labels y,
    frames where y is NaN dropped; NaN when none is labelled."""
    ok = ~np.isnan(y)
    return classification_scores(y[ok], p[ok])["f1"] if ok.any() else float("nan")


def _rasters(ax, behaviours, calls, dt, labels=None) -> None:
    """Per behaviour a row: the calls (dark); with `labels` ({behaviour: per-frame 0/1/NaN})
    the row splits, calls above and labels below (light; hatched grey where unlabelled)."""
    n_b = len(behaviours)
    for k, b in enumerate(behaviours):
        y0 = n_b - 1 - k
        if labels is None:
            ax.broken_barh(bars(calls[:, k] == 1, dt), (y0 + 0.1, 0.8), color="C0")
            continue
        ax.broken_barh(bars(calls[:, k] == 1, dt), (y0 + 0.5, 0.4), color="C0")
        y = labels.get(b)
        if y is not None:
            ax.broken_barh(bars(y == 1, dt), (y0 + 0.05, 0.4), color="C1")
            ax.broken_barh(
                bars(np.isnan(y), dt),
                (y0 + 0.05, 0.4),
                facecolor="none",
                edgecolor="0.6",
                hatch="///",
                linewidth=0,
            )
    ax.set_yticks(np.arange(n_b) + 0.5, behaviours[::-1], fontsize=6)
    ax.set_xlim(0, len(calls) * dt)
    ax.set_ylim(0, n_b)
    ax.tick_params(axis="x", labelsize=6)


def _legend(ax, labelled: bool) -> None:
    handles = [Patch(color="C0", label="predicted")]
    if labelled:
        handles.append(Patch(color="C1", label="labelled"))
    ax.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=2,
        fontsize=6,
        frameon=False,
    )


def video_page(plt, cid: str, kind: str, behaviours, calls, scores, dt, labels=None):
    """One video's page: the behaviour rasters (calls; labels where the video has them) over
    the probes' score traces (one line per behaviour; 0 is the calling threshold)."""
    n_b = len(behaviours)
    fig, (ax, axs) = plt.subplots(
        2,
        1,
        figsize=(8.0, 1.6 + 0.25 * n_b * (2 if labels is not None else 1)),
        sharex=True,
        gridspec_kw={"height_ratios": [max(n_b, 2), 3]},
    )
    _rasters(ax, behaviours, calls, dt, labels)
    _legend(ax, labels is not None)
    ax.set_title(f"{cid} ({kind})", fontsize=8, loc="left")
    t = np.arange(len(scores)) * dt
    for k, b in enumerate(behaviours):
        axs.plot(t, scores[:, k], lw=0.7, label=b, color=f"C{(k + 2) % 10}")
    axs.axhline(0.0, color="0.4", lw=0.6, ls="--")
    axs.set_ylabel("score", fontsize=7)
    axs.set_xlabel("time (s)", fontsize=7)
    axs.tick_params(labelsize=6)
    axs.legend(fontsize=5, ncol=min(n_b, 6), loc="upper right", frameon=False)
    fig.tight_layout()
    return fig


def ethogram(
    pred_dir: str | Path,
    labels_path: str | Path,
    index_path: str | Path,
    dataset: str,
    out_dir: str | Path,
    max_clips: int = 4,
) -> dict:
    pred_dir = Path(pred_dir)
    summary = io.read_json(pred_dir / SUMMARY)
    lab = load_labels(labels_path)
    index = read_index(index_path)
    task = {t: i for i, t in enumerate(lab.tasks)}
    row = {c: i for i, c in enumerate(lab.clips)}
    fps = dict(zip(index["clip_id"], index["fps"]))
    splits = {c: str(s) for c, s in zip(index["clip_id"], index["splits"])}
    clips = choose_clips(list(index["clip_id"]), splits, set(lab.clips), max_clips)
    behaviours = summary["behaviours"]
    n_b = len(behaviours)

    def load(cid: str):
        names, calls, scores = read_predictions(pred_dir / f"{cid}.csv")
        if names != behaviours:
            raise ValueError(f"{pred_dir / cid}.csv: behaviours {names} != {behaviours}")
        labels = None
        if cid in row:
            s, e = lab.starts[row[cid]], lab.ends[row[cid]]
            labels = {b: lab.label_array[task[b], s:e] for b in behaviours if b in task}
        scored = cid in row and is_test(splits[cid])
        kind = "test clip" if scored else ("labelled" if cid in row else "unlabelled")
        return calls, scores, labels, scored, kind

    heights = [(2 if c in row else 1) * 0.2 * n_b + 0.3 for c in clips]
    fig, axes = plt.subplots(
        len(clips),
        1,
        figsize=(7.0, 0.4 + sum(heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    agree: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {b: [] for b in behaviours}
    for ax, cid in zip(axes[:, 0], clips):
        calls, _, labels, scored, kind = load(cid)
        _rasters(ax, behaviours, calls, 1.0 / float(fps[cid]), labels)
        if scored:
            for k, b in enumerate(behaviours):
                if b in labels:
                    agree[b].append((labels[b], calls[:, k]))
        ax.set_title(f"{cid} ({kind})", fontsize=7, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    _legend(axes[0, 0], any(c in row for c in clips))
    f1 = {
        b: binary_f1(np.concatenate([y for y, _ in v]), np.concatenate([p for _, p in v]))
        for b, v in agree.items()
        if v
    }
    probes = summary.get("probes", {})
    parts = [
        f"{b} {f1[b]:.2f} (evaluation {probes.get('f1', {}).get(b, float('nan')):.2f})"
        for b in behaviours
        if b in f1
    ]
    pages = f"ethogram_{dataset}_videos.pdf"
    caption = (
        f"Ethogram of {dataset}: {probes.get('run_id', '?')} seed {probes.get('seed', '?')}'s "
        f"probes' calls (dark; above the labels where a clip has them) and the labels (light, "
        f"below; hatched: unlabelled), {len(clips)} clips. F1 of the calls on the test clips "
        "shown: "
        + ("; ".join(parts) if parts else "no labelled test clip shown")
        + f". Every predicted video, with its score traces: {pages}."
    )
    out_dir = Path(out_dir)
    figs = Figures(out_dir)
    figs.save(fig, f"ethogram_{dataset}", caption)
    ids = list(summary.get("clips") or index["clip_id"])
    with io.atomic_path(out_dir / pages) as tmp, PdfPages(tmp) as pdf:
        for cid in ids:
            calls, scores, labels, _, kind = load(cid)
            dt = 1.0 / float(fps[cid])
            page = video_page(plt, cid, kind, behaviours, calls, scores, dt, labels)
            pdf.savefig(page)
            plt.close(page)
    io.write_json(
        out_dir / f"ethogram_{dataset}.json",
        {"figures": figs.entries, "videos_pdf": pages, "videos": ids},
    )
    return {"clips": clips, "f1": f1, "videos": ids}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--predictions", required=True, help="a predict stage's folder of CSVs")
    ap.add_argument("--labels", required=True, help="the dataset's labels .npz")
    ap.add_argument("--index", required=True, help="the dataset's index.tsv")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out-dir", required=True, help="where the figure and its manifest go")
    ap.add_argument("--max-clips", type=int, default=4, help="clips shown (panels)")
    a = ap.parse_args(argv)
    info = ethogram(a.predictions, a.labels, a.index, a.dataset, a.out_dir, a.max_clips)
    print(f"ethogram_{a.dataset}: clips {info['clips']}, F1 {info['f1']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
