# Two commands on a fresh machine with Python 3.10+:
#   make reproduce   the main job: run the notebooks (quick budget), tables and figures into figures/
#   make test        create .venv, install the kit with its dev extra, run the tests
# and one to teach from:
#   make lab         register .venv as the Jupyter kernel "effnet-kit", start JupyterLab in notebooks/
# On a GPU machine add EXTRAS=gpu to any of them (TensorFlow's CUDA build instead of the CPU one).
PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= dev
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(EXTRAS)
KERNEL := effnet-kit

.PHONY: test reproduce install lab kernel clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

reproduce: $(STAMP)
	$(VENV)/bin/effnet reproduce --budget quick --jobs 2 --output-dir figures

kernel: $(STAMP)
	$(PY) -m ipykernel install --user --name $(KERNEL) --display-name "Python ($(KERNEL))"

# Lessons are saved without outputs (as committed): running them leaves git status clean.
lab: kernel
	$(VENV)/bin/jupyter lab --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root) \
	    --ContentsManager.pre_save_hook=effnet_lib.lessons.environment.strip_outputs_on_save

clean:
	rm -rf $(VENV) build .pytest_cache
