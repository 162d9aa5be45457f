"""Calibrate the synthetic benchmark: can it tell random features, self-supervision and the
supervised upper bound apart? (DESIGN: "the synthetic benchmark must be able to say no".)

    python benchmarks/calibrate_synthetic.py --exp synthetic \\
        --runs random_init supervised byol_uniform twbyol_tau30 --seeds 0 \\
        [--set training.epochs=30 backbone.pool=avg ...] [--tag name]

Makes the experiment's pretraining dataset with the workflow (snakemake, the same rules as
the study), then for each run and seed trains it in this process with exactly the study's
resolved config (twbyol.experiment.run_config) plus the --set overrides, embeds the
pretraining dataset and scores it with the study's evaluation (twbyol.evaluate). Prints one
row per run x seed: mean F1 over the per-frame tasks, balanced kNN accuracy, Spearman rho, training
wall time, and every task's F1, so one sees which tasks separate the methods and which sit
at the floor or the ceiling for all of them. Outputs go to results/{exp}/calibration/{tag}/
with a calibration.json holding the rows; with --set, the changed experiment is run under
the name {exp}_{tag} (data included, so a dataset override never touches the study's data).

Read the verdict as: random_init clearly below the self-supervised runs, supervised clearly
above them, no task at F1 ~1 (trivial) or at its chance level for every method. A benchmark
that cannot order these three cannot answer whether TW-BYOL beats rho-BYOL.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from twbyol import io  # noqa: E402
from twbyol.data.artifacts import load_labels  # noqa: E402
from twbyol.embed import embed  # noqa: E402
from twbyol.evaluate import EvaluateConfig, evaluate  # noqa: E402
from twbyol.experiment import embedding_config, evaluation_config, run_config  # noqa: E402
from twbyol.features import EmbedConfig  # noqa: E402
from twbyol.split import read_protocol  # noqa: E402
from twbyol.statistics import paired_ttest  # noqa: E402
from twbyol.train import TrainConfig, train  # noqa: E402


def set_key(d: dict, dotted: str, value: str) -> None:
    """`training.epochs=30` -> d["training"]["epochs"] = 30 (value parsed as YAML)."""
    *path, last = dotted.split(".")
    for k in path:
        d = d.setdefault(k, {})
    d[last] = yaml.safe_load(value)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--exp", default="synthetic")
    ap.add_argument("--runs", nargs="+", default=["random_init", "supervised", "byol_uniform"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override experiment keys, e.g. training.epochs=30 crop.crop_size=48",
    )
    ap.add_argument("--tag", default="default", help="sub-folder of results/{exp}/calibration/")
    ap.add_argument("--cores", type=int, default=2, help="snakemake --cores for the data stage")
    args = ap.parse_args()

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    e = config["experiments"][args.exp]
    for kv in args.set:
        key, eq, value = kv.partition("=")
        if not eq:
            ap.error(f"--set {kv!r}: expected KEY=VALUE")
        set_key(e, key, value)
    unknown = [r for r in args.runs if r not in e["runs"]]
    if unknown:
        ap.error(f"--runs {unknown}: not runs of {args.exp} ({', '.join(e['runs'])})")
    # With overrides the experiment gets its own name, so that its data (which a dataset
    # override changes) never replaces the study's: results/{exp}_{tag}/.
    exp = f"{args.exp}_{args.tag}" if args.set else args.exp
    extra = REPO / "results" / "calibration" / f"{exp}.yaml"
    io.write_text(extra, yaml.safe_dump({"experiments": {exp: e}}))
    evaluation = EvaluateConfig.from_dict(evaluation_config(e))
    ds = e["pretrain_dataset"]
    n_shards = e["datasets"][ds]["frames"]["n_shards"]
    data = [f"results/{exp}/labels/{ds}.npz", f"results/{exp}/labels/{ds}.protocol.json"] + [
        f"results/{exp}/frames/{ds}/shard{k}.done" for k in range(n_shards)
    ]
    subprocess.run(
        [
            "snakemake",
            "--cores",
            str(args.cores),
            "--configfile",
            "config/config.yaml",
            str(extra),
            "--",
            *data,
        ],
        cwd=REPO,
        check=True,
    )

    out = REPO / "results" / exp / "calibration" / args.tag
    labels_path = REPO / f"results/{exp}/labels/{ds}.npz"
    index_path = REPO / f"results/{exp}/frames/{ds}/index.tsv"
    lab = load_labels(labels_path)
    protocol = read_protocol(REPO / f"results/{exp}/labels/{ds}.protocol.json")
    emb_cfg = EmbedConfig.from_dict(embedding_config(e))
    rows = []
    for run in args.runs:
        for seed in args.seeds:
            cfg = run_config(exp, e, run, seed)
            cfg = {
                k: (str(REPO / v) if k in ("frames_dir", "index", "labels", "protocol") else v)
                for k, v in cfg.items()
            }
            cfg["out_dir"] = str(out / run / f"seed{seed}")
            cfg["num_workers"] = min(cfg.get("num_workers", 1), 1)
            # train() resumes from a checkpoint it finds: never let a folder of a run with
            # other settings (an edited config.yaml, the same --tag) stand in for this one
            record = Path(cfg["out_dir"]) / "run_config.json"
            if record.exists() and io.read_json(record) != cfg:
                sys.exit(
                    f"{record}: an earlier calibration with other settings; "
                    f"use another --tag or remove {cfg['out_dir']}"
                )
            io.write_json(record, cfg)
            t0 = time.time()
            train(TrainConfig.from_dict(cfg))
            t_train = time.time() - t0
            emb_path = out / run / f"seed{seed}" / f"{ds}.npy"
            embed(
                str(Path(cfg["out_dir"]) / "model.pt"),
                cfg["frames_dir"],
                str(index_path),  # the labelled clips (a run's own "index" is its clip list)
                str(emb_path),
                str(emb_path.with_suffix(".projection.npz")),
                emb_cfg,
            )
            # the rule's settings (a gap in seconds stays unconverted: crop_gap is used)
            res = evaluate(np.load(emb_path), lab, protocol, evaluation)
            row = {
                "run": run,
                "seed": seed,
                "train_s": round(t_train, 1),
                "mean_f1": res["mean_f1"],
                "knn_balanced_accuracy": res["knn_balanced_accuracy"],
                "spearman_rho": res["spearman_rho"],
                "retrieval_mrr": res["retrieval_mrr"],
                "f1": {t: res["tasks"][t]["f1"] for t in res["headline_tasks"]},
                "f1_sequence": {
                    n: r["f1"]
                    for n, r in res["tasks"].items()
                    if n not in res["headline_tasks"] and r["type"] == "Discrete"
                },
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    io.write_json(out / "calibration.json", {"exp": exp, "set": args.set, "rows": rows})

    tasks = list(rows[0]["f1"])
    head = f"{'run':<22}{'seed':>5}{'train s':>9}{'meanF1':>8}{'kNNbal':>7}{'rho':>7} " + " ".join(
        f"{t[:9]:>9}" for t in tasks
    )
    print("\n" + head)
    for r in rows:
        print(
            f"{r['run']:<22}{r['seed']:>5}{r['train_s']:>9.0f}{r['mean_f1']:>8.3f}"
            f"{r['knn_balanced_accuracy']:>7.3f}{r['spearman_rho']:>7.3f} "
            + " ".join(f"{r['f1'][t]:>9.3f}" for t in tasks)
        )
    base = np.array(
        [
            lab.label_array[k][np.isfinite(lab.label_array[k])].mean()
            for k in (lab.tasks.index(t) for t in tasks)
        ]
    )
    print(f"{'positive rate':<51} " + " ".join(f"{b:>9.3f}" for b in base))

    print("\nmean F1 over seeds (mean +- sd):")
    for run in args.runs:
        v = np.array([r["mean_f1"] for r in rows if r["run"] == run])
        print(
            f"  {run:<22}{v.mean():.3f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}  (n={len(v)})"
        )

    # The calibration's two questions, paired by seed (one-sided): does each run beat the
    # untrained control, and does the supervised upper bound beat each run?
    f1 = {(r["run"], r["seed"]): r["mean_f1"] for r in rows}
    control, upper = e["study"].get("control"), e["study"].get("upper_bound")
    pairs = [(run, control) for run in args.runs if control in args.runs and run != control]
    pairs += [
        (upper, run) for run in args.runs if upper in args.runs and run not in (upper, control)
    ]
    if len(args.seeds) < 2:
        pairs = []  # nothing to test on one seed
    if pairs:
        print("\npaired t-tests of mean F1 across seeds (H1: first > second):")
    for a, b in pairs:
        t = paired_ttest([f1[a, s] for s in args.seeds], [f1[b, s] for s in args.seeds])
        print(
            f"  {a:<14} > {b:<14} diff {t['mean_diff']:+.3f}  95% CI [{t['ci95'][0]:+.3f}, "
            f"{t['ci95'][1]:+.3f}]  t({t['df']}) = {t['t']:.2f}  p = {t['p']:.4f}"
        )


if __name__ == "__main__":
    main()
