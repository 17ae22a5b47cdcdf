# Two commands on a fresh machine with Python 3.10+:
#   make test        create .venv, install the kit with its dev extra, run the tests
#   make reproduce   the main job: run the notebooks (quick budget), tables and figures into figures/
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test reproduce install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

reproduce: $(STAMP)
	$(VENV)/bin/effnet reproduce --budget quick --output-dir figures

clean:
	rm -rf $(VENV) build .pytest_cache
