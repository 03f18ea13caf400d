# `make demo` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint bench docs clean

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
	$(VENV)/bin/ruff check nablanet tests benchmarks examples docs

bench: $(STAMP)
	$(PY) -m pip install --quiet "jax[cpu]"
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_step.py
	$(PY) benchmarks/bench_memory.py
	test -d /usr/share/datasets/fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)
	$(PY) benchmarks/bench_e2e.py

# The documentation site (mkdocs-material, API reference from the docstrings, the tutorials executed),
# built in strict mode: a warning fails the build. MathJax comes from the npm registry, served locally.
MATHJAX := docs/javascripts/mathjax/tex-mml-chtml.js

$(MATHJAX):
	mkdir -p build/mathjax
	cd build/mathjax && npm pack --silent mathjax@3.2.2 >/dev/null && tar -xzf mathjax-3.2.2.tgz
	mkdir -p docs/javascripts/mathjax/output/chtml
	cp build/mathjax/package/es5/tex-mml-chtml.js docs/javascripts/mathjax/
	cp -r build/mathjax/package/es5/output/chtml/fonts docs/javascripts/mathjax/output/chtml/

docs: $(STAMP) $(MATHJAX)
	$(PY) -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) build site .cache *.egg-info .pytest_cache docs/javascripts/mathjax
