"""What the workflow plans for the experiments of config/config.yaml: the paths a rule's
inputs name, the options and params it passes, and the shape of each stage's jobs (their
SLURM resources and threads).

Pure functions of the experiments (`experiments`: the config's `experiments` mapping, valid
under workflow/schemas/config.schema.yaml and twbyol.experiment.check_experiment);
workflow/rules/common.smk binds them to Snakemake's config, wildcards and profile, so that
the rules' logic is unit-tested here (tests/test_plan.py). Paths are relative to the
working folder (results/{exp}/...), as the rules write them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from twbyol import slurm
from twbyol.experiment import run_seeds
from twbyol.io import files_under
from twbyol.settings import CLIP_OPTIONS, READER_OPTIONS, VIDEO_SUFFIXES
from twbyol.tables import headline_dataset

# the roles of the study whose runs the t-SNE and retrieval figures show, in their order
FIGURE_ROLES = ("baseline", "proposed", "control")
# what the experiment record (results/{exp}/experiment.json) keeps of an experiment's config
RECORD_KEYS = (
    "description",
    "seeds",
    "pretrain_dataset",
    "eval_datasets",
    "runs",
    "study",
    "backbone",
    "crop",
    "training",
)


def experiment(experiments: Mapping[str, dict], exp: str) -> dict:
    """Experiment `exp`'s config; a ValueError naming the defined ones when there is none."""
    if exp not in experiments:
        raise ValueError(
            f"config: no experiment named {exp!r} under experiments "
            f"(defined: {', '.join(experiments)})"
        )
    return experiments[exp]


