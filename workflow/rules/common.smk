# Config validation and the small functions the rules share.
import json
import os
from pathlib import Path

from snakemake.utils import validate

from twbyol import deps
from twbyol.io import files_under
from twbyol.tables import headline_dataset
from twbyol.settings import CLIP_OPTIONS, DEFAULT_FRAME_FIT, READER_OPTIONS, VIDEO_SUFFIXES
from twbyol.experiment import check_experiment, embedding_config, evaluation_config, min_clip_frames
from twbyol.experiment import run_config as resolve_run
from twbyol.experiment import run_seeds


validate(config, schema="../schemas/config.schema.yaml")

EXPERIMENTS = config["experiments"]
LAUNCHER = config.get("launcher", "local")
# the package's modules as code inputs, relative to the working folder: a study moved with
# its checkout keeps the same input paths, so it plans nothing (absolute paths would change)
PKG = Path(os.path.relpath(Path(workflow.basedir) / "twbyol"))
ENV = "../../envs/twbyol.yaml"


for _name, _exp in EXPERIMENTS.items():  # the cross-key checks the schema cannot express
    check_experiment(_name, _exp)


def stage_code(stage, methods=()):
    """The package modules `twbyol <stage>` runs, as a rule's code inputs: derived from the
    imports (twbyol.deps), so editing any of them reruns the job and what follows, and no
    list is kept by hand. `methods`: the methods whose modules the job builds."""
    return [str(PKG.parent / f) for f in deps.stage_modules(stage, tuple(methods))]


def pretrain_code(w):
    """A pretraining job's modules: the launcher and training loop with its run's method
    (editing contrastive.py reruns MoCo/SimCLR/time contrast only)."""
    method = EXPERIMENTS[w.exp]["runs"][w.run]["method"]
    return [str(PKG.parent / f) for f in deps.pretrain_modules(method)]


def exp_cfg(wildcards):
    return EXPERIMENTS[wildcards.exp]


def dataset_cfg(wildcards):
    return EXPERIMENTS[wildcards.exp]["datasets"][wildcards.dataset]


def embedding_cfg(wildcards):
    return embedding_config(exp_cfg(wildcards))


def evaluation_cfg_of(exp):
    return evaluation_config(EXPERIMENTS[exp])


def evaluation_cfg(wildcards):
    return evaluation_cfg_of(wildcards.exp)


def dataset_root(wildcards):
    """The dataset's files: a real path from config (checked now, before any job), or the
    synthetic copy the synth rule writes."""
    ds = dataset_cfg(wildcards)
    if "path" in ds:
        root = Path(ds["path"]).expanduser()
        if not root.exists():
            raise FileNotFoundError(
                f"config: experiments.{wildcards.exp}.datasets.{wildcards.dataset}.path: "
                f"{root} does not exist (download the data or fix the path)")
        return str(root)
    return f"results/{wildcards.exp}/data/{wildcards.dataset}/synth.json"


def clip_inputs(wildcards):
    """The clip list's inputs: the dataset's root, and for format videos every video below
    it (not the label files: editing one must not rerun frame extraction or pretraining)."""
    root = dataset_root(wildcards)
    if dataset_cfg(wildcards)["format"] != "videos":
        return [root]
    return [root, *map(str, files_under(root, VIDEO_SUFFIXES))]


def dataset_inputs(wildcards):
    """read_dataset's inputs: the dataset's root, and for format videos every video and
    CSV/TSV below it (hidden ones skipped), so that editing a label file or adding a video
    in a subfolder reruns it (Snakemake reads only a folder's own mtime)."""
    root = dataset_root(wildcards)
    if dataset_cfg(wildcards)["format"] != "videos":
        return [root]
    return [root, *map(str, files_under(root, VIDEO_SUFFIXES + (".csv", ".tsv")))]


def dataset_dir(wildcards):
    """The folder index.tsv's relative sources are relative to (twbyol.data.index.source_path)."""
    root = dataset_root(wildcards)
    return os.path.dirname(root) if root.endswith("synth.json") else root


def reader_options(ds):
    """The reader options of a dataset's config (twbyol.settings.READER_OPTIONS), those of
    every format: read-dataset refuses one that does not apply to the dataset's, naming it."""
    return {k: ds[k] for k in dict.fromkeys(sum(READER_OPTIONS.values(), ())) if k in ds}


def clip_options(ds):
    """Those of them that decide the clip list (twbyol.settings.CLIP_OPTIONS): mabe22's
    files and videos; not `behaviours`, which only the labels depend on."""
    return {k: ds[k] for k in CLIP_OPTIONS[ds["format"]] if k in ds}


def frame_shards(exp, dataset):
    n = EXPERIMENTS[exp]["datasets"][dataset]["frames"]["n_shards"]
    return [f"results/{exp}/frames/{dataset}/shard{k}.done" for k in range(n)]


