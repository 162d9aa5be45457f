"""Stage `figures`: the study's figures as PDF (for print) and PNG (for report.md).

    twbyol figures --experiment results/smoke/experiment.json \\
        --comparison results/smoke/stats/comparison.tsv \\
        --evaluations results/smoke/evaluate/*/seed*/*.json \\
        --metrics results/smoke/pretrain/*/seed*/metrics.jsonl \\
        --efficiency results/smoke/pretrain/*/seed*/efficiency.json \\
        --out-dir results/smoke/images

Always written (the rule's declared outputs): per_task_f1, loss_curves, distance_vs_dt and
manifest.json ({"figures": [{"name", "pdf", "png", "caption"}]}, file names relative to
the manifest). Written when the experiment holds the runs they need: tau_sensitivity,
weighting_ablation, data_fraction, crop_policy, efficiency; and, given --embeddings with
--labels and --index, tsne (coloured by behaviour and by time in clip) and
retrieval_demo (query frames beside their nearest neighbours' frames).

Error bars and bands are +- one standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster nodes
import matplotlib.pyplot as plt
import numpy as np

from twbyol import io
from twbyol.data.artifacts import labelled_spans, load_labels
from twbyol.fmt import num
from twbyol.plotting import Figures
from twbyol.probe import unit_rows
from twbyol.tables import (
    Table,
    headline_dataset,
    load_efficiency,
    load_evaluations,
    run_label,
    run_order,
    run_seed_from_path,
    task_kinds,
)

plt.rcParams.update(
    {
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "figure.constrained_layout.use": True,
    }
)


# ---- runs ----------------------------------------------------------------------------------


def run_colours(exp: dict, runs: list[str]) -> dict[str, tuple]:
    """One colour per run, fixed by the experiment's run order, shared by every figure."""
    order = list(dict.fromkeys(list(exp.get("runs", {})) + runs))
    cmap = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    return {r: cmap(i % cmap.N) for i, r in enumerate(order)}


def main_runs(exp: dict, runs: list[str]) -> list[str]:
    """Runs of the headline comparison: baseline, proposed, control, upper bound and the other
    methods at full data; ablation variants have figures of their own. All runs when the
    experiment names no baseline/proposed."""
    study, cfg = exp.get("study") or {}, exp.get("runs", {})
    if not (study.get("baseline") and study.get("proposed")):
        return runs
    keep = {study.get(k) for k in ("baseline", "proposed", "control", "upper_bound")}
    keep |= {
        r
        for r in runs
        if cfg.get(r, {}).get("method", "byol") != "byol"
        and float(cfg.get(r, {}).get("data_fraction", 1.0)) == 1.0
    }
    return [r for r in runs if r in keep]


def _setting(exp: dict, run: str, key: str):
    """A run's setting with the experiment's default (data_fraction 1, crop policy of `crop`)."""
    cfg = exp.get("runs", {}).get(run, {})
    default = {
        "data_fraction": 1.0,
        "crop_policy": (exp.get("crop") or {}).get("policy", "default"),
    }.get(key)
    return cfg.get(key, default)


def _annotate(ax: plt.Axes, x: float, y: float, text: str, rotate: bool = False) -> None:
    ax.annotate(
        text,
        (x, y),
        xytext=(0, 2),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=6,
        rotation=90 if rotate else 0,
    )


def _mean_sd(v: dict[int, float]) -> tuple[float, float]:
    a = np.array(list(v.values()))
    return (
        float(a.mean()) if len(a) else float("nan"),
        float(a.std(ddof=1)) if len(a) > 1 else 0.0,
    )


# ---- always written --------------------------------------------------------------------------


