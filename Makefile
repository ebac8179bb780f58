# Canopy: the verbs a user types. `make help` lists them.
#
# Tools the tests need (cantools, pyarrow, DuckDB, ...) go into a virtualenv
# under $(CANOPY_CACHE), outside the clone, so later runs reuse it. Cargo's
# target directory honours CARGO_TARGET_DIR (.ci/run points it at a cache).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CANOPY_CACHE ?= $(HOME)/.cache/canopy
VENV ?= $(CANOPY_CACHE)/venv
PY := $(VENV)/bin/python
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
EDGE := $(TARGET_DIR)/release/canopy-edge
# The team kit's oracle beside the repository when present, else the copy in tests/oracle.
ORACLE_DIR ?= $(firstword $(wildcard $(CURDIR)/../shared/oracle) $(CURDIR)/tests/oracle)

.PHONY: help
help: ## this list
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# ---- set-up --------------------------------------------------------------------

$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## the Python tools of tests and benchmarks

.PHONY: edge-release
edge-release:
	$(CARGO) build --release -p canopy-edge

# ---- tests ---------------------------------------------------------------------

.PHONY: test
test: fmt-check clippy unit oracle python-tests ## everything CI runs

.PHONY: fmt-check
fmt-check:
	$(CARGO) fmt --all -- --check

.PHONY: clippy
clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: unit
unit: venv ## Rust unit and integration tests (these start moto server on loopback)
	CANOPY_PYTHON=$(PY) CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(CARGO) test --workspace

.PHONY: oracle
oracle: venv edge-release ## the codec against cantools: the corpus, then our own DBC files
	ORACLE_PYTHON=$(PY) $(ORACLE_DIR)/run_oracle.sh '$(EDGE) decode'
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	$(PY) $(ORACLE_DIR)/gen_cases.py dbc "$$work/cases" --frames 300 --seed 20241123 2>/dev/null; \
	for exp in "$$work"/cases/*.expected.jsonl; do \
	  name=$$(basename "$$exp" .expected.jsonl); \
	  $(EDGE) decode --dbc dbc/$$name.dbc --candump "$$work/cases/$$name.log" --format jsonl > "$$work/$$name.jsonl"; \
	  printf '%s: ' "dbc/$$name.dbc"; $(PY) $(ORACLE_DIR)/compare.py "$$exp" "$$work/$$name.jsonl" | tail -n1; \
	done

.PHONY: python-tests
python-tests: venv edge-release ## the files Canopy writes, read by pyarrow and DuckDB
	CANOPY_EDGE=$(EDGE) $(PY) -m pytest -q tests/python

# ---- benchmarks ------------------------------------------------------------------

.PHONY: bench-decode
bench-decode: venv edge-release ## Canopy's decoder beside cantools; raw -> decoded Parquet time and memory
	$(PY) tests/bench/decode.py --edge $(EDGE)

.PHONY: bench-decoder
bench-decoder: venv ## the decoder handler on 10 MB and 200 MB raw files against moto: time and memory
	$(CARGO) build --release -p canopy-edge -p canopy-decoder
	$(PY) tests/bench/decoder.py --target $(TARGET_DIR)/release --moto $(VENV)/bin/moto_server

.PHONY: bench-edge
bench-edge: venv edge-dist ## edge throughput through spool -> sealed Parquet, peak RSS, binary size
	$(CARGO) build --release -p canopy-edge
	$(PY) tests/bench/edge.py --edge $(EDGE) --dist $(TARGET_DIR)/dist/canopy-edge

.PHONY: edge-dist
edge-dist: ## the edge agent as shipped: optimized for size, LTO (target/dist/canopy-edge)
	$(CARGO) build --profile dist -p canopy-edge

.PHONY: clean
clean: ## remove build output (not the tool cache)
	$(CARGO) clean
