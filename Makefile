# The two set-up commands for a fresh machine (see README):
#   make run   - install and start the dashboard
#   make test  - install everything the tests need and run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint bench help

help:
	@echo "make run   - install into .venv and start the dashboard on http://127.0.0.1:$(PORT)"
	@echo "make test  - install into .venv (and Chromium when root) and run every test"
	@echo "make bench - print the engine's speed figures"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt pyproject.toml $(VENV)/.installed-run
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

run: $(VENV)/.installed-run
	$(PY) -m streamlit run dashboard/app.py --server.port $(PORT)

test: $(VENV)/.installed-test
	@bash scripts/ensure-chromium.sh
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV)/.installed-run
	$(PY) bench/engine_bench.py
