# `make demo` and `make test` each set everything up from a fresh clone first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo lint test test-fuzz bench bench-server bench-mqtt serve clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

demo: setup
	$(BIN)/zhizao demo --out zhizao-demo --db zhizao-demo/zhizao.duckdb

# Mosquitto, Chromium, CJK fonts, Java: installed as root (as .ci/run does), else checked with a clear message
system-deps:
	.ci/system-deps

lint: setup
	$(BIN)/ruff check src tests benchmarks

test: setup system-deps lint
	$(BIN)/python -m pytest -n 2

# the fuzz suite with many more examples (HYPOTHESIS_PROFILE=thorough; `make test` runs the quick profile)
test-fuzz: setup
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -n 2 tests/test_fuzz_inputs.py

bench: setup
	$(BIN)/python benchmarks/kpi_engine.py
	$(BIN)/python benchmarks/verify_vs_eemeter.py
	$(BIN)/python benchmarks/verify_programme.py

bench-server: setup
	$(BIN)/python benchmarks/server_load.py

bench-mqtt: setup
	$(BIN)/python benchmarks/mqtt_ingest.py

serve: setup
	$(BIN)/zhizao serve --db zhizao-demo/zhizao.duckdb

clean:
	rm -rf $(VENV) zhizao-demo .pytest_cache