def targets(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """What `snakemake NAME` builds for experiment NAME: its report (which plans the whole
    experiment), the figures folder of its HTML report (`snakemake --report`) and its
    leaderboard submissions."""
    return [
        report_path(experiments, exp),
        f"results/{exp}/report/figures",
        *submissions(experiments, exp),
    ]


def check_names(experiments: Mapping[str, dict], rules: Iterable[str]) -> None:
    """Every experiment is a target of its name: none may be named like a rule."""
    clash = sorted(set(experiments) & set(rules))
    if clash:
        raise ValueError(
            f"config: experiment {clash[0]!r} is named like a rule of the workflow; rename it "
            f"(the rules: {', '.join(sorted(rules))})"
        )


def unknown_target(
    targets: Iterable[str], experiments: Mapping[str, dict], rules: Iterable[str]
) -> str | None:
    """The error for a command-line target that is neither a rule, nor an experiment, nor a
    path (`snakemake mylabb`), naming the defined experiments; None when every one is
    known."""
    known = set(rules) | set(experiments)
    for t in targets:
        if t not in known and "/" not in t and "." not in t:
            return (
                f"no experiment or rule named {t!r}. Experiments: {', '.join(experiments)} "
                f"(run one with `snakemake --cores N NAME`; add your own in a config file of "
                f"your own, `snakemake --cores N NAME --configfile mine.yaml`: config/README.md)"
            )
    return None


def report_path(experiments: Mapping[str, dict], exp: str) -> str:
    """The report of experiment `exp`, the target that plans its whole study."""
    experiment(experiments, exp)
    return f"results/{exp}/report.md"


def experiment_record(exp: str, e: dict) -> dict:
    """What stats, figures and report need to know of the design (results/{exp}/experiment.json):
    the experiment's name and its RECORD_KEYS."""
    return {"name": exp, **{k: e[k] for k in RECORD_KEYS if k in e}}


# ---------------------------------------------------------------- datasets


def dataset_root(experiments: Mapping[str, dict], exp: str, dataset: str) -> str:
    """The dataset's files: a real path from config (checked now, before any job: a
    FileNotFoundError naming the key), or the synthetic copy the synth rule writes."""
    ds = experiment(experiments, exp)["datasets"][dataset]
    if "path" in ds:
        root = Path(ds["path"]).expanduser()
        if not root.exists():
            where = "; docs/mabe22.md" if exp == "mabe22" else ""
            raise FileNotFoundError(
                f"config: experiments.{exp}.datasets.{dataset}.path: {root} does not exist "
                f"(download the data or fix the path{where})."
                f" Bare `snakemake` runs the MABe22 study; any other experiment runs by its "
                f"name: `snakemake --cores N NAME` (defined: {', '.join(experiments)}; "
                f"`make smoke` runs every stage on embedded synthetic data)"
            )
        return str(root)
    return f"results/{exp}/data/{dataset}/synth.json"


def dataset_dir(experiments: Mapping[str, dict], exp: str, dataset: str) -> str:
    """The folder index.tsv's relative sources are relative to (twbyol.data.index.source_path)."""
    root = dataset_root(experiments, exp, dataset)
    return os.path.dirname(root) if root.endswith("synth.json") else root


def _root_and_files(experiments, exp, dataset, suffixes) -> list[str]:
    root = dataset_root(experiments, exp, dataset)
    if experiments[exp]["datasets"][dataset]["format"] != "videos":
        return [root]
    return [root, *map(str, files_under(root, suffixes))]


def clip_inputs(experiments: Mapping[str, dict], exp: str, dataset: str) -> list[str]:
    """The clip list's inputs: the dataset's root, and for format videos every video below
    it (not the label files: editing one must not rerun frame extraction or pretraining)."""
    return _root_and_files(experiments, exp, dataset, VIDEO_SUFFIXES)


def dataset_inputs(experiments: Mapping[str, dict], exp: str, dataset: str) -> list[str]:
    """read_dataset's inputs: the dataset's root, and for format videos every video and
    CSV/TSV below it (hidden ones skipped), so that editing a label file or adding a video
    in a subfolder reruns it (Snakemake reads only a folder's own mtime)."""
    return _root_and_files(experiments, exp, dataset, VIDEO_SUFFIXES + (".csv", ".tsv"))


def reader_options(ds: dict) -> dict:
    """The reader options of a dataset's config (twbyol.settings.READER_OPTIONS), those of
    every format: read-dataset refuses one that does not apply to the dataset's, naming it."""
    return {k: ds[k] for k in dict.fromkeys(sum(READER_OPTIONS.values(), ())) if k in ds}


def clip_options(ds: dict) -> dict:
    """Those of them that decide the clip list (twbyol.settings.CLIP_OPTIONS): mabe22's
    files and videos; not `behaviours`, which only the labels depend on."""
    return {k: ds[k] for k in CLIP_OPTIONS[ds["format"]] if k in ds}


def frame_shards(experiments: Mapping[str, dict], exp: str, dataset: str) -> list[str]:
    """The done-markers of the dataset's frame extraction shards."""
    n = experiment(experiments, exp)["datasets"][dataset]["frames"]["n_shards"]
    return [f"results/{exp}/frames/{dataset}/shard{k}.done" for k in range(n)]


# ---------------------------------------------------------------- runs and their results


def study_pair(e: dict) -> list[str]:
    """The study's proposed and baseline run, the pair criterion 4 compares (none without a
    study)."""
    return [e["study"][k] for k in ("proposed", "baseline")] if e.get("study") else []


def step_benchmarks(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """Criterion 4's step benchmark, when the experiment has a study (its two runs)."""
    return [f"results/{exp}/stats/step_benchmark.json"] if study_pair(experiments[exp]) else []


def run_seed_paths(experiments: Mapping[str, dict], exp: str, pattern: str) -> list[str]:
    """`pattern` ({exp}, {run}, {seed}) for every run of the experiment and each of its seeds."""
    e = experiment(experiments, exp)
    return [pattern.format(exp=exp, run=r, seed=s) for r in e["runs"] for s in run_seeds(e, r)]


def _evaluated(e: dict) -> Iterator[tuple[str, int, str]]:
    """(run, seed, dataset) of every run at each of its seeds on every evaluated dataset."""
    return ((r, s, d) for r in e["runs"] for s in run_seeds(e, r) for d in e["eval_datasets"])


def evaluations(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """The evaluation of every run and seed on every evaluated dataset."""
    e = experiment(experiments, exp)
    return [f"results/{exp}/evaluate/{r}/seed{s}/{d}.json" for r, s, d in _evaluated(e)]


def submissions(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """The leaderboard submission files of every run and seed on the MABe22-format datasets."""
    e = experiment(experiments, exp)
    return [
        f"results/{exp}/submission/{r}/seed{s}/{d}.npy"
        for r, s, d in _evaluated(e)
        if e["datasets"][d]["format"] == "mabe22"
    ]


def predict_runs(e: dict) -> list[tuple[str, int]]:
    """(run, seed) of each run whose predictions are made: the experiment's predict.runs
    (default: the study's proposed run; without a study, the first run that trains), each at
    its first seed."""
    runs = (e.get("predict") or {}).get("runs") or (
        [e["study"]["proposed"]]
        if e.get("study")
        else [next(r for r, c in e["runs"].items() if c["method"] != "random_init")]
    )
    return [(r, run_seeds(e, r)[0]) for r in runs]


def predictions(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """The prediction folders of predict_runs on every evaluated dataset."""
    e = experiment(experiments, exp)
    return [
        f"results/{exp}/predict/{r}/seed{s}/{d}"
        for r, s in predict_runs(e)
        for d in e["eval_datasets"]
    ]


def ethogram_predictions(experiments: Mapping[str, dict], exp: str, dataset: str) -> str:
    """The folder the dataset's ethogram shows: the first predicted run's."""
    r, s = predict_runs(experiment(experiments, exp))[0]
    return f"results/{exp}/predict/{r}/seed{s}/{dataset}"


def ethograms(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """The ethograms' manifests the report reads, one per evaluated dataset."""
    e = experiment(experiments, exp)
    return [f"results/{exp}/images/ethogram_{d}.json" for d in e["eval_datasets"]]


def time_budgets(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """The export stage's time budget across the videos of each prediction folder."""
    e = experiment(experiments, exp)
    return [
        f"results/{exp}/export/{r}/seed{s}/{d}.time_budget.csv"
        for r, s in predict_runs(e)
        for d in e["eval_datasets"]
    ]


def protocols(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """The evaluation protocols of the evaluated datasets."""
    e = experiment(experiments, exp)
    return [f"results/{exp}/labels/{d}.protocol.json" for d in e["eval_datasets"]]


def figure_dataset(e: dict) -> str | None:
    """The dataset of the t-SNE and retrieval figures: the pretraining dataset when it is
    evaluated (it has labels), else the first evaluated one (twbyol.tables.headline_dataset)."""
    return headline_dataset(e)


def figure_embeddings(experiments: Mapping[str, dict], exp: str) -> list[str]:
    """The embeddings the t-SNE and retrieval figures show: the first seed of the study's
    baseline, proposed and control run (those it names; without a study, the first three
    runs), on figure_dataset."""
    e = experiment(experiments, exp)
    study = e.get("study")
    runs = [study[k] for k in FIGURE_ROLES if study.get(k)] if study else list(e["runs"])[:3]
    return [
        f"results/{exp}/embed/{r}/seed{run_seeds(e, r)[0]}/{figure_dataset(e)}.npy" for r in runs
    ]


# ---------------------------------------------------------------- params


def as_json(obj) -> str:
    """`obj` as compact JSON with sorted keys: a param's value on a shell line."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def canonical(obj):
    """`obj` with every mapping's keys in sorted order: a dict param's recorded value (its
    repr) then does not depend on the order the config file lists its keys in."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


# ---------------------------------------------------------------- the shape of the jobs


def stage_entry(e: dict, stage: str) -> dict:
    """Experiment `e`'s `stage_resources` entry of `stage` ({} when it gives none)."""
    return e.get("stage_resources", {}).get(stage, {})


def stage_threads(e: dict, stage: str, threads: int = 1) -> int:
    """threads: of a stage's job: the experiment's cpus_per_task for the stage (which the
    SLURM plugin passes as --cpus-per-task), else `threads`."""
    return stage_entry(e, stage).get("cpus_per_task", threads)


# a profile's default-resources, each as a function of the job (Snakemake evaluates them so)
Default = Callable[..., object]  # (wildcards, input, threads, attempt) -> value


def stage_resources(
    experiments: Mapping[str, dict], stage: str, defaults: Mapping[str, Default]
) -> dict[str, Callable]:
    """resources: of a stage's rule, in the SLURM plugin's names (twbyol.slurm.plugin_resources):
    {name: function of (wildcards, input, threads, attempt)}, one per name any experiment's
    entry for the stage gives.

    Resources, not params: moving a job to another partition or size reruns nothing. A
    rule's resources replace its default-resources (`defaults`, the profile's) by name, and
    every experiment's jobs of a rule share the names; so a name that only some experiments
    set takes, for the others, the value default-resources would have given, or none at all
    (0 for mem_mb: the plugin then passes no --mem). `gpu` is no limit on local runs: only
    `--resources gpu=N` would make it one.
    """
    names = {n for e in experiments.values() for n in slurm.plugin_resources(stage_entry(e, stage))}

    def value(name):
        def resource(wildcards, input, threads, attempt):
            given = slurm.plugin_resources(stage_entry(experiments[wildcards.exp], stage))
            if name in given:
                return given[name]
            if name in defaults:
                return defaults[name](wildcards, input, threads, attempt)
            return 0 if name == "mem_mb" else None

        return resource

    return {name: value(name) for name in sorted(names)}
