# `make test` and `make demo` create .venv from the requirement files when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint format profile demo clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

profile: $(STAMP)
	$(PY) -m mfnet_keras.profile

# Until training lands: the data half of the demo (synthetic videos -> TFRecords -> checks) and the profile.
demo: $(STAMP)
	$(PY) -m tfrecords_tools.synthetic runs/demo/videos
	$(PY) -m tfrecords_tools.pack runs/demo/videos runs/demo/records --layout list --short-side 128 --resume
	$(PY) -m tfrecords_tools.inspect runs/demo/records --verify --contact-sheet runs/demo/contact_sheet.png
	$(PY) -m mfnet_keras.profile

clean:
	rm -rf $(VENV) runs .pytest_cache
