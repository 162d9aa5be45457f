"""envs/twbyol.yaml (conda, for clusters) stays in step with pyproject.toml's dependencies."""

from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]


def test_conda_env_pins_what_pyproject_pins():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs" / "twbyol.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert sorted(p for p in pip if not p.startswith("-e")) == sorted(deps)
    # the package itself, from the checkout, with its optional extras
    assert "-e ../[nwb,tensorboard]" in pip
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert {"nwb", "tensorboard"} <= set(extras["optional-dependencies"])


def test_every_rule_names_the_env():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        assert text.count("\nrule ") == text.count("conda:\n        ENV"), smk.name
