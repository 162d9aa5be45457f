"""The workflow itself: config validation, lint, and the whole smoke study under `--cores`.

The end-to-end run works in a copy of the workflow files (Snakefile, workflow/, config/,
twbyol/ sources for invalidation) in a temp folder, so touching code there to test
invalidation leaves the checkout alone; the `twbyol` command is the installed package.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.test_launch import spans as job_spans
from twbyol.report import verdict_sentence
from twbyol.tables import Table

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "config", "twbyol", "envs", "profiles"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def env_with_venv() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


def snakemake(wd: Path, *args, check=True, timeout=1800, env=None) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=wd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or env_with_venv(),
    )
    if check and p.returncode:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({p.returncode}):\n"
            f"{p.stdout[-4000:]}\n{p.stderr[-6000:]}"
        )
    return p


def planned(wd: Path, *targets: str, extra=()) -> dict[str, int]:
    """Jobs a dry run would run, by rule ({} when nothing is to be done)."""
    p = snakemake(wd, *targets, "-n", "--cores", "1", *extra)
    out = p.stdout + p.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def write_override(wd: Path, override: dict) -> str:
    path = wd / "override.yaml"
    path.write_text(yaml.safe_dump(override))
    return str(path)


# ---------------------------------------------------------------- static checks


def test_lint_reports_nothing():
    p = snakemake(REPO, "--lint", check=False)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "Congratulations" in out, out[-3000:]


def test_ruff_lint_and_format_report_nothing():
    """The lint set of pyproject.toml and ruff's format (.pre-commit-config.yaml runs both)."""
    for args in (["check"], ["format", "--check"]):
        p = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "twbyol", "tests", "benchmarks"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0, f"ruff {' '.join(args)}:\n{p.stdout[-3000:]}{p.stderr[-1000:]}"


