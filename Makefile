# The README's two commands. Both bootstrap a fresh machine first (Debian peers + .venv).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-quick bootstrap lint bench

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(PY) scripts/demo.py

test: bootstrap
	$(PY) -m ruff check workbench tests benchmarks scripts
	$(PY) -m pytest $(PYTEST_ARGS)

# The quick lane while working: no browser, no external peers, nothing long, on two worker
# processes (under 2 minutes).
test-quick: bootstrap
	$(PY) -m pytest -m "not peers and not browser and not slow" -n 2 $(PYTEST_ARGS)

lint: bootstrap
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: bootstrap
	$(PY) benchmarks/bench_io.py