def per_task_f1(
    figs: Figures, exp: dict, table: Table, frame_tasks: list[str], seq_tasks: list[str]
) -> None:
    runs = main_runs(exp, table.runs)
    colours = run_colours(exp, table.runs)
    all_groups = [(f"f1/{t}", t) for t in frame_tasks] + [
        (f"f1/{t}", f"{t}\n(per clip)") for t in seq_tasks
    ]
    datasets = table.datasets
    # each dataset's panel shows its own tasks only (the task lists span every dataset)
    panel_groups = {
        ds: [g for g in all_groups if any(table.values(r, ds, g[0]) for r in table.runs)]
        + [("mean_f1", "mean F1\n(per-frame)")]
        for ds in datasets
    }
    widest = max((len(g) for g in panel_groups.values()), default=1)
    width = 0.8 / max(1, len(runs))
    fig, axes = plt.subplots(
        len(datasets),
        1,
        figsize=(max(6.0, 0.45 * widest * len(runs) + 2), 3.2 * len(datasets)),
        squeeze=False,
    )
    n_seeds = 0
    for ax, ds in zip(axes[:, 0], datasets):
        groups = panel_groups[ds]
        for i, run in enumerate(runs):
            stats = [_mean_sd(table.values(run, ds, m)) for m, _ in groups]
            n_seeds = max(n_seeds, len(table.values(run, ds, "mean_f1")))
            x = np.arange(len(groups)) + (i - (len(runs) - 1) / 2) * width
            mean = np.array([s[0] for s in stats])
            ax.bar(
                x,
                mean,  # NaN (F1 undefined: no positive test frame) draws no bar, labelled n/a
                width,
                yerr=[s[1] for s in stats],
                color=colours[run],
                label=run_label(exp, run),
                capsize=1.5,
                error_kw={"lw": 0.7},
            )
            for xi, (m, sd) in zip(x, stats):
                _annotate(ax, xi, 0 if math.isnan(m) else m + sd, num(m, 2), rotate=True)
        ax.set_xticks(np.arange(len(groups)), [g for _, g in groups], fontsize=7)
        ax.set_ylim(0, 1.18)
        ax.set_ylabel("test F1 (0-1)")
        ax.set_title(f"{ds}: linear-probe F1 per task")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    figs.save(
        fig,
        "per_task_f1",
        f"Linear-probe F1 per behaviour task on the held-out clips (MABe22 protocol), mean +- sd "
        f"over {n_seeds} seeds; 'per clip' tasks are scored on one pooled embedding per clip "
        f"(few test clips: noisy); the last group is the headline mean over per-frame tasks.",
    )