@pytest.mark.parametrize(
    "override, message",
    [
        ({"runs": {"bad": {"method": "byol", "weighting": "exponential", "tau": -5}}}, "tau"),
        ({"runs": {"bad": {"method": "swav"}}}, "method"),
        ({"runs": {"a/b": {"method": "byol"}}}, "a/b"),
        ({"crop": {"policy": "random"}}, "policy"),
        ({"study": {"baseline": "nope", "proposed": "twbyol_tau30"}}, "nope"),
        ({"eval_datasets": ["mice", "horses"]}, "horses"),
        ({"datasets": {"mice": {"missing_videos": "maybe"}}}, "maybe"),
        ({"datasets": {"mice": {"pretrain_splits": ["Holdout"]}}}, "Holdout"),
        ({"datasets": {"mice": {"files": {"lables": "x.npy"}}}}, "lables"),
        ({"stage_resources": {"pretrain": {"gpus": 1}}}, "pretrain"),
        ({"stage_resources": {"embed": {"gpus": 1, "mem": 4}}}, "mem"),
        (
            {"stage_resources": {"embed": {"gpus": 0, "gpu_type": "a100"}}},
            "stage_resources.embed.gpu_type",
        ),
        ({"resources": {"setup": "module load cuda"}}, "setup"),
        ({"resources": {"sbatch_extra": {"mem": "10G"}}}, "resources.sbatch_extra.mem"),
        ({"datasets": {"mice": {"format": "videos"}}}, "datasets.mice: format videos"),
        ({"datasets": {"mice": {"frames": {"fit": "stretch"}}}}, "stretch"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, override, message):
    wd = copy_workflow(tmp_path)
    cfg = write_override(wd, {"experiments": {"smoke": override}})
    p = snakemake(
        wd, "smoke", "-n", "--cores", "1", "--configfile", "config/config.yaml", cfg, check=False
    )
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert message in out, out[-3000:]
    assert not (wd / "results").exists()


def test_missing_real_data_path_fails_at_once_naming_it(tmp_path):
    wd = copy_workflow(tmp_path)
    cfg = write_override(
        wd,
        {
            "experiments": {
                "smoke": {
                    "datasets": {
                        "mice": {
                            "format": "mabe22",
                            "path": "/nonexistent/mabe22",
                            "frames": {"size": 48, "n_shards": 2},
                        }
                    }
                }
            }
        },
    )
    # a dataset with both `path` and `synthetic` is refused by the schema; drop synthetic
    data = yaml.safe_load((wd / "config/config.yaml").read_text())
    del data["experiments"]["smoke"]["datasets"]["mice"]["synthetic"]
    (wd / "config/config.yaml").write_text(yaml.safe_dump(data))
    p = snakemake(
        wd, "smoke", "-n", "--cores", "1", "--configfile", "config/config.yaml", cfg, check=False
    )
    assert p.returncode != 0 and "/nonexistent/mabe22" in p.stdout + p.stderr


def init_lab(tmp_path: Path, n: int = 40) -> tuple[Path, Path]:
    """A workflow copy in tmp_path/wd and `twbyol init --name mylab` run (as a user runs it)
    on a folder of 3 videos of `n` frames, 2 labelled (tests/test_init.py); returns the copy
    and the written mylab.yaml."""
    from tests.test_init import _folder

    (tmp_path / "wd").mkdir()
    wd = copy_workflow(tmp_path / "wd")
    folder = _folder(tmp_path, n=n)
    init = subprocess.run(
        [sys.executable, "-m", "twbyol", "init", "--videos", str(folder), "--name", "mylab"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env_with_venv(),
    )
    assert init.returncode == 0, init.stderr
    return wd, tmp_path / "mylab.yaml"


def test_a_labs_own_experiment_runs_by_name_from_its_own_config_file(tmp_path):
    """The newcomer's path: `twbyol init` on a folder, then `snakemake NAME --configfile
    NAME.yaml` plans the whole experiment (no study block: no step benchmark); a mistyped
    name fails listing the experiments; bare `snakemake` without the MABe22 data says how to
    run another one."""
    wd, config = init_lab(tmp_path)
    mine = str(config)
    jobs = planned(wd, "mylab", extra=("--configfile", mine))
    assert jobs["mylab"] == 1 and jobs["report"] == 1 and jobs["pretrain"] == 9, jobs
    assert "step_benchmark" not in jobs and jobs["predict"] == 1
    p = snakemake(wd, "mylabb", "-n", "--cores", "1", "--configfile", mine, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "no experiment or rule named 'mylabb'" in out, out[-2000:]
    assert "smoke" in out and "mylab" in out
    p = snakemake(wd, "-n", "--cores", "1", check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "Bare `snakemake` runs the MABe22 study" in out, out[-2000:]
    assert not (wd / "results").exists()


@pytest.mark.slow
def test_a_labs_experiment_without_a_study_runs_to_a_report_of_its_runs(tmp_path):
    """`twbyol init` on a folder of 3 videos of 200 frames (2 labelled), shrunk to one seed
    and 4 steps a run, run by name: every stage runs without a study block; the report shows
    the runs' per-behaviour scores and time budgets, and no criteria; every video is
    predicted and exported."""
    wd, mine = init_lab(tmp_path, n=200)
    cfg = yaml.safe_load(mine.read_text())
    e = cfg["experiments"]["mylab"]
    e["seeds"] = [0]
    e["training"].update(epochs=2, samples_per_epoch=64, checkpoint_every=0)
    mine.write_text(yaml.safe_dump(cfg))
    snakemake(wd, "--cores", "2", "mylab", "--configfile", str(mine))
    res = wd / "results" / "mylab"
    report = (res / "report.md").read_text()
    assert "## Verdict" not in report and "## Pass criteria" not in report
    assert "Per-behaviour scores" in report and "groom" in report and "rear" in report
    assert not (res / "stats" / "step_benchmark.json").exists()
    pred = res / "predict" / "twbyol_1s" / "seed0" / "mylab"
    assert len(list(pred.glob("*.csv"))) == 3  # the unlabelled video too
    export = res / "export" / "twbyol_1s" / "seed0" / "mylab"
    assert len(list(export.glob("*.bouts.csv"))) == 3
    assert (res / "report" / "study.html").exists()


# ---------------------------------------------------------------- end to end


def outputs_with_mtimes(res: Path) -> dict[str, int]:
    return {
        str(p.relative_to(res)): p.stat().st_mtime_ns
        for p in res.rglob("*")
        if p.is_file() and "/logs/" not in f"/{p.relative_to(res)}" and "benchmarks" not in p.parts
    }


def training_now(res: Path) -> list[Path]:
    """Run folders of local jobs submitted but not finished (job.json, no model.pt)."""
    return [
        p.parent
        for p in res.glob("pretrain/*/seed*/job.json")
        if not (p.parent / "model.pt").exists()
    ]


def run_smoke_study(tmp_path_factory):
    """conftest.py's session fixture `smoke_run` (this file's tests and test_report_html.py
    share it): the smoke study, Snakemake killed (SIGKILL to its process alone, as `kill -9` does)
    once two pretraining runs have finished and another trains, then rerun to the end: the
    reliability drill and the end-to-end run in one. The killed Snakemake's jobs live on
    (their launchers and submitit's local jobs); the rerun must not train their runs a second
    time beside them (test_no_run_trains_twice_at_once)."""
    wd = copy_workflow(tmp_path_factory.mktemp("smoke"))
    res = wd / "results" / "smoke"
    proc = subprocess.Popen(
        [*SNAKEMAKE, "--cores", "2", "smoke"],
        cwd=wd,
        env=env_with_venv(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 900
    # a pretraining job counts as finished once Snakemake has written its benchmark record
    while len(list(res.glob("benchmarks/pretrain/*/seed*.tsv"))) < 2 or not training_now(res):
        assert proc.poll() is None, "smoke run ended before it could be killed"
        assert time.time() < deadline, "no pretraining finished in 15 minutes"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    orphans = training_now(res)
    before = outputs_with_mtimes(res)
    done = {p.parent.name + "/" + p.stem for p in res.glob("benchmarks/pretrain/*/seed*.tsv")}
    before = {
        k: v
        for k, v in before.items()
        if not k.startswith("pretrain/") or "/".join(k.split("/")[1:3]) in done
    }
    snakemake(wd, "--unlock")  # a killed snakemake leaves its lock behind (docs/cluster.md)
    p = snakemake(wd, "--cores", "2", "smoke")
    return wd, p, before, orphans


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_finished_work(smoke_run):
    wd, _, before, _ = smoke_run
    after = outputs_with_mtimes(wd / "results" / "smoke")
    # before: the outputs of jobs that had finished when snakemake was killed
    finished = [k for k in before if k.endswith(("model.pt", ".done", "index.tsv", "synth.json"))]
    assert len([k for k in finished if k.endswith("model.pt")]) >= 2
    redone = [k for k in finished if after.get(k) != before[k]]
    assert not redone, f"finished outputs were rewritten by the rerun: {redone}"


@pytest.mark.slow
def test_no_run_trains_twice_at_once(smoke_run):
    """Snakemake was killed while runs trained; their orphaned local jobs lived on. No run's
    jobs overlap in time (the rerun waits for a live orphan: tests/test_launch.py)."""
    wd, _, _, orphans = smoke_run
    assert orphans, "the drill killed Snakemake while no pretraining ran"
    for run_dir in (wd / "results/smoke/pretrain").glob("*/seed*"):
        spans = job_spans(run_dir)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), f"{run_dir}: {spans}"
    assert all(len(job_spans(d)) == 2 for d in orphans)  # the orphan, then the rerun's resume


@pytest.mark.slow
def test_smoke_study_produces_every_artifact(smoke_run):
    wd, _, _, _ = smoke_run
    res = wd / "results" / "smoke"
    report = (res / "report.md").read_text()
    # the report's headline table carries every run's numbers as the stats stage computed them,
    # and its verdict is the criteria's

    exp = json.loads((res / "experiment.json").read_text())
    table = Table.read(res / "stats" / "comparison.tsv")
    headline = report.split("## Headline metrics", 1)[1].split("\n## ", 1)[0]
    for run in ("byol_uniform", "twbyol_tau30", "random_init"):
        for ds in ("mice", "rats"):
            mean, sd, n = table.summary(run, ds, "mean_f1")
            assert (
                f"| {exp['runs'][run]['label']} | {ds} | {n} | {mean:.3f} +- {sd:.3f} |" in headline
            )
    crit = json.loads((res / "stats" / "criteria.json").read_text())
    assert "## Verdict\n\n" + verdict_sentence(exp, crit) + "\n" in report
    for run in ("byol_uniform", "twbyol_tau30", "random_init"):
        for seed in (0, 1, 2):
            d = res / "pretrain" / run / f"seed{seed}"
            for name in (
                "model.pt",
                "metrics.jsonl",
                "efficiency.json",
                "stdout.log",
                "stderr.log",
            ):
                assert (d / name).exists(), d / name
            for ds in ("mice", "rats"):
                assert (res / "evaluate" / run / f"seed{seed}" / f"{ds}.json").exists()
            # the leaderboard file for the MABe22-layout mice, none for the RatSI rats
            assert np.load(res / "submission" / run / f"seed{seed}" / "mice.npy").shape[1] <= 128
            assert not (res / "submission" / run / f"seed{seed}" / "rats.npy").exists()
    for name in ("comparison.tsv", "ttests.json", "criteria.json"):
        assert (res / "stats" / name).stat().st_size > 0
    pdfs = list((res / "images").glob("*.pdf"))
    assert len(pdfs) >= 3 and all(p.stat().st_size > 1000 for p in pdfs)
    # atomic writes leave no temp files (Snakemake marks each directory() output it made)
    leftovers = [p for p in res.rglob(".*") if p.is_file() and p.name != ".snakemake_timestamp"]
    assert not leftovers, leftovers
    for ds in ("mice", "rats"):  # every clip predicted, the video-only ones too
        pred = res / "predict" / "twbyol_tau30" / "seed0" / ds
        index = (res / "frames" / ds / "index.tsv").read_text().splitlines()[1:]
        assert sorted(p.stem for p in pred.glob("*.csv")) == sorted(r.split("\t")[0] for r in index)
        assert (res / "images" / f"ethogram_{ds}.pdf").stat().st_size > 1000


@pytest.mark.slow
def test_results_block_is_regenerated_from_the_study(smoke_run, tmp_path):
    """benchmarks/readme_results.py rewrites only its marked block of a results doc
    (docs/results.md by default), with every run's numbers as comparison.tsv has them, the
    criteria and the study's time from the Snakemake log."""
    wd, _, _, _ = smoke_run
    doc = tmp_path / "results.md"
    doc.write_text(
        "intro\n<!-- results:smoke:begin -->\nSTALE BLOCK\n<!-- results:smoke:end -->\nreading\n"
    )
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "readme_results.py"),
            "smoke",
            "--results",
            str(wd / "results"),
            "--snakemake-logs",
            str(wd / ".snakemake" / "log"),
            "--doc",
            str(doc),
            "--write",
        ],
        check=True,
        env=env_with_venv(),
    )
    text = doc.read_text()
    assert text.startswith("intro\n<!-- results:smoke:begin -->\n") and text.endswith(
        "<!-- results:smoke:end -->\nreading\n"
    )
    assert "STALE BLOCK" not in text

    table = Table.read(wd / "results" / "smoke" / "stats" / "comparison.tsv")
    exp = json.loads((wd / "results" / "smoke" / "experiment.json").read_text())
    for run in ("byol_uniform", "twbyol_tau30", "random_init"):
        mean, sd, n = table.summary(run, "mice", "mean_f1")
        row = next(
            line
            for line in text.splitlines()
            if line.startswith(f"| {exp['runs'][run]['label']} |")
        )
        assert f"| {n} | {mean:.3f} +- {sd:.3f} |" in row, row
    refs = json.loads((wd / "results" / "smoke" / "stats" / "ttests.json").read_text())
    ceiling = refs["references"]["mice"]["mean"]["ceiling"]  # generated data: a ceiling line
    assert f"| (reference) ceiling: window's ground truth |  | {ceiling:.3f} |" in text
    crit = json.loads((wd / "results" / "smoke" / "stats" / "criteria.json").read_text())
    passed = sum(c["verdict"] == "PASS" for c in crit["criteria"])
    assert f"{passed} of 6 pass" in text
    assert re.search(r"The study took \*\*(\d+ h )?\d+ min \d+ s\*\* for \d+ jobs", text), text[
        :400
    ]


@pytest.mark.slow
def test_noop_rerun_plans_nothing(smoke_run):
    wd, _, _, _ = smoke_run
    assert planned(wd, "smoke") == {}


@pytest.mark.slow
def test_a_study_moved_with_its_checkout_plans_nothing(smoke_run, tmp_path):
    """Copied to another folder with its results and .snakemake (file times kept, as cp -a or
    rsync -a keep them), the code files then touched as a fresh `git clone` writes them: no
    job is planned, and no file of the study names the old folder."""
    wd, _, _, _ = smoke_run
    moved = tmp_path / "elsewhere" / "twbyol"
    shutil.copytree(wd, moved, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    now = time.time()
    for p in [moved / "Snakefile", *(moved / d for d in ("twbyol", "workflow", "config"))]:
        for f in [p] if p.is_file() else p.rglob("*"):
            if f.is_file():
                os.utime(f, (now, now))
    assert planned(moved, "smoke") == {}
    index = (moved / "results/smoke/frames/mice/index.tsv").read_text()
    assert str(wd) not in index and "results/smoke" not in index  # relative to the dataset root


@pytest.mark.slow
def test_the_config_with_its_keys_reordered_plans_nothing(smoke_run):
    """The same config written with sorted keys (as YAML tools rewrite it): nothing replans."""
    wd, _, _, _ = smoke_run
    path = wd / "config" / "config.yaml"
    text = path.read_text()
    data = yaml.safe_load(text)
    reordered = yaml.safe_dump(data, sort_keys=True)
    assert reordered != yaml.safe_dump(data, sort_keys=False)  # the order did change
    path.write_text(reordered)
    try:
        assert planned(wd, "smoke") == {}
    finally:
        path.write_text(text)


def planned_after_editing(wd: Path, module: str) -> dict[str, int]:
    """Jobs planned after an edit of package module `module` (an edit, not a touch: Snakemake
    skips inputs whose checksum is unchanged); the file is restored with its time."""
    path = wd / "twbyol" / module
    text, st = path.read_text(), path.stat()
    path.write_text(text + "\n# an edit\n")
    try:
        return planned(wd, "smoke")
    finally:
        path.write_text(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.slow
def test_editing_probe_replans_evaluation_not_pretraining(smoke_run):
    wd, _, _, _ = smoke_run
    jobs = planned_after_editing(wd, "probe.py")
    assert "pretrain" not in jobs and "embed" not in jobs and jobs.get("evaluate") == 3 * 3 * 2
    assert jobs.get("stats") == 1 and jobs.get("report") == 1


@pytest.mark.slow
def test_code_inputs_follow_the_imports(smoke_run):
    """Editing a method no smoke run uses replans nothing; editing temporal.py (which the
    evaluation and the figures run, found from their imports) replans them, not the
    pretraining or the embeddings."""
    wd, _, _, _ = smoke_run
    assert planned_after_editing(wd, "methods/supervised.py") == {}
    assert planned_after_editing(wd, "methods/contrastive.py") == {}
    jobs = planned_after_editing(wd, "temporal.py")
    assert jobs.get("evaluate") == 3 * 3 * 2 and jobs.get("figures") == 1
    assert "pretrain" not in jobs and "embed" not in jobs and "frames" not in jobs


@pytest.mark.slow
def test_changing_one_runs_tau_replans_only_that_run(smoke_run):
    wd, _, _, _ = smoke_run
    cfg = write_override(wd, {"experiments": {"smoke": {"runs": {"twbyol_tau30": {"tau": 45}}}}})
    jobs = planned(wd, "smoke", extra=("--configfile", "config/config.yaml", cfg))
    assert jobs.get("pretrain") == 3  # the three seeds of that run, nothing else
    assert jobs.get("embed") == 3 * 2 and jobs.get("evaluate") == 3 * 2
    assert "frames" not in jobs and "read_dataset" not in jobs


@pytest.mark.slow
def test_changing_job_shapes_replans_nothing(smoke_run):
    """Resources, not params: another cluster, job size or GPU count invalidates nothing."""
    wd, _, _, _ = smoke_run
    shape = {
        "cpus_per_task": 2,
        "mem_gb": 9,
        "timeout_min": 7,
        "partition": "p",
        "qos": "q",
        "constraint": "c",
        "sbatch_extra": {"mail-type": "END"},
    }
    cfg = write_override(
        wd,
        {
            "experiments": {
                "smoke": {
                    "resources": {
                        **shape,
                        "gpus_per_node": 4,
                        "gpu_type": "a100",
                        "setup": ["true"],
                    },
                    "stage_resources": {
                        stage: {**shape, "gpus": 1, "gpu_type": "a100"}
                        for stage in (
                            "synth",
                            "read_dataset",
                            "frames",
                            "embed",
                            "evaluate",
                            "stats",
                            "figures",
                            "report",
                        )
                    },
                }
            }
        },
    )
    assert planned(wd, "smoke", extra=("--configfile", cfg)) == {}


@pytest.mark.slow
def test_a_gpu_resource_does_not_serialise_local_jobs(smoke_run):
    """smoke's embed jobs ask for a GPU (its stage_resources), which --cores 2 does not count:
    two of them ran at once (read from Snakemake's logs of the run)."""
    wd, _, _, _ = smoke_run
    most = 0
    for log in (wd / ".snakemake" / "log").glob("*.snakemake.log"):
        running = 0
        for line in log.read_text().splitlines():
            if re.fullmatch(r"(local)?rule embed:", line):
                running += 1
                most = max(most, running)
            elif re.fullmatch(r"Finished jobid: \d+ \(Rule: embed\)", line):
                running -= 1
    assert most == 2


@pytest.fixture()
def mabe22_wd(tmp_path, release):
    """The mabe22 experiment with mice pointed at a release as downloaded (CaltechDATA names,
    nested folders) and rats at an (empty) folder: enough to plan."""
    (tmp_path / "wd").mkdir()
    wd = copy_workflow(tmp_path / "wd")
    (tmp_path / "rats").mkdir()
    cfg = write_override(
        wd,
        {
            "experiments": {
                "mabe22": {
                    "datasets": {
                        "mice": {"path": str(release["caltech"])},
                        "rats": {"path": str(tmp_path / "rats")},
                    }
                }
            }
        },
    )
    return wd, cfg


def _plan_mabe22(wd, cfg):
    t = time.perf_counter()
    jobs = planned(wd, extra=("--configfile", "config/config.yaml", cfg))  # default target
    seconds = time.perf_counter() - t
    runs = yaml.safe_load((wd / "config/config.yaml").read_text())["experiments"]["mabe22"]["runs"]
    assert jobs["pretrain"] == 3 * len(runs)
    assert jobs["frames"] == 64 + 4 and jobs["embed"] == jobs["evaluate"] == 3 * len(runs) * 2
    assert jobs["submission"] == 3 * len(runs)  # the mice only: RatSI has no leaderboard
    return jobs, seconds


def test_mabe22_dag_plans_the_whole_study_on_the_release(mabe22_wd):
    wd, cfg = mabe22_wd
    jobs, seconds = _plan_mabe22(wd, cfg)
    print(f"mabe22 dry run: {sum(jobs.values())} jobs planned in {seconds:.1f} s")


def test_mabe22_dag_at_the_release_size(tmp_path):
    """Planning with the dataset folder holding the release's 2,614 videos (1,830 submission,
    784 userTrain; empty files: planning reads no dataset file, it only checks the folder).
    The time is printed for docs/mabe22.md; it is not asserted (a shared machine's timings)."""
    (tmp_path / "wd").mkdir()
    wd = copy_workflow(tmp_path / "wd")
    mice, rats = tmp_path / "mouse triplets", tmp_path / "rats"
    for folder, n in (("submission_videos", 1830), ("userTrain_videos", 784)):
        (mice / folder).mkdir(parents=True)
        for i in range(n):
            (mice / folder / f"{folder[:4]}{i:016d}.avi").touch()
    rats.mkdir()
    cfg = write_override(
        wd,
        {
            "experiments": {
                "mabe22": {"datasets": {"mice": {"path": str(mice)}, "rats": {"path": str(rats)}}}
            }
        },
    )
    jobs, seconds = _plan_mabe22(wd, cfg)
    print(f"mabe22 dry run with 2,614 videos: {sum(jobs.values())} jobs in {seconds:.1f} s")


def release_experiment(root: Path) -> dict:
    """A smoke-sized study on a MABe22 release folder: the smoke experiment's tiny backbone
    and recipe, mice only, one seed, a few steps, pretraining on userTrain + SubmissionTrain."""
    smoke = yaml.safe_load((REPO / "config/config.yaml").read_text())["experiments"]["smoke"]
    e = {
        **smoke,
        "description": "The smoke recipe on a MABe22 release as downloaded.",
        "datasets": {
            "mice": {
                "format": "mabe22",
                "path": str(root),
                "frames": {"size": 48, "n_shards": 2},
                "pretrain_splits": ["UserTrain", "SubmissionTrain"],
            }
        },
        "eval_datasets": ["mice"],
        "seeds": [0],
        "training": {**smoke["training"], "epochs": 2, "samples_per_epoch": 64},
    }
    return e


@pytest.mark.slow
def test_study_on_the_release_as_downloaded(tmp_path, release):
    """read-dataset -> frames -> pretrain -> embed -> evaluate -> submission -> stats ->
    figures -> report on the CaltechDATA-named release (nested folders, a missing video,
    trailing frames, userTrain clips), from a checkout whose path has a space."""
    root = release["caltech"]
    (tmp_path / "check out").mkdir()
    wd = copy_workflow(tmp_path / "check out")
    cfg = write_override(wd, {"experiments": {"release": release_experiment(root)}})
    summary = json.loads((root / "synth.json").read_text())
    targets = ["results/release/report.md"] + [
        f"results/release/submission/{r}/seed0/mice.npy"
        for r in ("byol_uniform", "twbyol_tau30", "random_init")
    ]
    snakemake(wd, *targets, "--cores", "2", "--configfile", "config/config.yaml", cfg)
    res = wd / "results" / "release"
    protocol = json.loads((res / "labels" / "mice.protocol.json").read_text())
    (missing,) = protocol["missing_videos"]
    log = (res / "logs" / "read_dataset" / "mice.log").read_text()
    assert missing in log and "left out" in log and "trimmed" in log
    report = (res / "report.md").read_text()
    assert "mean F1 (private)" in report and "mean F1 (public)" in report
    assert f"**1 labelled clip(s) left out for a missing video**: {missing}" in report
    ev = json.loads((res / "evaluate" / "twbyol_tau30" / "seed0" / "mice.json").read_text())
    assert 0 <= ev["mean_f1"] <= 1 and 0 <= ev["mean_f1_public"] <= 1
    assert ev["protocol"]["missing_videos"] == [missing]
    assert ev["n_frames"] == (len(summary["clips"]) - 1) * summary["n_frames"]
    for r in ("byol_uniform", "twbyol_tau30"):
        err = (res / "pretrain" / r / "seed0" / "stderr.log").read_text()
        n_train = len(protocol["splits"][next(iter(protocol["splits"]))]["SubmissionTrain"])
        assert f"{n_train + len(summary['user_train_clips'])} clips" in err, err[-2000:]
    # the leaderboard file: every frame of the release's frame map, the missing clip zero
    sub = np.load(res / "submission" / "twbyol_tau30" / "seed0" / "mice.npy")
    assert sub.dtype == np.float32 and sub.shape[1] <= 128
    assert sub.shape[0] == len(summary["clips"]) * summary["n_frames"]
    a, b = protocol["frame_number_map"][missing]
    assert not sub[a:b].any() and sub[:a].any()
    assert planned(wd, *targets, extra=("--configfile", "config/config.yaml", cfg)) == {}


def _predict_cli(model: Path, probes: Path, videos: Path, out: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "twbyol",
            "predict",
            "--model",
            str(model),
            "--probes",
            str(probes),
            "--videos",
            str(videos),
            "--out-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env_with_venv(),
    )
    assert p.returncode == 0, p.stderr[-3000:]


@pytest.mark.slow
def test_real_video_study_predicts_every_video_at_its_own_rate(tmp_path, real_video_dir):
    """The `real` experiment (config.yaml) on the folder benchmarks/real_videos.py lays out
    from ../shared's real mouse videos: 33 labelled B-SOiD panels at 15 fps, unlabelled
    recordings at 30 and 120 fps and 4:3 / 5:4 aspect. read-dataset -> frames -> pretrain
    (TW-BYOL's tau in seconds: its logged dt is too) -> embed -> evaluate -> predict ->
    ethogram -> report; every video predicted, times at its own rate; `twbyol predict
    --videos` on the same folder outside the study gives the same calls; the sanity kNN
    runs; editing a label file reruns read-dataset and the evaluation, not the frames or
    the pretraining; adding a video in a subfolder reruns the clip list and them too."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import real_videos

    folder = tmp_path / "lab videos"
    made = real_videos.prepare(real_video_dir, folder)
    real = yaml.safe_load((REPO / "config/config.yaml").read_text())["experiments"]["real"]
    exp = {
        **real,
        "datasets": {"real": {**real["datasets"]["real"], "path": str(folder)}},
        "seeds": [0],
        "runs": {k: real["runs"][k] for k in ("byol_uniform", "twbyol_1s")},
        "study": {"baseline": "byol_uniform", "proposed": "twbyol_1s"},
        "training": {**real["training"], "epochs": 2, "samples_per_epoch": 64},
    }
    (tmp_path / "wd").mkdir()
    wd = copy_workflow(tmp_path / "wd")
    cfg = write_override(wd, {"experiments": {"realtest": exp}})
    extra = ("--configfile", "config/config.yaml", cfg)
    snakemake(wd, "results/realtest/report.md", "--cores", "2", *extra)
    res = wd / "results" / "realtest"
    run = res / "pretrain" / "twbyol_1s" / "seed0"
    pred = res / "predict" / "twbyol_1s" / "seed0" / "real"
    assert sorted(p.stem for p in pred.glob("*.csv")) == sorted(made)
    from twbyol.data.artifacts import read_index
    from twbyol.predictions import read_predictions

    index = read_index(res / "frames" / "real" / "index.tsv").set_index("clip_id")
    ev = json.loads((res / "evaluate" / "twbyol_1s" / "seed0" / "real.json").read_text())
    assert ev["probes"] == sorted({v["behaviour"] for v in made.values() if v["behaviour"]})
    for cid in made:
        names, calls, scores = read_predictions(pred / f"{cid}.csv")
        n, fps = int(index.loc[cid, "n_frames"]), float(index.loc[cid, "fps"])
        assert names == ev["probes"] and calls.shape == (n, len(names)), cid
        assert set(np.unique(calls)) <= {0, 1} and np.isfinite(scores).all()
        t = np.loadtxt(pred / f"{cid}.csv", delimiter=",", skiprows=1, usecols=1)
        np.testing.assert_allclose(t, np.arange(n) / fps, atol=6e-5)
    assert index.loc["dannce__CameraL_0", "fps"] == pytest.approx(
        120.0, abs=1e-3
    )  # 17500000/145833
    assert index.loc["dlc_openfield__m3v1mp4", "n_frames"] == 2330
    # DANNCE's 1328x1048 letterboxed into the experiment's square frames: black bars above
    # and below (~6 px each at 64 px), none at the sides
    size = real["datasets"]["real"]["frames"]["size"]
    f = np.load(res / "frames" / "real" / "dannce__CameraL_0.npy", mmap_mode="r")
    assert f.shape == (3500, size, size) and f[:, :4].max() == 0
    assert f[:, size // 2, :2].max() > 0
    # dt in seconds for the tau_s run (clips of 1.6 to 56 s), frames for the other
    dt = {
        r: [
            json.loads(x)["mean_dt"]
            for x in (res / "pretrain" / r / "seed0" / "metrics.jsonl").read_text().splitlines()
        ]
        for r in ("twbyol_1s", "byol_uniform")
    }
    assert max(dt["twbyol_1s"]) < 15 < min(dt["byol_uniform"]), dt
    report = (res / "report.md").read_text()
    assert "![ethogram_real](images/ethogram_real.png)" in report
    # the same model and probes on the folder itself, outside the study
    out = tmp_path / "predicted"
    _predict_cli(
        run / "model.pt", res / "evaluate" / "twbyol_1s" / "seed0" / "real.probes.npz", folder, out
    )
    for cid in made:
        a, b = (read_predictions(d / f"{cid}.csv") for d in (pred, out))
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_allclose(a[2], b[2], atol=1e-3)
    knn = real_videos.analyse(res, "real", n_perm=50)
    assert knn["clips"] == 33 and knn["chance"] == pytest.approx(2 / 32)
    assert 0 <= knn["twbyol_1s"]["accuracy"] <= 1 and 0 < knn["twbyol_1s"]["p_perm"] <= 1
    assert planned(wd, "results/realtest/report.md", extra=extra) == {}
    # an edited label file reruns read-dataset and what reads the labels, not the clip
    # list, the frames or the pretraining (an edit: Snakemake passes over a newer file
    # whose checksum it recorded unchanged)
    label = folder / "bsoid" / "rear_plus_1.csv"
    text = label.read_text()
    label.write_text(text.replace("\n0,", "\n0,-1,", 1).replace("-1,0,", "-1,", 1))
    assert planned(wd, "results/realtest/labels/real.npz", extra=extra) == {"read_dataset": 1}
    jobs = planned(wd, "results/realtest/report.md", extra=extra)
    assert jobs["read_dataset"] == 1 and jobs["embed"] == jobs["evaluate"] == 2, jobs
    assert not {"clip_list", "frames", "pretrain"} & set(jobs), jobs
    label.write_text(text)
    # a video added in a subfolder reruns the clip list, and so the frames and pretraining
    (folder / "dlc_reaching" / "again.avi").symlink_to(folder / "dlc_reaching" / "vid.avi")
    assert planned(wd, "results/realtest/labels/real.npz", extra=extra) == {
        "clip_list": 1,
        "read_dataset": 1,
    }
    jobs = planned(wd, "results/realtest/report.md", extra=extra)
    assert jobs["clip_list"] == 1 and jobs["frames"] >= 1 and jobs["pretrain"] == 2, jobs
