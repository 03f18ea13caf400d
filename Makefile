# `make demo` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,peers,mpi]"
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(VENV)/bin/nablanet train --out runs/demo
	$(PY) examples/notes_autodiff.py

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check nablanet tests benchmarks examples

bench: $(STAMP)
	$(PY) -m pip install --quiet "jax[cpu]"
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_step.py
	$(PY) benchmarks/bench_memory.py
	test -d /usr/share/datasets/fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)
	$(PY) benchmarks/bench_e2e.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
