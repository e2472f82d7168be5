# The two commands: `make run` serves the dashboard, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
ADDRESS ?= 127.0.0.1
export COUNTERSIGN_DATA_DIR ?= $(CURDIR)/data
PYTEST_ARGS ?=
# Two workers, one test file each at a time (module fixtures stay in one process); 0 runs serially.
PYTEST_WORKERS ?= 2

.PHONY: run test lint seed bench-runs bench-governance bench-drift bench-pages bench-registry clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Seeds the demo store (and its demo users) only when no tracking URI is configured and the demo
# store does not exist yet; demo mode is on exactly when the app runs on the demo store.
run: $(VENV)/.runtime
	@mkdir -p "$(COUNTERSIGN_DATA_DIR)"
	$(PY) -m app.cli db upgrade
	@if [ -z "$$MLFLOW_TRACKING_URI" ]; then \
	  $(PY) -m app.cli seed-demo --if-missing || exit 1; \
	  export COUNTERSIGN_DEMO=1; \
	fi; \
	exec $(PY) -m streamlit run app/main.py --server.port $(PORT) --server.address $(ADDRESS)

test: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

seed: $(VENV)/.runtime
	$(PY) -m app.cli seed-demo

bench-runs: $(VENV)/.dev
	$(PY) -m bench.runs --runs 10000

bench-governance: $(VENV)/.dev
	$(PY) -m bench.governance

bench-drift: $(VENV)/.dev
	$(PY) -m bench.drift --rows 100000 --cols 50

bench-pages: $(VENV)/.dev
	$(PY) -m bench.pages

bench-registry: $(VENV)/.dev
	$(PY) -m bench.registry

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
