"""`twbyol <stage> ...` — one subcommand per pipeline stage (also `python -m twbyol`).

Each stage module defines `main(argv) -> int` with its own argparse parser; this file only
dispatches, importing the chosen module alone so that `twbyol stats` never pays for torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

# stage name -> (module, one-line purpose)
STAGES: dict[str, tuple[str, str]] = {
    "init": ("twbyol.init", "write a first experiment for a folder of videos (NAME.yaml)"),
    "synth": (
        "twbyol.synthetic.generate",
        "generate a synthetic dataset in the MABe22 or RatSI on-disk format",
    ),
    "read-dataset": (
        "twbyol.data.index",
        "read a dataset into its clip list, or into index.tsv, labels .npz and protocol",
    ),
    "extract-frames": (
        "twbyol.data.frames",
        "decode one shard of videos into uint8 memmap .npy per clip",
    ),
    "pretrain": ("twbyol.launch", "submit one pretraining run (submitit: slurm / local / debug)"),
    "train": ("twbyol.train", "the training loop itself (what the submitted job runs)"),
    "embed": ("twbyol.embed", "per-frame embeddings of a dataset from a pretrained backbone"),
    "evaluate": (
        "twbyol.evaluate",
        "the MABe22 evaluator's probes, kNN, temporal locality of one embedding",
    ),
    "predict": (
        "twbyol.predict",
        "behaviour calls and scores per frame of every video (a dataset's or a folder's)",
    ),
    "export": (
        "twbyol.exports",
        "bouts, time budgets, BORIS events and NWB files of a predictions folder",
    ),
    "ethogram": ("twbyol.ethogram", "ethogram figure: predicted and labelled behaviour over time"),
    "submission": ("twbyol.submission", "an embedding as the MABe22 evaluator's submission file"),
    "record-experiment": (
        "twbyol.experiment",
        "write results/{exp}/experiment.json, the design record",
    ),
    "step-benchmark": (
        "twbyol.benchmark",
        "the proposed and baseline runs' training steps timed side by side",
    ),
    "stats": ("twbyol.stats", "paired t-tests across seeds and the study's pass criteria"),
    "figures": ("twbyol.figures", "PDF/PNG figures of the study"),
    "report": ("twbyol.report", "the study's markdown report"),
}


def _usage() -> str:
    width = max(map(len, STAGES))
    lines = [
        "usage: twbyol <stage> [options]   (twbyol <stage> --help for a stage's options)",
        "       twbyol --version",
        "",
        "stages:",
    ]
    lines += [f"  {name:<{width}}  {purpose}" for name, (_, purpose) in STAGES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        print(f"twbyol {importlib.metadata.version('twbyol')}")
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"twbyol: unknown stage {stage!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(STAGES[stage][0])
    return int(module.main(rest, prog=f"twbyol {stage}") or 0)


if __name__ == "__main__":
    sys.exit(main())
