# rnn-course: `make test` and `make demo` set everything up on a fresh machine;
# `make quick` is the edit-test loop (every test not marked slow, well under a minute).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# nbgrader runs `alembic` (and jupyter) by name: the venv's bin/ goes first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MPLBACKEND := Agg
# One BLAS thread per process: grading runs many kernels side by side.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: test quick demo bench release lint setup clean hub hub-test

setup: $(STAMP)

$(STAMP): pyproject.toml tools/install-system-deps.sh
	@bash tools/install-system-deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e ".[test,dev]"
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (rnn-course)" >/dev/null
	@touch $(STAMP)
	@echo "set-up done: $(VENV) ready"

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q

# The tests not marked `slow` (pyproject.toml: end-to-end runs of kernels,
# notebooks and gradings), on two processes, a test file per process (as `test`):
# a file's module and session fixtures (the PostgreSQL server, the fixture course)
# are then set up by one process, not by each.
quick: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2 --dist loadfile -q

demo: $(STAMP)
	$(PY) -m autograder demo

bench: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==2.13.0" \
		|| echo "bench: could not install torch==2.13.0; the numerics table goes on without PyTorch"
	$(PY) -m bench

release: $(STAMP)
	$(PY) -m autograder release

lint: $(STAMP)
	$(VENV)/bin/ruff check rnn_course autograder tests bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache submitted autograded feedback gradebook.db grades.csv grades-canvas.csv

# A real JupyterHub on http://127.0.0.1:18000 serving this course (as root;
# docs/jupyterhub.md): accounts, the formgrader and grading services; Ctrl-C stops it.
# LTI 1.3 login from an LMS instead of passwords (docs/lms.md): HUB_LOGIN=lti, and
# HUB_ARGS=--with-test-lms for the project's test LMS beside it.
hub: $(STAMP)
	$(PY) tools/hub/hub.py up $(HUB_ARGS)

# The browser end-to-end test in that hub alone (also part of `make test`: marked slow).
hub-test: $(STAMP)
	$(PY) -m pytest tests/test_hub.py -m hub -q -s
