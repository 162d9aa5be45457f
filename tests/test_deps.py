"""Rules' code inputs derived from the imports (twbyol.deps): a known answer on a toy package,
and the real stages against what Python actually imports."""

import subprocess
import sys
from pathlib import Path

import pytest

from twbyol import deps


@pytest.fixture()
def toy(tmp_path, monkeypatch):
    """A package `toy` with module-level, function-level, relative, TYPE_CHECKING-only and
    dispatched imports."""
    files = {
        "__init__.py": "",
        "cli.py": 'STAGES: dict = {"run": ("toy.stage", "a stage"), "other": ("toy.b", "")}\n',
        "stage.py": "from toy import a\nimport json\n\ndef f():\n    from toy.sub.c import X\n",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from toy import typing_only\n"
        "else:\n    from . import b\n",
        "b.py": "import numpy\n",
        "typing_only.py": "",
        "sub/__init__.py": "",
        "sub/c.py": "from ..methods import build\n",
        "methods/__init__.py": "def build(m):\n    from toy.methods import one\n"
        "    from toy.methods import two\n",
        "methods/one.py": "from toy import a\n",
        "methods/two.py": "",
    }
    for name, text in files.items():
        p = tmp_path / "toy" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    monkeypatch.setattr(deps, "ROOT", tmp_path / "toy")
    monkeypatch.setattr(deps, "PACKAGE", "toy")
    monkeypatch.setattr(
        deps, "METHOD_MODULES", {"one": "toy.methods.one", "two": "toy.methods.two"}
    )
    monkeypatch.setattr(
        deps,
        "DISPATCH",
        frozenset(("toy.methods", m) for m in ("toy.methods.one", "toy.methods.two")),
    )
    for f in (deps.imports_of, deps.stage_modules, deps.pretrain_modules):
        f.cache_clear()
    yield
    for f in (deps.imports_of, deps.stage_modules, deps.pretrain_modules):
        f.cache_clear()


def test_the_closure_of_a_toy_package_is_known(toy):
    assert deps.stage_modules("run") == (
        "toy/__init__.py",
        "toy/a.py",
        "toy/b.py",
        "toy/cli.py",
        "toy/methods/__init__.py",
        "toy/stage.py",
        "toy/sub/__init__.py",
        "toy/sub/c.py",
    )  # no typing_only, no method
    assert "toy/methods/one.py" in deps.stage_modules("run", ("one",))
    assert "toy/methods/two.py" not in deps.stage_modules("run", ("one",))
    with pytest.raises(ValueError, match="no stage 'nope'"):
        deps.stage_modules("nope")


REAL = {  # stage -> modules it must run / must not depend on
    "evaluate": (
        {"evaluate.py", "probe.py", "temporal.py", "split.py", "io.py", "data/artifacts.py"},
        {"data/mabe22.py", "data/ratsi.py", "data/index.py", "train.py", "stats.py"},
    ),
    "figures": (  # no stage imports another stage
        {"figures.py", "tables.py", "probe.py", "data/artifacts.py"},
        {"data/mabe22.py", "train.py", "stats.py", "evaluate.py"},
    ),
    "export": (
        {"exports.py", "bouts.py", "predictions.py", "io.py"},
        {"predict.py", "predictor.py", "embed.py", "figures.py", "ethogram.py"},
    ),
    "submission": ({"submission.py", "data/artifacts.py"}, {"evaluate.py", "train.py"}),
    "report": ({"report.py", "tables.py"}, {"stats.py", "figures.py"}),
    "embed": (
        {"embed.py", "models/backbones.py", "data/artifacts.py", "io.py"},
        {"data/index.py", "data/clips.py", "data/sampling.py", "methods/byol.py"},
    ),
    "read-dataset": (
        {"data/index.py", "data/mabe22.py", "data/ratsi.py", "split.py"},
        {"synthetic/social.py", "synthetic/render.py", "synthetic/generate.py"},
    ),
    "stats": ({"stats.py", "io.py"}, {"figures.py", "report.py", "evaluate.py"}),
}