def loss_curves(figs: Figures, exp: dict, metrics: list[dict]) -> None:
    curves: dict[str, dict[int, dict[int, float]]] = {}  # run -> seed -> epoch -> loss
    for m in metrics:
        if m.get("loss") is not None:
            curves.setdefault(m["run_id"], {}).setdefault(int(m["seed"]), {})[int(m["epoch"])] = (
                float(m["loss"])
            )
    curves = {r: curves[r] for r in run_order(exp, curves)}
    no_loss = sorted({m["run_id"] for m in metrics} - set(curves))
    methods = list(
        dict.fromkeys(exp.get("runs", {}).get(r, {}).get("method", "?") for r in curves)
    ) or ["none"]
    colours = run_colours(exp, list(curves))
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        for run, seeds in curves.items():
            if exp.get("runs", {}).get(run, {}).get("method", "?") != method:
                continue
            epochs = sorted({e for s in seeds.values() for e in s})
            v = np.array(
                [[s.get(e, np.nan) for e in epochs] for s in seeds.values()]
            )  # (seeds, epochs)
            mean, sd = (
                np.nanmean(v, 0),
                (np.nanstd(v, 0, ddof=1) if len(v) > 1 else np.zeros(len(epochs))),
            )
            ax.plot(
                epochs,
                mean,
                marker="o",
                ms=2.5,
                color=colours[run],
                label=f"{run_label(exp, run)} (n={len(v)})",
            )
            ax.fill_between(epochs, mean - sd, mean + sd, color=colours[run], alpha=0.2, lw=0)
            _annotate(ax, epochs[-1], mean[-1], f"{mean[-1]:.3f}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (per-sample mean)")
        ax.set_title(f"method: {method}")
        ax.legend(fontsize=7, frameon=False)
        if not curves:
            ax.text(
                0.5,
                0.5,
                "no training losses recorded",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
    figs.save(
        fig,
        "loss_curves",
        "Pretraining loss per epoch, mean +- sd over seeds, one panel per method (losses of "
        "different methods are not on one scale; a time-weighted BYOL loss is scaled by the "
        "mean pair weight)."
        + (
            f" No loss (untrained): {', '.join(run_label(exp, r) for r in no_loss)}."
            if no_loss
            else ""
        ),
    )


def distance_vs_dt(figs: Figures, exp: dict, evaluations: list[dict]) -> None:
    runs_all = run_order(exp, (ev["run_id"] for ev in evaluations))
    runs = main_runs(exp, runs_all)
    datasets = list(dict.fromkeys(ev["dataset"] for ev in evaluations))
    colours = run_colours(exp, runs_all)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        for run in runs:
            evs = [
                ev
                for ev in evaluations
                if ev["run_id"] == run and ev["dataset"] == ds and "distance_by_dt" in ev
            ]
            if not evs:
                continue
            dts = sorted(set.intersection(*(set(ev["distance_by_dt"]["dt"]) for ev in evs)))
            v = np.array(
                [
                    [
                        dict(zip(ev["distance_by_dt"]["dt"], ev["distance_by_dt"]["mean_dist"]))[d]
                        for d in dts
                    ]
                    for ev in evs
                ]
            )
            rho = np.array(
                [np.nan if ev.get("spearman_rho") is None else ev["spearman_rho"] for ev in evs],
                dtype=float,
            )
            mean, sd = v.mean(0), (v.std(0, ddof=1) if len(v) > 1 else np.zeros(len(dts)))
            label = f"{run_label(exp, run)}: rho = {np.nanmean(rho):.2f}" + (
                f" +- {np.nanstd(rho, ddof=1):.2f}" if len(rho) > 1 else ""
            )
            ax.plot(dts, mean, color=colours[run], label=label, lw=1.2)
            ax.fill_between(dts, mean - sd, mean + sd, color=colours[run], alpha=0.2, lw=0)
        ax.set_xlabel("frame gap dt (frames)")
        ax.set_ylabel("mean cosine distance (1 - cos)")
        ax.set_title(f"{ds}: embedding distance vs time gap")
        ax.legend(
            fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncols=2
        )
    figs.save(
        fig,
        "distance_vs_dt",
        "Mean cosine distance between the embeddings of two frames of one clip against their gap "
        "dt (binned), over sampled pairs whose input windows do not overlap and whose gap the "
        "training crops span (the same pairs for every run), mean +- sd over seeds; legend: "
        "Spearman rho between distance and dt (higher: more temporally ordered; ~0 for an "
        "embedding that knows nothing of time beyond its input window).",
    )


# ---- written when the runs exist ---------------------------------------------------------------


Series = tuple[str, list[str], list]  # (legend label, runs, their x values)


def _metric_panels(
    figs: Figures,
    exp: dict,
    table: Table,
    series: list[Series],
    xlabel: str,
    name: str,
    caption: str,
    line: bool,
) -> None:
    """Mean F1 and Spearman rho (mean +- sd over seeds) on the pretraining dataset of each
    series of runs: lines over a numeric x, grouped bars over categories. The baseline is a
    dashed reference when it is not itself plotted."""
    ds = headline_dataset(exp) or table.datasets[0]
    base = (exp.get("study") or {}).get("baseline")
    cats = list(dict.fromkeys(x for _, _, xs in series for x in xs))
    width = 0.8 / len(series)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for ax, metric, ylabel in (
        (axes[0], "mean_f1", "mean F1 (per-frame tasks, 0-1)"),
        (axes[1], "spearman_rho", "Spearman rho(distance, dt)"),
    ):
        for i, (label, runs, xs) in enumerate(series):
            stats = [_mean_sd(table.values(r, ds, metric)) for r in runs]
            mean, sd = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
            if line:
                pos = np.asarray(xs, dtype=float)
                ax.errorbar(pos, mean, sd, marker="o", capsize=3, color=f"C{i}", label=label)
            else:
                pos = np.array([cats.index(x) for x in xs]) + (i - (len(series) - 1) / 2) * width
                ax.bar(pos, mean, width, yerr=sd, capsize=3, color=f"C{i}", label=label)
            for p, m, s in zip(pos, mean, sd):
                _annotate(ax, p, 0 if math.isnan(m) else m + s, num(m, 3))
        if not line:
            ax.set_xticks(np.arange(len(cats)), [str(c) for c in cats], fontsize=7, rotation=20)
        plotted = {r for _, runs, _ in series for r in runs}
        if base and base not in plotted and table.values(base, ds, metric):
            bm, bs = _mean_sd(table.values(base, ds, metric))
            ax.axhline(bm, color="k", ls="--", lw=0.8, label=f"{run_label(exp, base)}: {bm:.3f}")
            ax.axhspan(bm - bs, bm + bs, color="k", alpha=0.08, lw=0)
        ax.margins(y=0.12)  # headroom for the value labels
        ax.legend(
            fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2
        )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    fig.suptitle(f"{ds}", fontsize=9)
    figs.save(fig, name, caption + " Mean +- sd over seeds; dashed: the baseline (band: +- sd).")


def _family(exp: dict, run: str) -> str:
    """A run's method and weighting (with tau) — what stays fixed along an ablation axis."""
    cfg = exp.get("runs", {}).get(run, {})
    tau = (
        f", tau {cfg['tau']}"
        if cfg.get("tau") is not None and cfg.get("weighting") != "uniform"
        else ""
    )
    return f"{cfg.get('method', '?')} {cfg.get('weighting', '')}{tau}".strip()


def ablation_figures(figs: Figures, exp: dict, table: Table) -> None:
    """tau_sensitivity, weighting_ablation, data_fraction and crop_policy, each when the
    experiment holds runs that vary along that axis (and were evaluated)."""
    cfg = exp.get("runs", {})
    runs = [r for r in cfg if table.values(r, headline_dataset(exp), "mean_f1")]
    study = exp.get("study") or {}
    prop = study.get("proposed")

    # the proposed run is the sweep's own point at its tau (the config lists only the others)
    listed = list(study.get("tau_sweep") or [])
    if (
        listed
        and prop in cfg
        and cfg[prop].get("weighting") == "exponential"
        and prop not in listed
    ):
        listed.append(prop)
    sweep = [r for r in listed if r in runs and cfg[r].get("tau") is not None]
    if sweep:
        sweep.sort(key=lambda r: float(cfg[r]["tau"]))
        taus = [float(cfg[r]["tau"]) for r in sweep]
        _metric_panels(
            figs,
            exp,
            table,
            [("TW-BYOL", sweep, taus)],
            "tau (frames)",
            "tau_sensitivity",
            "Sensitivity of TW-BYOL to the decay constant tau of w(dt) = exp(-dt/tau).",
            True,
        )

    if prop in cfg:  # weightings at the proposed run's tau, data fraction and crop policy
        fixed = {k: _setting(exp, prop, k) for k in ("data_fraction", "crop_policy")}
        same = [
            r
            for r in runs
            if cfg[r].get("method") == "byol"
            and all(_setting(exp, r, k) == v for k, v in fixed.items())
            and (cfg[r].get("weighting") == "uniform" or cfg[r].get("tau") == cfg[prop].get("tau"))
        ]
        if len({cfg[r].get("weighting") for r in same}) >= 3:
            _metric_panels(
                figs,
                exp,
                table,
                [("BYOL", same, [cfg[r].get("weighting") for r in same])],
                "pair weighting w(dt)",
                "weighting_ablation",
                f"Weighting ablation at tau = {cfg[prop].get('tau')} frames.",
                False,
            )

    # One series per family of runs that differ only along the axis.
    for field, line, xlabel in (
        ("data_fraction", True, "share of unlabelled video"),
        ("crop_policy", False, "temporal crop policy"),
    ):
        groups: dict[tuple, list[str]] = {}
        for r in runs:
            other = "crop_policy" if field == "data_fraction" else "data_fraction"
            groups.setdefault((_family(exp, r), str(_setting(exp, r, other))), []).append(r)
        series = []
        for (family, _), members in groups.items():
            if len({_setting(exp, r, field) for r in members}) >= 2:
                members.sort(
                    key=lambda r: (
                        float(_setting(exp, r, field)) if line else str(_setting(exp, r, field))
                    )
                )
                series.append((family, members, [_setting(exp, r, field) for r in members]))
        if series:
            _metric_panels(
                figs,
                exp,
                table,
                series,
                xlabel,
                field,
                f"{xlabel.capitalize()}: "
                + "; ".join(
                    f"{lab}: {', '.join(run_label(exp, r) for r in rs)}" for lab, rs, _ in series
                )
                + ".",
                line,
            )


def efficiency_table(
    figs: Figures, exp: dict, efficiency: list[dict], step_bench: dict | None = None
) -> None:
    """Pretraining cost per trained run (the untrained control costs nothing: left out).
    Runs trained on GPUs: GPU-hours (and vs the baseline), samples/s, peak memory. Runs on
    CPU: wall time and samples/s of jobs sharing a machine measure the machine, not the run,
    so only what the run itself fixes (samples, peak memory) and the isolated step benchmark's
    time ratio (criterion 4's evidence) are shown."""
    trained = [e for e in efficiency if int(e.get("samples") or 0) > 0]
    if not trained:
        return
    base = (exp.get("study") or {}).get("baseline")
    runs = run_order(exp, (e["run_id"] for e in trained))
    use_gpu = all(float(e.get("gpu_hours") or 0) > 0 for e in trained)

    def stat(run: str, key: str) -> tuple[float, float]:
        return _mean_sd(
            {
                i: float(e[key])
                for i, e in enumerate(trained)
                if e["run_id"] == run and e.get(key) is not None
            }
        )

    def seeds(run: str) -> str:
        return str(sum(e["run_id"] == run for e in trained))

    def mem(run: str) -> str:
        m = stat(run, "peak_mem_mb")
        return f"{m[0]:.0f} +- {m[1]:.0f}"

    if use_gpu:
        base_cost = stat(base, "gpu_hours")[0] if base in runs else float("nan")
        header = ["run", "seeds", "GPU-hours", "vs baseline", "samples/s", "peak memory (MB)"]
        cells = []
        for r in runs:
            c, sps = stat(r, "gpu_hours"), stat(r, "samples_per_s")
            rel = (
                "n/a" if math.isnan(base_cost) or not base_cost else f"{c[0] / base_cost - 1:+.1%}"
            )
            cells.append(
                [run_label(exp, r), seeds(r), f"{c[0]:.4g} +- {c[1]:.2g}", rel,
                 f"{sps[0]:.1f} +- {sps[1]:.1f}", mem(r)]
            )  # fmt: skip
        what = "GPU-hours, samples/s and peak memory, mean +- sd over seeds"
    else:
        bench = step_bench or {}
        ratio = {}
        if bench.get("comparison") and bench.get("proposed") in runs:
            c = bench["comparison"]
            ratio[bench["proposed"]] = (
                f"{c['median_ratio'] - 1:+.1%} [{c['ci95'][0] - 1:+.1%}, {c['ci95'][1] - 1:+.1%}]"
            )
            ratio[bench.get("baseline")] = "(baseline)"
        header = ["run", "seeds", "samples", "peak memory (MB)", "step time vs baseline"]
        cells = [
            [run_label(exp, r), seeds(r), f"{stat(r, 'samples')[0]:.0f}", mem(r),
             ratio.get(r, "")]
            for r in runs
        ]  # fmt: skip
        what = (
            "trained on CPU: samples and peak memory (mean +- sd over seeds); the time per "
            "training step vs the baseline's from the isolated step benchmark (median ratio, "
            "95 % CI), where the study has one. Wall time and samples/s of runs that shared "
            "a machine are not shown: they measure the machine"
        )
    fig, ax = plt.subplots(figsize=(8.4, 0.5 + 0.28 * (len(runs) + 1)))
    ax.axis("off")
    tab = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.auto_set_column_width(list(range(len(header))))
    kinds = sorted({str(e.get("peak_mem_kind", "")) for e in trained} - {""})
    left_out = sorted({e["run_id"] for e in efficiency} - set(runs))
    figs.save(
        fig,
        "efficiency",
        f"Pretraining cost per run: {what}"
        f"{'; peak memory: ' + ', '.join(kinds) if kinds else ''}"
        + (
            f". Not trained (no cost): {', '.join(run_label(exp, r) for r in left_out)}."
            if left_out
            else "."
        ),
    )


# ---- qualitative: t-SNE and retrieval (need the embeddings) ---------------------------------


def frame_behaviours(lab) -> tuple[list[str], np.ndarray]:
    """Each frame's behaviour for colouring: (names, codes (N,)) with code k the name k of
    ["unlabelled", "none", *behaviours]: a per-frame behaviour task at 1 (the rarest one
    where several are), "none" where every labelled one is 0, "unlabelled" where none is
    labelled."""
    tasks = list(lab.frame_tasks)
    y = lab.label_array[tasks] if tasks else np.full((0, lab.label_array.shape[1]), np.nan)
    codes = np.where(np.isnan(y).all(0), 0, 1) if tasks else np.zeros(y.shape[1], np.int64)
    rate = np.nanmean(y, axis=1) if tasks else np.zeros(0)
    for k in np.argsort(-rate):  # the rarest behaviour last: it wins where several are 1
        codes[y[k] == 1] = 2 + k
    return ["unlabelled", "none", *(lab.tasks[t] for t in tasks)], codes


def neighbours(
    u: np.ndarray, q: int, clip_of: np.ndarray, k: int, exclude: int
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows of unit embeddings u (N, D) most cosine-similar to row q, from other clips
    than q's (its own clip holds its near-copies: the frames around it, the same scene
    later), the best frame of each clip (when k clips are left); with one clip, beyond
    +-`exclude` frames of q. Returns (rows, similarities of every row, -inf where
    excluded)."""
    sim = u @ u[q]
    near = clip_of == clip_of[q]
    if len(np.unique(clip_of)) == 1:
        near &= np.abs(np.arange(len(u)) - q) <= exclude
    sim[near] = -np.inf
    order = np.argsort(-sim)
    # one frame per clip where there are clips enough (the best of each): a clip's frames
    # around its best match are near-copies of it
    _, first = np.unique(clip_of[order], return_index=True)
    best_per_clip = order[np.sort(first)]
    best_per_clip = best_per_clip[np.isfinite(sim[best_per_clip])]
    return (best_per_clip if len(best_per_clip) >= k else order)[:k], sim


def qualitative(
    figs: Figures,
    exp: dict,
    embeddings: list[str],
    labels_path: str,
    index_path: str,
    n_tsne: int = 1500,
    seed: int = 0,
) -> None:
    lab = load_labels(labels_path)
    clips, _, _ = labelled_spans(index_path)
    rng = np.random.default_rng(seed)
    study = exp.get("study") or {}
    by_run: dict[str, str] = {}
    for p in sorted(embeddings):  # lowest seed of each run
        run, _ = run_seed_from_path(p)
        by_run.setdefault(run, p)
    runs = [r for r in (study.get("baseline"), study.get("proposed")) if r in by_run] or list(
        by_run
    )[:2]
    names, behaviour = frame_behaviours(lab)
    time_in_clip = np.concatenate([np.arange(e - s) for s, e in zip(lab.starts, lab.ends)])
    n = lab.label_array.shape[1]
    pick = np.sort(rng.choice(n, min(n, n_tsne), replace=False))

    # deferred: sklearn takes ~1 s to import and only this panel needs it (ethogram, which
    # imports this module for Figures, never does)
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    colours = ["0.85", "0.55", *(plt.get_cmap("tab10")(k % 10) for k in range(len(names) - 2))]
    fig, axes = plt.subplots(len(runs), 2, figsize=(8, 3.6 * len(runs)), squeeze=False)
    for row, run in zip(axes, runs):
        x = np.load(by_run[run], mmap_mode="r")[pick].astype(np.float64)
        x = PCA(n_components=min(30, x.shape[1]), random_state=seed).fit_transform(x)
        xy = TSNE(n_components=2, perplexity=30, init="pca", random_state=seed).fit_transform(x)
        for k, (name, colour) in enumerate(zip(names, colours)):
            m = behaviour[pick] == k
            if m.any():
                row[0].scatter(xy[m, 0], xy[m, 1], color=colour, s=4, label=name)
        row[0].legend(fontsize=6, markerscale=2, frameon=False, loc="best")
        sc = row[1].scatter(xy[:, 0], xy[:, 1], c=time_in_clip[pick], cmap="viridis", s=4)
        fig.colorbar(sc, ax=row[1], label="time in clip (frames)")
        for ax, what in zip(row, ("behaviour", "time")):
            ax.set_title(f"{run_label(exp, run)}: by {what}", fontsize=8)
            ax.set_xlabel("t-SNE 1")
            ax.set_ylabel("t-SNE 2")
    figs.save(
        fig,
        "tsne",
        f"t-SNE of {len(pick)} random frames (PCA to 30 dimensions first), lowest seed of each "
        "run, coloured by the frame's labelled behaviour (the rarest where several are; none: "
        "no behaviour; unlabelled: no label) and by time in clip.",
    )

    frames_dir = Path(index_path).parent
    if not all((frames_dir / f"{c}.npy").exists() for c in clips):
        print(f"retrieval demo skipped: frames not found in {frames_dir}", file=sys.stderr)
        return
    n_q, n_nn, exclude = 3, 4, 30
    clip_of = np.repeat(np.arange(len(clips)), lab.ends - lab.starts)
    # queries from labelled behaviour frames where there are any (what a reader checks)
    shown = np.flatnonzero(behaviour >= 2) if (behaviour >= 2).any() else np.arange(n)
    queries = rng.choice(shown, min(n_q, len(shown)), replace=False)
    other_clips = len(clips) > 1

    def frame(row: int) -> np.ndarray:
        c = clip_of[row]
        return np.load(frames_dir / f"{clips[c]}.npy", mmap_mode="r")[row - lab.starts[c]]

    fig, axes = plt.subplots(
        len(queries) * len(runs),
        n_nn + 1,
        figsize=(1.6 * (n_nn + 1), 1.75 * len(queries) * len(runs)),
        squeeze=False,
    )
    for ri, run in enumerate(runs):
        u = unit_rows(np.load(by_run[run], mmap_mode="r"))
        for qi, q in enumerate(queries):
            nn, sim = neighbours(u, q, clip_of, n_nn, exclude)
            row = axes[ri * len(queries) + qi]
            for ax, r, title in zip(
                row, [q, *nn], ["query"] + [f"#{k + 1} cos {sim[j]:.2f}" for k, j in enumerate(nn)]
            ):
                ax.imshow(frame(r), cmap="gray")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(
                    f"{title}\n{clips[clip_of[r]]}:{r - lab.starts[clip_of[r]]}\n"
                    f"{names[behaviour[r]]}",
                    fontsize=6,
                )
            row[0].set_ylabel(run_label(exp, run), fontsize=7)
    where = (
        "in other clips, the best frame of each (the query's own clip excluded)"
        if other_clips
        else f"beyond +-{exclude} frames of the query (one clip)"
    )
    figs.save(
        fig,
        "retrieval_demo",
        f"Retrieval demo: query frames of labelled behaviours (left) and their {n_nn} most "
        f"cosine-similar frames {where}; rows grouped by run (lowest seed). Titles: clip:frame "
        "and the frame's labelled behaviour.",
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--comparison", required=True, help="stats/comparison.tsv")
    ap.add_argument(
        "--evaluations",
        nargs="+",
        required=True,
        help="evaluation JSONs (distance-vs-dt curves, task kinds)",
    )
    ap.add_argument("--metrics", nargs="*", default=[], help="pretraining metrics.jsonl files")
    ap.add_argument(
        "--efficiency", nargs="*", default=[], help="efficiency.json files at .../{run}/seed{s}/"
    )
    ap.add_argument(
        "--embeddings",
        nargs="*",
        default=[],
        help=(
            "optional .../embed/{run}/seed{s}/{dataset}.npy of ONE dataset for t-SNE and the "
            "retrieval demo"
        ),
    )
    ap.add_argument("--labels", help="labels .npz of that dataset (with --embeddings)")
    ap.add_argument(
        "--index", help="index.tsv of that dataset; its folder holds the frames (with --embeddings)"
    )
    ap.add_argument(
        "--tsne-frames",
        type=int,
        default=1500,
        help="random frames in the t-SNE (its cost grows faster than linearly)",
    )
    ap.add_argument("--out-dir", required=True)
    ap.add_argument(
        "--report-dir",
        type=Path,
        help="also copy every figure's PNG here (the HTML report's folder of figures)",
    )
    ap.add_argument(
        "--step-benchmark",
        help="step_benchmark.json (twbyol.benchmark): the cost comparison of runs on CPU",
    )
    args = ap.parse_args(argv)
    if args.embeddings and not (args.labels and args.index):
        ap.error("--embeddings needs --labels and --index")

    exp = io.read_json(args.experiment)
    table = Table.read(args.comparison)
    evaluations = load_evaluations(args.evaluations)
    frame_tasks, seq_tasks = task_kinds(evaluations)
    metrics = [m for p in args.metrics for m in io.read_jsonl(p)]
    if args.report_dir is not None:
        args.report_dir.mkdir(parents=True, exist_ok=True)
    figs = Figures(Path(args.out_dir), args.report_dir)

    per_task_f1(figs, exp, table, frame_tasks, seq_tasks)
    loss_curves(figs, exp, metrics)
    distance_vs_dt(figs, exp, evaluations)
    ablation_figures(figs, exp, table)
    bench = io.read_json(args.step_benchmark) if args.step_benchmark else None
    efficiency_table(figs, exp, load_efficiency(args.efficiency), bench)
    if args.embeddings:
        qualitative(figs, exp, args.embeddings, args.labels, args.index, args.tsne_frames)
    figs.write_manifest()
    return 0


if __name__ == "__main__":
    sys.exit(main())
