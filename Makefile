# The README's two commands. Both bootstrap a fresh machine first (Debian peers + .venv).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bootstrap lint bench

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(PY) scripts/demo.py

test: bootstrap
	$(PY) -m ruff check workbench tests benchmarks scripts
	$(PY) -m pytest $(PYTEST_ARGS)

lint: bootstrap
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: bootstrap
	$(PY) benchmarks/bench_io.py