@pytest.mark.parametrize("stage", sorted(REAL))
def test_a_stage_runs_the_modules_it_must_and_not_the_ones_it_need_not(stage):
    files = {f.removeprefix("twbyol/") for f in deps.stage_modules(stage)}
    must, must_not = REAL[stage]
    assert must <= files, must - files
    assert not (must_not & files), must_not & files


def test_each_pretraining_runs_its_own_method_only():
    mods = {
        m: {
            f.removeprefix("twbyol/methods/")
            for f in deps.pretrain_modules(m)
            if f.startswith("twbyol/methods/")
        }
        for m in deps.METHOD_MODULES
    }
    assert mods["byol"] == mods["random_init"] == {"__init__.py", "byol.py"}
    assert (
        mods["moco_v3"]
        == mods["simclr_v2"]
        == mods["time_contrast"]
        == {"__init__.py", "byol.py", "contrastive.py"}
    )
    assert mods["supervised"] == {
        "__init__.py",
        "byol.py",
        "supervised.py",
    }  # byol: the EMA schedule
    assert {"twbyol/launch.py", "twbyol/train.py", "twbyol/data/sampling.py"} <= set(
        deps.pretrain_modules("byol")
    )


def test_what_python_imports_for_each_stage_is_in_its_closure():
    """Every twbyol module loaded by importing a stage's module (Python's own answer, in a
    fresh process per stage) is among the walk's files for that stage; the walk adds the
    modules imported inside functions."""
    from twbyol.cli import STAGES

    code = (
        "import importlib, sys; importlib.import_module(sys.argv[1]); "
        "print(' '.join(m.__file__ for n, m in sys.modules.items() if n.startswith('twbyol')))"
    )
    procs = {
        s: subprocess.Popen(
            [sys.executable, "-c", code, STAGES[s][0]], text=True, stdout=subprocess.PIPE
        )
        for s in STAGES
    }
    for stage, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, stage
        loaded = {str(Path(f).resolve().relative_to(deps.ROOT.parent)) for f in out.split()}
        walked = set(
            deps.pretrain_modules("byol")
            if stage in ("pretrain", "train")
            else deps.stage_modules(stage)
        )
        assert loaded <= walked, (stage, loaded - walked)


def test_the_package_has_no_import_cycle():
    """No module imports, anywhere in its source (imports inside functions included), a
    module that imports it back, directly or through others. A module's own parent packages
    are left out: Python imports them first whatever the module says."""
    import pkgutil

    import twbyol

    names = [m.name for m in pkgutil.walk_packages(twbyol.__path__, "twbyol.")]
    graph = {
        n: {m for m in deps.imports_of(n) if not n.startswith(m + ".") and m != "twbyol"}
        for n in names
    }
    state: dict[str, int] = {}
    cycles = []

    def visit(u: str, path: list[str]) -> None:
        state[u] = 1
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                cycles.append(path[path.index(v) :] + [v])
            elif v in graph and not state.get(v):
                visit(v, [*path, v])
        state[u] = 2

    for n in names:
        if not state.get(n):
            visit(n, [n])
    assert not cycles, cycles


# the imports of one stage by another that are one stage's two parts, or no stage's code
SHARED_STAGE_MODULES = {
    "twbyol.train",  # pretrain's submitted job: `twbyol pretrain` launches it
    "twbyol.experiment",  # the settings layer (runs resolved, cross-key checks); its main
    # only writes the experiment record
    "twbyol.data.frames",  # the data layer's video decoder, which predict --videos decodes
    # with as extract-frames does; its main extracts one shard
}


def test_no_stage_imports_another_stage():
    """A stage's helpers live in the modules that own them (features.py, plotting.py,
    predictions.py, ...), never in another stage: editing one stage reruns only its jobs."""
    from twbyol.cli import STAGES

    stage_modules = {m for m, _ in STAGES.values()} - SHARED_STAGE_MODULES
    for stage, (module, _) in STAGES.items():
        others = (stage_modules - {module}) & set(deps.closure(module))
        assert not others, f"{stage} ({module}) imports the stage(s) {sorted(others)}"
