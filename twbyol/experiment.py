"""An experiment of config/config.yaml: the resolved config of each pretraining run, and the
design record (results/{exp}/experiment.json) that stats, figures and report read.

The workflow passes the record (name, description, seeds, datasets, runs, study roles,
recipe) as inline JSON; this stage validates that the study roles name defined runs and
writes it atomically. `run_config` is shared by the workflow (the pretrain rule's params)
and benchmarks/calibrate_synthetic.py, so both train exactly the same runs; it checks each
run with `check_run`, which the workflow runs on every run before any job.
"""

from __future__ import annotations

import argparse
import sys

from twbyol import io, slurm
from twbyol.data.crops import crop_defaults
from twbyol.settings import (
    DEFAULT_FRAME_FIT,
    EVALUATOR_SEED,
    LABELLED_WEIGHTINGS,
)


def embedding_config(e: dict) -> dict:
    """Experiment `e`'s `embedding` block as given: the fields of twbyol.features.EmbedConfig,
    which holds every default."""
    return dict(e.get("embedding", {}))


def evaluation_config(e: dict, dataset: str | None = None) -> dict:
    """The evaluate stage's settings for experiment `e` (the fields of
    twbyol.evaluate.EvaluateConfig, which holds every default: a field not set here takes
    it there): the experiment's `evaluation` block as given, and what the temporal metrics
    must know of the embed window and the training crops: `num_frames`, `frame_stride` (crop
    block), `window_stride` (embedding block), `crop_policy`, `crop_rho`, `crop_gap` (crop
    block; the experiment's, not a run's own crop_policy, so that every run is scored on the
    same frame pairs), and `crop_gap_s` when the crop block gives its gap in seconds
    (converted with the evaluated dataset's fps). With `dataset`, that dataset's own:
    `frames_size` and `frames_fit` (recorded in the probes) and `ceiling` for a generated
    dataset (its labels are its ground truth)."""
    crop = {**crop_defaults(), **e["crop"]}
    cfg = {
        **e.get("evaluation", {}),
        "num_frames": crop["num_frames"],
        "frame_stride": crop["stride"],
        # the embedding block's, else None: the window the embed stage recorded
        "window_stride": embedding_config(e).get("window_stride"),
        "crop_policy": crop["policy"],
        "crop_rho": crop["rho"],
        "crop_gap": crop["gap"],
        **({"crop_gap_s": crop["gap_s"]} if crop.get("gap_s") is not None else {}),
    }
    if dataset is not None:
        ds = e["datasets"][dataset]
        cfg["frames_size"] = ds["frames"]["size"]
        cfg["frames_fit"] = ds["frames"].get("fit", DEFAULT_FRAME_FIT)
        if "synthetic" in ds:
            cfg["ceiling"] = True
    return cfg


def split_seed(e: dict) -> int:
    """The seed of experiment `e`'s derived splits (read-dataset, for a layout without split
    files) and of every evaluation draw: `evaluation.split_seed`, else the evaluator's
    (EvaluateConfig's default too)."""
    return int(e.get("evaluation", {}).get("split_seed", EVALUATOR_SEED))


def crop_span(e: dict) -> int:
    """Source frames one training crop of experiment `e` covers, (num_frames - 1) x stride
    + 1: the shortest clip its pretraining can crop."""
    crop = {**crop_defaults(), **e.get("crop", {})}
    return (int(crop["num_frames"]) - 1) * int(crop["stride"]) + 1


def min_clip_frames(e: dict, dataset: str) -> int:
    """The shortest clip the experiment accepts in `dataset`'s clip list: its crop span for
    the pretraining dataset, 0 (any) for the others (they are only embedded)."""
    return crop_span(e) if dataset == e.get("pretrain_dataset") else 0


def run_seeds(e: dict, run: str) -> list[int]:
    """The seeds run `run` of experiment `e` trains with: its own `seeds`, else the
    experiment's (so that the comparisons that need power get more seeds than the rest)."""
    return [int(s) for s in e["runs"][run].get("seeds", e["seeds"])]


def uses_labels(cfg: dict) -> bool:
    """Runs that learn from the pretraining dataset's labels: the supervised upper bound and
    the oracle weightings (the positive and the anti control); on the same clips and labels."""
    return cfg.get("method") == "supervised" or cfg.get("weighting") in LABELLED_WEIGHTINGS


