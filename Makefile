# promptd: every target bootstraps .venv from pyproject.toml when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo run test bench lint clean venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,dev]'
	@touch $(STAMP)

venv: $(STAMP)

## demo: the main job: daemon on embedded SQLite plus the simulated fleet, in the world
## WORLD names (support-v1, the default, or support-v2: `make demo WORLD=support-v2`)
WORLD ?= support-v1
demo: $(STAMP)
	$(BIN)/promptd demo --world $(WORLD)

## run: the daemon alone on embedded SQLite under ./var/
run: $(STAMP)
	@mkdir -p var
	$(BIN)/promptd serve

## test: lint, then the whole suite (real SQLite, uvicorn, PostgreSQL, Prometheus)
test: $(STAMP) lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

## bench: benchmarks in tests/perf, each against a baseline measured in the same run
bench: $(STAMP)
	@status=0; for b in tests/perf/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || status=1; done; \
	  if [ $$status -ne 0 ]; then echo "some benchmark missed a target (see MISS above)"; fi; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
