"""A first experiment for a lab's folder of videos (the `init` stage).

    twbyol init --videos /data/cage_videos --name mylab
    snakemake --cores 4 mylab --configfile mylab.yaml

Reads the folder as the workflow will (format `videos`: every video below it, per-frame
label CSVs beside videos or BORIS exports in it; docs/own_videos.md), so a bad file is named
now, not after hours of frame extraction, and writes `{name}.yaml`: one experiment, valid
under the workflow's schema as written, with

- a baseline (uniform rho-BYOL), TW-BYOL with tau = 1 s (in seconds: right at every camera
  rate in the folder) and the untrained control, 3 seeds;
- sizes for the machine it runs on: a CPU machine trains the small backbone at 64 px, 400
  steps a run (about 10 min a run on 2 cores); a GPU machine the same backbone wider at
  112 px, 2,000 steps;
- window centres every ~133 ms at the folder's median frame rate;
- no `study:` block: the report shows every run's per-behaviour scores, ethograms and
  predictions; the study's pre-registered criteria (docs/method.md) need a `study:` block
  naming the baseline and the proposed run.

Every value is a plain setting of config/config.yaml's experiments, commented; edit them.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from pathlib import Path

import yaml

from twbyol import io
from twbyol.data import videos
from twbyol.experiment import check_experiment

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # an experiment name is a Snakemake target


def machine() -> dict:
    """What this machine offers a run: GPUs (torch, deferred: only asked here) and cores."""
    import torch  # deferred: `twbyol init --help` starts without it

    return {"gpus": torch.cuda.device_count(), "cpus": len(os.sched_getaffinity(0))}


def sizes(gpus: int, cpus: int) -> dict:
    """Frame size, backbone and steps for a first run on this machine (the comments of the
    written file say why)."""
    if gpus:
        return {
            "frame": 128,
            "crop": 112,
            "backbone": "{name: tiny, width: 64, feature_dim: 256}",
            "epochs": 50,
            "samples": 2560,
            "batch": 64,
            "gpus": gpus,
            "cpus": min(cpus, 8),
            "why": "a GPU machine: 2,000 steps of 64 at 112 px",
        }
    return {
        "frame": 64,
        "crop": 56,
        "backbone": "{name: tiny, width: 32, feature_dim: 128}",
        "epochs": 20,
        "samples": 640,
        "batch": 32,
        "gpus": 1,  # on SLURM: one GPU a run; on this machine the runs train on its CPU
        "cpus": 1,
        "why": f"a CPU machine ({cpus} cores): 400 steps of 32 at 56 px, ~10 min a run on 2",
    }


def experiment_yaml(name: str, folder: Path, data: videos.Dataset, m: dict) -> str:
    """The experiment's YAML text, commented."""
    clips = data.clips
    fps = statistics.median([*map(float, clips.fps), *(v.fps for v in data.video_only)])
    stride = max(1, round(fps * 0.133))  # window centres ~133 ms apart, as at 30 fps / 4
    s = sizes(m["gpus"], m["cpus"])
    behaviours = ", ".join(clips.tasks) if len(clips.clip_ids) else "none"
    shards = max(1, min(len(clips.clip_ids) + len(data.video_only), 8))  # parallel decoding
    return f"""\
# twbyol experiment `{name}`, written by `twbyol init` for {folder}
# ({len(clips.clip_ids)} labelled videos, {len(data.video_only)} unlabelled;
# behaviours: {behaviours}).
# Run it: snakemake --cores {max(m["cpus"], 1)} {name} --configfile {name}.yaml
# Every key: config/README.md and workflow/schemas/config.schema.yaml.
experiments:
  {name}:
    description: >-
      {folder.name}: {len(clips.clip_ids)} labelled and {len(data.video_only)} unlabelled
      videos; uniform rho-BYOL vs TW-BYOL (tau = 1 s) vs an untrained control.
    datasets:
      {name}:
        format: videos
        path: {folder}
        # letterbox: whole frames at any aspect ratio; {s["frame"]} px for {s["why"]}
        frames: {{size: {s["frame"]}, n_shards: {shards}, fit: letterbox}}
    pretrain_dataset: {name}
    eval_datasets: [{name}]
    seeds: [0, 1, 2]              # 3 seeds: the spread of a run is part of its result
    backbone: {s["backbone"]}
    # 2 crops of 8 frames 2 apart (~0.5 s at 30 fps), from anywhere in a video (gap 60)
    crop:
      {{rho: 2, num_frames: 8, stride: 2, crop_size: {s["crop"]}, policy: uniform, gap: 60,
       min_scale: 0.3}}
    training:
      epochs: {s["epochs"]}
      samples_per_epoch: {s["samples"]}
      batch_size: {s["batch"]}
      optimizer: adamw
      lr: 0.016
      weight_decay: 0.05
      warmup_epochs: 1
      ema_base: 0.99
      precision: bf16
      num_workers: 0
      checkpoint_every: 100
      log_every: 50               # a progress line every 50 steps (and at least once a minute)
      proj_hidden: 256
      proj_dim: 64
      pred_hidden: 256
    # on a SLURM cluster (--profile profiles/slurm): the shape of one run's job
    resources:
      {{nodes: 1, gpus_per_node: {s["gpus"]}, cpus_per_task: {s["cpus"]}, mem_gb: 8,
       timeout_min: 120, local_tasks: 1}}
    embedding: {{window_stride: {stride}, batch_size: 64, max_dim: 128}}  # ~133 ms at {fps:g} fps
    runs:
      byol_uniform: {{method: byol, weighting: uniform, label: "rho-BYOL (uniform)"}}
      twbyol_1s: {{method: byol, weighting: exponential, tau_s: 1.0, label: "TW-BYOL (tau=1 s)"}}
      random_init: {{method: random_init, label: "random init (control)"}}
    predict: {{runs: [twbyol_1s]}}   # whose calls, bouts and ethograms the report shows
"""


