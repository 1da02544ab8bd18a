# `make test` and `make demo` create .venv from the requirement files when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-fast lint format profile demo clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q --durations=15

# The edit loop: every test not marked slow (its time is not yet measured); CI runs them all.
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

profile: $(STAMP)
	$(PY) -m mfnet_cli.profile

# The main job on the embedded synthetic dataset: videos -> TFRecords -> train 3D and 2D -> evaluate -> export.
demo: $(STAMP)
	$(PY) -m mfnet_cli.demo --output runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