def check_run(cfg: dict, where: str = "") -> None:
    """Cross-key rules of a run (its resolved config, the fields of TrainConfig) that the
    schema cannot express; the error names the key, after `where`."""
    method, weighting = cfg.get("method", "byol"), cfg.get("weighting", "uniform")
    crop = {**crop_defaults(), **cfg.get("crop", {})}
    policy, rho = crop["policy"], crop["rho"]
    if weighting != "uniform" and method not in ("byol", "random_init"):  # random_init: BYOL's init
        raise ValueError(
            f"{where}weighting: {weighting!r} weights BYOL's crop pairs; method "
            f"{method!r} has no pair weights"
        )
    if policy == "near_pairs":
        if method != "byol":
            raise ValueError(
                f"{where}crop_policy: near_pairs draws pairs by BYOL's weighting; "
                f"method {method!r} has none"
            )
        if weighting == "permuted":
            raise ValueError(
                f"{where}crop_policy: near_pairs needs a weighting with a density of "
                f"pairs; 'permuted' carries no information about the pair"
            )
        if rho != 2:
            raise ValueError(
                f"{where}crop_policy: near_pairs draws one pair of crops (crop.rho 2), "
                f"got rho {rho}"
            )
    if uses_labels(cfg) and not (cfg.get("labels") and cfg.get("protocol")):
        raise ValueError(
            f"{where}labels: method {method!r} / weighting {weighting!r} learns from "
            f"labels: give `labels` and `protocol`"
        )


def run_config(exp: str, e: dict, run: str, seed: int) -> dict:
    """The resolved config of run `run`, seed `seed` of experiment `exp` (its config `e`): the
    experiment's training recipe with the run's own settings on top (the fields of
    twbyol.train.TrainConfig). The supervised upper bound and the oracle also get the
    pretraining dataset's labels and protocol, so that they learn from labels only on clips
    the probes never score. A run's `pretrain_splits` replaces its dataset's."""
    r = dict(e["runs"][run])
    r.pop("label", None)
    r.pop("seeds", None)
    where = f"config: experiments.{exp}.runs.{run}."
    seconds = [k for k in ("tau_s", "window_s") if k in r]
    if seconds:  # times in seconds: the run's tau and window both, converted per clip fps
        frames = [k for k in ("tau", "window") if k in r]
        if frames:
            raise ValueError(
                f"{where}{frames[0]}: the run gives {seconds[0]} in seconds; give its "
                f"{', '.join(frames)} in seconds too ({frames[0]}_s), not in frames"
            )
        r.update({k[:-2]: r.pop(k) for k in seconds}, time_unit="seconds")
    crop = dict(e["crop"])
    if "gap" in crop and "gap_s" in crop:
        raise ValueError(f"config: experiments.{exp}.crop: give gap (frames) or gap_s, not both")
    if "crop_policy" in r:
        crop["policy"] = r.pop("crop_policy")
    ds = e["pretrain_dataset"]
    if uses_labels(r):
        r.update(
            labels=f"results/{exp}/labels/{ds}.npz",
            protocol=f"results/{exp}/labels/{ds}.protocol.json",
        )
    if "pretrain_splits" not in r and e["datasets"][ds].get("pretrain_splits"):
        r["pretrain_splits"] = list(e["datasets"][ds]["pretrain_splits"])
    check_run({**r, "crop": crop}, where)
    return {
        **e["training"],
        **r,
        "crop": crop,
        "backbone": e["backbone"],
        "run_id": run,
        "seed": int(seed),
        "out_dir": f"results/{exp}/pretrain/{run}/seed{seed}",
        "frames_dir": f"results/{exp}/frames/{ds}",
        # the clip list, which the videos alone decide (a label edit does not rerun the
        # run); index.tsv only for a choice of splits, which the protocol decides
        "index": f"results/{exp}/frames/{ds}/"
        + ("index.tsv" if r.get("pretrain_splits") else "clips.tsv"),
    }


def check_experiment(name: str, exp: dict) -> None:
    """Every cross-key check of one experiment of the config (already valid under the
    schema, whose defaults are filled in), run by the workflow before any job: the datasets
    and runs it names exist, a `videos` dataset has its folder, the batch splits over the
    GPUs, each run resolves to a valid training config (`run_config`), and its SLURM options
    (twbyol.slurm.check_experiment). Errors are ValueErrors naming the key."""
    where = f"config: experiments.{name}"
    for ds in [exp["pretrain_dataset"], *exp["eval_datasets"]]:
        if ds not in exp["datasets"]:
            raise ValueError(f"{where}: dataset {ds!r} is used but not defined under datasets")
    for key, ds in exp["datasets"].items():
        if ds["format"] == "videos" and "path" not in ds:
            raise ValueError(
                f"{where}.datasets.{key}: format videos reads a folder of recordings: "
                "give its `path` (there is no synthetic generator of that format)"
            )
    for role, run in (exp.get("study") or {}).items():
        for r in run if isinstance(run, list) else [run]:
            if r not in exp["runs"]:
                raise ValueError(f"{where}.study.{role}: run {r!r} is not defined under runs")
    for r in (exp.get("predict") or {}).get("runs", []):
        if r not in exp["runs"]:
            raise ValueError(f"{where}.predict.runs: run {r!r} is not defined under runs")
    batch = exp["training"].get("batch_size", 64)
    gpus = max(exp["resources"].get("gpus_per_node", 1), 1) * exp["resources"].get("nodes", 1)
    if batch % gpus:
        raise ValueError(f"{where}.training.batch_size: {batch} is not divisible by {gpus} GPUs")
    for run in exp["runs"]:  # the runs' cross-key rules (check_run)
        run_config(name, exp, run, exp["seeds"][0])
    slurm.check_experiment(where, exp)


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