def write(folder: Path, name: str, out: Path, m: dict | None = None) -> dict:
    """Read `folder`, write the experiment to `out` (atomically; an existing file is kept:
    FileExistsError); returns the experiment. Errors name the folder, the file or the name."""
    if not NAME.match(name):
        raise ValueError(
            f"--name {name!r}: an experiment name starts with a letter and holds letters, "
            "digits and _ only (it is a Snakemake target)"
        )
    if out.exists():
        raise FileExistsError(f"{out}: exists; remove it or give --out")
    folder = folder.expanduser().resolve()
    data = videos.read(folder, log=lambda s: print(s, file=sys.stderr))
    if not len(data.clips.clip_ids):
        raise ValueError(
            f"{folder}: no labelled video. The probes and predictions learn from labels: put a "
            "per-frame label CSV beside some videos, or a BORIS export in the folder "
            "(docs/own_videos.md), then run twbyol init again"
        )
    text = experiment_yaml(name, folder, data, m or machine())
    exp = yaml.safe_load(text)["experiments"][name]
    validate(name, exp)
    io.write_text(out, text)
    return exp


def validate(name: str, exp: dict) -> None:
    """The workflow's checks of one experiment: the schema (in a checkout, where the workflow
    is), then the cross-key checks."""
    if SCHEMA.exists():
        import jsonschema  # deferred: only where the schema is

        schema = yaml.safe_load(SCHEMA.read_text())
        jsonschema.validate({"experiments": {name: exp}}, schema)
    check_experiment(name, exp)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--videos", required=True, type=Path, help="the folder of videos")
    ap.add_argument(
        "--name",
        help="the experiment's name, the target you run (default: the folder's name, made "
        "a valid name)",
    )
    ap.add_argument("--out", type=Path, help="the file to write (default: NAME.yaml, here)")
    a = ap.parse_args(argv)
    name = a.name or re.sub(r"\W+", "_", a.videos.resolve().name).strip("_") or "lab"
    if name[0].isdigit():
        name = f"lab_{name}"
    out = a.out or Path(f"{name}.yaml")
    try:
        write(a.videos, name, out)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"twbyol init: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: experiment {name!r}. Run it with")
    print(f"  snakemake --cores {len(os.sched_getaffinity(0))} {name} --configfile {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
