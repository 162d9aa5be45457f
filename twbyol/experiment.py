"""An experiment of config/config.yaml: the resolved config of each pretraining run, and the
design record (results/{exp}/experiment.json) that stats, figures and report read.

The workflow passes the record (name, description, seeds, datasets, runs, study roles,
recipe) as inline JSON; this stage validates that the study roles name defined runs and
writes it atomically. `run_config` is shared by the workflow (the pretrain rule's params)
and benchmarks/calibrate_synthetic.py, so both train exactly the same runs.
"""

from __future__ import annotations

import argparse
import sys

from twbyol import io


def embedding_config(e: dict) -> dict:
    """Experiment `e`'s `embedding` block over its defaults (a window every 4th frame)."""
    return {"window_stride": 4, "batch_size": 64, "max_dim": 128, **e.get("embedding", {})}


# twbyol.data.sampling.CropConfig's defaults of the keys the evaluation reads (not imported:
# it loads torch, 4 s for every Snakemake start; tests/test_temporal.py checks they agree)
CROP_DEFAULTS = {"num_frames": 8, "stride": 8, "policy": "uniform", "rho": 2, "gap": 60}


def evaluation_config(e: dict) -> dict:
    """Experiment `e`'s `evaluation` block over the MABe22 evaluator's defaults (probes fit on
    90 % of SubmissionTrain, test_size 0.1 unused; seed 42 for a derived split and every
    evaluation draw), and what the temporal metrics must know of the embed window and the
    training crops: `num_frames`, `frame_stride` (crop block), `window_stride` (embedding
    block), `crop_policy`, `crop_rho`, `crop_gap` (crop block; the experiment's, not a run's
    own crop_policy, so that every run is scored on the same frame pairs)."""
    crop = {**CROP_DEFAULTS, **{k: v for k, v in e["crop"].items() if k in CROP_DEFAULTS}}
    return {
        "split_seed": 42, "test_size": 0.1, "knn_k": 20, **e.get("evaluation", {}),
        "num_frames": crop["num_frames"], "frame_stride": crop["stride"],
        "window_stride": embedding_config(e)["window_stride"],
        "crop_policy": crop["policy"], "crop_rho": crop["rho"], "crop_gap": crop["gap"],
    }


def run_seeds(e: dict, run: str) -> list[int]:
    """The seeds run `run` of experiment `e` trains with: its own `seeds`, else the
    experiment's (so that the comparisons that need power get more seeds than the rest)."""
    return [int(s) for s in e["runs"][run].get("seeds", e["seeds"])]


def run_config(exp: str, e: dict, run: str, seed: int) -> dict:
    """The resolved config of run `run`, seed `seed` of experiment `exp` (its config `e`): the
    experiment's training recipe with the run's own settings on top (the fields of
    twbyol.train.TrainConfig). The supervised upper bound also gets the pretraining dataset's
    labels and protocol, so that it trains on clips the probes never score."""
    r = dict(e["runs"][run])
    r.pop("label", None)
    r.pop("seeds", None)
    crop = dict(e["crop"])
    if "crop_policy" in r:
        crop["policy"] = r.pop("crop_policy")
    ds = e["pretrain_dataset"]
    if r["method"] == "supervised":
        r.update(labels=f"results/{exp}/labels/{ds}.npz",
                 protocol=f"results/{exp}/labels/{ds}.protocol.json")
    if e["datasets"][ds].get("pretrain_splits"):
        r["pretrain_splits"] = list(e["datasets"][ds]["pretrain_splits"])
    return {
        **e["training"],
        **r,
        "crop": crop,
        "backbone": e["backbone"],
        "run_id": run,
        "seed": int(seed),
        "out_dir": f"results/{exp}/pretrain/{run}/seed{seed}",
        "frames_dir": f"results/{exp}/frames/{ds}",
        "index": f"results/{exp}/frames/{ds}/index.tsv",
    }


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--record", required=True, help="the record, inline JSON or a JSON file")
    a = ap.parse_args(argv)
    record = io.json_arg(a.record)
    runs = record.get("runs", {})
    for role, value in record.get("study", {}).items():
        for run in value if isinstance(value, list) else [value]:
            if run not in runs:
                raise ValueError(f"{a.out}: study.{role} names run {run!r}, which is not in runs")
    io.write_json(a.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
