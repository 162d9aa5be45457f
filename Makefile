# The two commands of the README:
#   make smoke   set up .venv and run every stage of the study on tiny synthetic data
#   make test    set up .venv and run the test suite (it starts a local SLURM cluster)
#   make report  the smoke study's results as one HTML page: results/smoke/report.html
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# rules call the `twbyol` console script, and SLURM jobs inherit this PATH
export PATH := $(abspath $(VENV))/bin:$(PATH)
CORES ?= 2

.PHONY: setup browser smoke synthetic real report test test-fast lint cluster-up cluster-down clean-smoke

setup: $(VENV)/.installed browser

# Debian's chromium, in which tests/test_report_html.py opens the HTML report (root: apt-get;
# without root the test skips, naming it; under CI=true it fails)
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] \
		|| { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium \
		|| { apt-get update -q && apt-get install -y -q chromium; }; }

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,nwb,tensorboard]'
	touch $@

smoke: setup
	snakemake --cores $(CORES) smoke

synthetic: setup
	snakemake --cores $(CORES) synthetic

# the smoke study's HTML report (snakemake --report): every figure, table and the verdict, each
# with its description (workflow/report/), after running whatever of the study is not yet
# done; EXP=name for another experiment's. Snakemake fetches the page's scripts once (network)
EXP ?= smoke
report: setup
	snakemake --cores $(CORES) $(EXP)
	snakemake --report results/$(EXP)/report.html $(EXP)

# the real-video experiment: a folder of own videos built from the real mouse videos
# (TWBYOL_REAL_VIDEOS, default ../shared/real_rodent_video; tests/README.md)
real: setup
	$(PY) benchmarks/real_videos.py prepare
	snakemake --cores $(CORES) real
	$(PY) benchmarks/real_videos.py analyse

test: setup
	$(PY) -m pytest -q

# the inner loop: every test but the workflow runs and the cluster (tests/README.md)
test-fast: setup
	$(PY) -m pytest -q -m "not slow and not cluster"

lint: setup
	snakemake --lint
	$(PY) -m ruff check twbyol tests benchmarks
	$(PY) -m ruff format --check twbyol tests benchmarks

cluster-up:
	bash tests/cluster/up.sh

cluster-down:
	bash tests/cluster/down.sh

clean-smoke:
	rm -rf results/smoke