def run_config(exp, run, seed):
    """The resolved config of one pretraining run (twbyol.experiment.run_config). Passed as
    params, so changing any of it reruns this run."""
    return resolve_run(exp, EXPERIMENTS[exp], run, seed)


def study_pair(w):
    """The study's proposed and baseline run, the pair criterion 4 compares."""
    return [exp_cfg(w)["study"][k] for k in ("proposed", "baseline")]


def run_seed_paths(exp, pattern):
    e = EXPERIMENTS[exp]
    return [pattern.format(exp=exp, run=r, seed=s) for r in e["runs"] for s in run_seeds(e, r)]


def evaluations(exp):
    e = EXPERIMENTS[exp]
    return [f"results/{exp}/evaluate/{r}/seed{s}/{d}.json"
            for r in e["runs"] for s in run_seeds(e, r) for d in e["eval_datasets"]]


def submissions(exp):
    """The leaderboard submission files of every run and seed on the MABe22-format datasets."""
    e = EXPERIMENTS[exp]
    return [f"results/{exp}/submission/{r}/seed{s}/{d}.npy"
            for r in e["runs"] for s in run_seeds(e, r) for d in e["eval_datasets"]
            if e["datasets"][d]["format"] == "mabe22"]


def predict_runs(exp):
    """(run, seed) of each run whose predictions are made: the experiment's predict.runs
    (default: the study's proposed run), each at its first seed."""
    e = EXPERIMENTS[exp]
    runs = (e.get("predict") or {}).get("runs") or [e["study"]["proposed"]]
    return [(r, run_seeds(e, r)[0]) for r in runs]


def predictions(exp):
    e = EXPERIMENTS[exp]
    return [f"results/{exp}/predict/{r}/seed{s}/{d}"
            for r, s in predict_runs(exp) for d in e["eval_datasets"]]


def ethogram_predictions(exp, dataset):
    """The folder the dataset's ethogram shows: the first predicted run's."""
    r, s = predict_runs(exp)[0]
    return f"results/{exp}/predict/{r}/seed{s}/{dataset}"


def figure_dataset(exp):
    """The dataset of the t-SNE and retrieval figures: the pretraining dataset when it is
    evaluated (it has labels), else the first evaluated one."""
    return headline_dataset(EXPERIMENTS[exp])


def figure_embeddings(exp):
    e = EXPERIMENTS[exp]
    runs = [e["study"][k] for k in ("baseline", "proposed", "control") if e["study"].get(k)]
    return [f"results/{exp}/embed/{r}/seed{run_seeds(e, r)[0]}/{figure_dataset(exp)}.npy" for r in runs]


def report_for(exp):
    if exp not in EXPERIMENTS:
        raise ValueError(f"config: no experiment named {exp!r} under experiments "
                         f"(defined: {', '.join(EXPERIMENTS)})")
    return f"results/{exp}/report.md"


def as_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def canonical(obj):
    """`obj` with every mapping's keys in sorted order: a dict param's recorded value (its
    repr) then does not depend on the order the config file lists its keys in."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


from twbyol import slurm

# the shape of the stages' jobs: the experiments' stage_resources
from snakemake.resources import Resources


def stage_entry(exp, stage):
    return EXPERIMENTS[exp].get("stage_resources", {}).get(stage, {})


def stage_threads(stage, threads=1):
    """threads: of a stage's rule: the experiment's cpus_per_task for the stage (which the
    SLURM plugin passes as --cpus-per-task), else `threads`."""
    return lambda w: stage_entry(w.exp, stage).get("cpus_per_task", threads)


def stage_resources(stage):
    """resources: of a stage's rule, in the SLURM plugin's names (twbyol.slurm.plugin_resources).

    Resources, not params: moving a job to another partition or size reruns nothing. A
    rule's resources replace its default-resources by name, and every experiment's jobs of
    a rule share the names; so a name that only some experiments set takes, for the others,
    the value default-resources (the profile's) would have given, or none at all (0 for
    mem_mb: the plugin then passes no --mem). `gpu` is no limit on local runs: only
    `--resources gpu=N` would make it one.
    """
    names = {n for e in EXPERIMENTS for n in slurm.plugin_resources(stage_entry(e, stage))}
    defaults = Resources.from_mapping(workflow.resource_settings.default_resources or {})

    def value(name):
        def resource(wildcards, input, threads, attempt):
            given = slurm.plugin_resources(stage_entry(wildcards.exp, stage))
            if name in given:
                return given[name]
            if name in defaults:
                return defaults[name].evaluate(wildcards, input=input, threads=threads,
                                               attempt=attempt).value
            return 0 if name == "mem_mb" else None

        return resource

    return {name: value(name) for name in sorted(names)}
