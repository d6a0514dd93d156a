# The commands people run. Each target installs what it needs into .venv first.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PERSONS ?= 20000
DAYS ?= 2
TEST_WORKERS ?= 2

.PHONY: install demo demo-plain test test-fast bench bench-1m bench-linkage-1m chaos lint airflow serve clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check pip==26.3
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt --config-settings editable_mode=compat -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## generate a demo population and run cdp_daily for each demo date through Airflow (embedded engine)
	$(BIN)/cdp airflow demo --persons $(PERSONS) --days $(DAYS)

demo-plain: $(STAMP)  ## the same stages without Airflow, in one process (stage timings and peak memory)
	$(BIN)/cdp demo --persons $(PERSONS) --days $(DAYS)

test: $(STAMP)  ## the whole test suite (CI runs this), a test file per worker (TEST_WORKERS=0: one process)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: $(STAMP)  ## the quick loop: everything not marked slow
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

bench: $(STAMP)  ## timings at 100k persons, audience operations at 1M profiles, linkage at 100k records
	$(BIN)/cdp bench --persons 100000 --audience-profiles 1000000
	$(BIN)/python -m bench.linkage --records 100000

bench-linkage-1m: $(STAMP)  ## probabilistic linkage at 100k and 1M attribute-only records, next to Splink on DuckDB
	$(BIN)/python -m bench.linkage --records 100000 1000000

bench-1m: $(STAMP)  ## every stage at 1M persons (peak 6.9 GB per stage with a 4 GiB engine memory pool, one source at a time)
	CDP_ENGINE_MEMORY=$(or $(ENGINE_MEMORY),4g) CDP_INGEST_PARALLEL=$(or $(INGEST_PARALLEL),1) $(BIN)/cdp bench --persons 1000000

chaos: $(STAMP)  ## kills at random moments, concurrent pairs, consent leaks; prints a table (target: all zeros)
	$(BIN)/python -m bench.chaos --persons 300 --kills $(or $(KILLS),12) --pairs $(or $(PAIRS),6) $(if $(SEED),--seed $(SEED))

airflow: $(STAMP)  ## Airflow standalone on http://localhost:8080 with the DAGs and a local Sail server
	$(BIN)/cdp airflow

serve: $(STAMP)  ## the marketer web app and API on http://127.0.0.1:8000 (first run: make serve ARGS=--init-tokens)
	$(BIN)/cdp serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf data .pytest_cache
