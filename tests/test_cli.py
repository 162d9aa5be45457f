"""The `twbyol` command: version, stage list, and every stage's documented usage."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from pathlib import Path

import pytest

from twbyol import cli

REPO = Path(__file__).resolve().parents[1]


def test_version_is_the_package_version(capsys):
    assert cli.main(["--version"]) == 0
    version = re.search(r'(?m)^version = "(.+)"$', (REPO / "pyproject.toml").read_text())[1]
    assert capsys.readouterr().out.strip() == f"twbyol {version}"
    assert importlib.metadata.version("twbyol") == version


def test_an_unknown_stage_lists_the_stages(capsys):
    assert cli.main(["pretrian"]) == 2
    err = capsys.readouterr().err
    assert "unknown stage 'pretrian'" in err and all(s in err for s in cli.STAGES)


def _documented_options(doc: str, stage: str) -> set[str]:
    """The --options of the module docstring's `twbyol <stage> ...` example commands
    (with their backslash-continued lines)."""
    options, going = set(), False
    for line in doc.splitlines():
        if line.strip().startswith(f"twbyol {stage} ") or going:
            options |= set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line))
            going = line.rstrip().endswith("\\")
    return options


@pytest.mark.parametrize("stage", sorted(cli.STAGES))
def test_every_stage_has_help_naming_the_options_its_docs_use(stage, capsys):
    """`twbyol STAGE --help` works, and every option the stage's module docstring shows in an
    example command is one the stage takes (predict's docs once named --out where the
    option was --out-dir)."""
    with pytest.raises(SystemExit) as done:
        cli.main([stage, "--help"])
    assert done.value.code == 0
    helptext = capsys.readouterr().out
    assert helptext.startswith(f"usage: twbyol {stage}")
    doc = importlib.import_module(cli.STAGES[stage][0]).__doc__ or ""
    missing = {o for o in _documented_options(doc, stage) if o not in helptext}
    assert not missing, f"{stage}: its docstring uses {sorted(missing)}, which --help lacks"
