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
# The edge the tests run: the dev build `unit` makes anyway, with debug
# assertions, so an overflow in the codec fails the oracle instead of wrapping.
EDGE_DEV := $(TARGET_DIR)/debug/canopy-edge
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

# Clippy's lints, run as the workspace's crates compile: clippy-driver
# stands in for rustc on them (as `cargo clippy` has it do for a check) and
# compiles them too, so the lints cost no second pass over the dependencies.
# Every cargo command of `make test` sets the same, or the workspace's crates
# would compile again.
CLIPPY_DRIVER := $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
LINTED := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

# Every crate and test of the workspace, dev profile, linted: what the tests
# run. --all-targets resolves features as cargo test does (dev-dependencies
# included), so the tests' own build shares its dependencies.
.PHONY: dev-build
dev-build: console
	$(LINTED) $(CARGO) build --workspace --all-targets

# The web console (functions/api/web): npm packages from the committed lock,
# built into web/dist, which the api crate embeds (functions/api/build.rs).
WEB := functions/api/web
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json $(WEB)/scripts -type f 2>/dev/null)

$(WEB)/node_modules/.installed: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The console's API types are generated from the API's document in the build.
$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(WEB_SOURCES) functions/api/openapi.json
	cd $(WEB) && npm run --silent build

.PHONY: console
console: $(WEB)/dist/index.html ## build the web console (the API binary embeds it)

# Debian's Chromium for the browser test (@playwright/test drives it; no browser download).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null

# ---- tests ---------------------------------------------------------------------

.PHONY: test
test: fmt-check console lint unit edge-arm-test console-test conformance oracle oracle-opendbc python-tests ## everything CI runs (clippy's lints with the build, the fuzz seeds with the tests)

.PHONY: fmt-check
fmt-check:
	$(CARGO) fmt --all -- --check
	cd fuzz && $(CARGO) fmt -- --check

.PHONY: clippy
clippy: ## clippy alone, without building (make test lints as it builds)
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: unit
unit: venv dev-build ## Rust unit and integration tests (these start moto server and MQTT brokers on loopback)
	@# The integration tests run canopy-edge, canopy-local and the functions' binaries, which cargo test does not build: dev-build does.
	CANOPY_PYTHON=$(PY) CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(LINTED) $(CARGO) test --workspace
	@# Latency bounds, alone: beside the other tests they would measure the machine's load.
	CANOPY_PYTHON=$(PY) CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(LINTED) $(CARGO) test --workspace --test it -- --ignored --nocapture

.PHONY: oracle
oracle: EDGE := $(EDGE_DEV)
oracle: venv dev-build ## the codec against cantools: the corpus, then our own DBC files
	ORACLE_PYTHON=$(PY) $(ORACLE_DIR)/run_oracle.sh '$(EDGE) decode'
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	$(PY) $(ORACLE_DIR)/gen_cases.py dbc "$$work/cases" --frames 300 --seed 20241123 2>/dev/null; \
	for exp in "$$work"/cases/*.expected.jsonl; do \
	  name=$$(basename "$$exp" .expected.jsonl); \
	  $(EDGE) decode --dbc dbc/$$name.dbc --candump "$$work/cases/$$name.log" --format jsonl > "$$work/$$name.jsonl"; \
	  printf '%s: ' "dbc/$$name.dbc"; $(PY) $(ORACLE_DIR)/compare.py "$$exp" "$$work/$$name.jsonl" | tail -n1; \
	done
	@# Real-world problems loaded leniently, against cantools' non-strict mode (tests/oracle/gen_cases.py --non-strict).
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	$(PY) tests/oracle/gen_cases.py tests/oracle/dbc/lenient "$$work/cases" --non-strict --frames 200 --seed 20261127 2>/dev/null; \
	for exp in "$$work"/cases/*.expected.jsonl; do \
	  name=$$(basename "$$exp" .expected.jsonl); \
	  $(EDGE) decode --dbc tests/oracle/dbc/lenient/$$name.dbc --candump "$$work/cases/$$name.log" --format jsonl 2>/dev/null > "$$work/$$name.jsonl"; \
	  printf '%s (non-strict): ' "lenient/$$name.dbc"; $(PY) tests/oracle/compare.py "$$exp" "$$work/$$name.jsonl" | tail -n1; \
	done

# opendbc (MIT, from PyPI): the DBC files of production cars that open-source
# driving tools use, the kind users bring on their first day.
OPENDBC_VERSION := 0.3.1
OPENDBC := $(CANOPY_CACHE)/opendbc-$(OPENDBC_VERSION)

$(OPENDBC)/.installed:
	rm -rf $(OPENDBC) && mkdir -p $(OPENDBC)
	$(VENV)/bin/pip download --quiet --disable-pip-version-check --no-deps -d $(OPENDBC) opendbc==$(OPENDBC_VERSION)
	cd $(OPENDBC) && $(PY) -m zipfile -e opendbc-$(OPENDBC_VERSION)-py3-none-any.whl wheel
	touch $@

.PHONY: oracle-opendbc
oracle-opendbc: EDGE := $(EDGE_DEV)
oracle-opendbc: venv dev-build $(OPENDBC)/.installed ## real cars' DBC files: how many load, strict and lenient; the lenient decode against cantools non-strict
	@dbcs=$(OPENDBC)/wheel/opendbc/dbc; strict=0; lenient=0; total=0; : > $(OPENDBC)/empty.log; \
	for f in $$dbcs/*.dbc; do total=$$((total+1)); \
	  $(EDGE) decode --strict --dbc $$f --candump $(OPENDBC)/empty.log --format summary >/dev/null 2>&1 && strict=$$((strict+1)); \
	  $(EDGE) decode --dbc $$f --candump $(OPENDBC)/empty.log --format summary >/dev/null 2>&1 && lenient=$$((lenient+1)); \
	done; echo "opendbc $(OPENDBC_VERSION): $$total files; $$strict load strictly, $$lenient leniently"; \
	test $$lenient -eq $$total
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	$(PY) tests/oracle/gen_cases.py $(OPENDBC)/wheel/opendbc/dbc "$$work/cases" --non-strict --frames 10 --seed 20261127 2>/dev/null; \
	for exp in "$$work"/cases/*.expected.jsonl; do \
	  name=$$(basename "$$exp" .expected.jsonl); \
	  $(EDGE) decode --dbc $(OPENDBC)/wheel/opendbc/dbc/$$name.dbc --candump "$$work/cases/$$name.log" --format jsonl 2>/dev/null > "$$work/$$name.jsonl"; \
	  $(PY) tests/oracle/compare.py "$$exp" "$$work/$$name.jsonl" | tail -n1 | sed "s|^|$$name: |" >> "$$work/results"; \
	done; \
	awk '{p += $$2; f += $$4} END {printf "opendbc (non-strict): %d passed, %d failed\n", p, f; exit (f > 0)}' "$$work/results"

.PHONY: console-test
console-test: venv dev-build $(CHROMIUM) ## the console: Vitest, then Chromium against the local stack with a simulated fleet
	cd $(WEB) && npx vitest run
	cd $(WEB) && CANOPY_LOCAL=$(LOCAL) CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server CHROMIUM=$(CHROMIUM) npx playwright test

.PHONY: conformance
conformance: venv dev-build ## a client driven by openapi.json (schemathesis, every check) against the local stack with a fleet: zero failures
	CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(PY) tests/conformance/run.py --local $(LOCAL) --schemathesis $(VENV)/bin/schemathesis

.PHONY: python-tests
python-tests: venv dev-build ## the files Canopy writes, read by pyarrow and DuckDB
	CANOPY_EDGE=$(EDGE_DEV) $(PY) -m pytest -q tests/python

# ---- fuzzing -------------------------------------------------------------------
# cargo-fuzz (libFuzzer, AddressSanitizer) over every parser input reaches.
# What each target checks is fuzz/targets (a crate of the workspace); the
# tests replay every seed through it, so CI needs no sanitizer build and
# stays deterministic. Fuzzing itself is `make fuzz`: it needs nightly
# flags, which RUSTC_BOOTSTRAP lets the stable toolchain take. Seeds are
# committed in fuzz/seeds, beside the repository's own DBC files, sample
# events and the regression tests' inputs (each crash found is one); what a
# run adds stays in fuzz/corpus. Paths are from fuzz/. api drives the real
# router over the memory adapters; rule_sql the local stack's IoT rule engine.
FUZZ_TARGETS := candump dbc raw_parquet telemetry api rule_sql can_logs j1939
FUZZ_SEEDS = seeds/$$t $$(case $$t in dbc) echo ../dbc ../tests/oracle/dbc ../tests/oracle/dbc/lenient;; raw_parquet) echo ../shared/src/format/lake/testdata;; telemetry) echo ../events;; esac)
FUZZ_SECONDS ?= 600
CARGO_FUZZ := $(CANOPY_CACHE)/cargo-fuzz/bin/cargo-fuzz
FUZZ := cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO_FUZZ) run -O

$(CARGO_FUZZ):
	$(CARGO) install --quiet --locked cargo-fuzz --version 0.13.2 --root $(CANOPY_CACHE)/cargo-fuzz

.PHONY: fuzz
fuzz: $(CARGO_FUZZ) ## each fuzz target for FUZZ_SECONDS (default 600), growing fuzz/corpus
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t fuzz/seeds/$$t; \
	  ( $(FUZZ) $$t corpus/$$t $(FUZZ_SEEDS) -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 ); \
	done

# ---- benchmarks ------------------------------------------------------------------

.PHONY: bench-decode
bench-decode: venv edge-release ## Canopy's decoder beside cantools; raw -> decoded Parquet time and memory
	$(PY) tests/bench/decode.py --edge $(EDGE)

.PHONY: bench-storage
bench-storage: venv edge-release ## bytes per CAN frame of raw, decoded and each rollup tier, and their largest columns
	$(PY) tests/bench/storage.py --edge $(EDGE)

.PHONY: bench-decoder
bench-decoder: venv ## the decoder handler on 10 MB and 200 MB raw files against moto: time and memory
	$(CARGO) build --release -p canopy-edge -p canopy-decoder
	$(PY) tests/bench/decoder.py --target $(TARGET_DIR)/release --moto $(VENV)/bin/moto_server

.PHONY: bench-edge
bench-edge: venv edge-dist edge-arm ## edge throughput through spool -> sealed Parquet, peak RSS, binary size; the ARM builds under qemu-user
	$(CARGO) build --release -p canopy-edge
	$(PY) tests/bench/edge.py --edge $(EDGE) --dist $(TARGET_DIR)/dist/canopy-edge \
	  --cross aarch64:$(TARGET_DIR)/aarch64-unknown-linux-gnu/dist/canopy-edge:qemu-aarch64-static:/usr/aarch64-linux-gnu \
	  --cross armv7:$(TARGET_DIR)/armv7-unknown-linux-gnueabihf/dist/canopy-edge:qemu-arm-static:/usr/arm-linux-gnueabihf

.PHONY: edge-dist
edge-dist: ## the edge agent as shipped: optimized for size, LTO, without the laptop tools (target/dist/canopy-edge)
	$(CARGO) build --profile dist -p canopy-edge --no-default-features

# ---- the edge on ARM: vehicles and gateways ----------------------------------------
# rustup's standard library for each target, Debian's cross compilers as the
# linkers and for the C that ring and zstd build, and qemu-user to run what
# they make (-L: the target's C library, from the cross packages).
ARM_TARGETS := aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
CROSS_ENV := \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER='qemu-aarch64-static -L /usr/aarch64-linux-gnu' \
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc \
	CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar \
	CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER='qemu-arm-static -L /usr/arm-linux-gnueabihf'
CROSS_TOOLS := /usr/bin/aarch64-linux-gnu-gcc /usr/bin/arm-linux-gnueabihf-gcc /usr/bin/qemu-aarch64-static /usr/bin/qemu-arm-static

# One install for whichever of them is missing (&: a grouped target).
$(CROSS_TOOLS) &:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user-static >/dev/null

.PHONY: cross-tools
cross-tools: $(CROSS_TOOLS)
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu && rustup target list --installed | grep -qx armv7-unknown-linux-gnueabihf \
	  || rustup target add $(ARM_TARGETS)

.PHONY: edge-arm-test
edge-arm-test: cross-tools ## the edge's tests built for aarch64 and run under qemu-user, as vehicles get it (without the laptop tools)
	$(CROSS_ENV) $(CARGO) test -p canopy-edge --no-default-features --target aarch64-unknown-linux-gnu

.PHONY: edge-arm
edge-arm: cross-tools ## canopy-edge as shipped to ARM vehicles (dist profile): target/<triple>/dist/canopy-edge for aarch64 and armv7
	for t in $(ARM_TARGETS); do $(CROSS_ENV) $(CARGO) build --profile dist -p canopy-edge --no-default-features --target $$t; done
	@for t in $(ARM_TARGETS); do ls -l $(TARGET_DIR)/$$t/dist/canopy-edge; done

.PHONY: clean
clean: ## remove build output (not the tool cache)
	$(CARGO) clean

# ---- AWS: lint, build, deploy, and the local Lambda emulator ---------------------

SAM_VENV ?= $(CANOPY_CACHE)/venv-sam
CHECKOV_VENV ?= $(CANOPY_CACHE)/venv-checkov
SAM := $(SAM_VENV)/bin/sam
# SAM finds cargo-lambda, and cargo-lambda finds zig, on PATH.
SAM_PATH := $(SAM_VENV)/bin:$(PATH)

$(SAM_VENV)/.installed: infra/requirements-sam.txt
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(CHECKOV_VENV)/.installed: infra/requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

.PHONY: lint
lint: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## cfn-lint, sam validate --lint and checkov on template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(SAM) validate --lint
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet

.PHONY: build
build: $(SAM_VENV)/.installed console ## sam build: every function for arm64 with cargo-lambda, no Docker
	rustup target add aarch64-unknown-linux-gnu
	PATH=$(SAM_PATH) $(SAM) build --beta-features

.PHONY: deploy
deploy: build ## sam deploy (guided the first time on this machine)
	@if [ -f $(CANOPY_CACHE)/deployed ]; then \
	  PATH=$(SAM_PATH) $(SAM) deploy; \
	else \
	  PATH=$(SAM_PATH) $(SAM) deploy --guided && touch $(CANOPY_CACHE)/deployed; \
	fi

.PHONY: bench-telemetry
bench-telemetry: venv ## the telemetry handler against moto: messages/s and AWS API calls per 1,000 messages
	@# The dev build: moto (Python) is the bottleneck, and the test build's dependencies are optimized.
	$(CARGO) build --workspace --bins
	$(PY) tests/bench/telemetry.py --moto $(VENV)/bin/moto_server --driver $(TARGET_DIR)/debug/bench-telemetry

# ---- the local stack -------------------------------------------------------------

LOCAL := $(TARGET_DIR)/debug/canopy-local
DEMO_ARGS ?=

.PHONY: local-build
local-build: console
	$(CARGO) build -p canopy-edge -p canopy-local -p canopy-ingest

.PHONY: demo
demo: venv local-build ## a simulated fleet through the whole pipeline on this machine (DEMO_ARGS=--once to exit after the summary)
	CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(LOCAL) demo $(DEMO_ARGS)

.PHONY: up
up: venv local-build ## the local stack alone (moto, MQTT broker, the template's wiring, the API on :8080) until Ctrl-C
	CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(LOCAL) up

.PHONY: watch
watch: $(SAM_VENV)/.installed ## cargo lambda watch against the running local stack (start `make up` first)
	@test -f target/canopy-local.env || { echo "no local stack: run 'make up' in another terminal first"; exit 1; }
	PATH=$(SAM_PATH) cargo lambda watch --env-file target/canopy-local.env

.PHONY: bench-local
bench-local: venv local-build ## latency on the local stack, p50/p95: publish -> state, upload -> decoded
	CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(LOCAL) latency --mqtt-port 0 --api-port 0

.PHONY: cost
cost: venv ## the standard workload's dollars per vehicle-month by part, measured on the local stack (release build; COST_ARGS=--vehicles 5)
	$(CARGO) build --release -p canopy-local -p canopy-edge
	CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(TARGET_DIR)/release/canopy-local cost $(COST_ARGS)

# The template's functions (their BuildProperties Binary).
LAMBDAS := $(shell sed -n 's/^ *Binary: *//p' template.yaml)

.PHONY: bench-lambdas
bench-lambdas: venv dev-build cross-tools ## each function's bootstrap size (arm64, release: what sam build ships) and init time (x86 release, with the stack's environment)
	$(CARGO) build --release $(addprefix --bin ,$(LAMBDAS))
	CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(LOCAL) init-time --bin-dir $(TARGET_DIR)/release --mqtt-port 0 --api-port 0
	$(CROSS_ENV) $(CARGO) build --release --target aarch64-unknown-linux-gnu $(addprefix --bin ,$(LAMBDAS))
	@echo "arm64 bootstraps (MB):"; for f in $(LAMBDAS); do \
	  printf '  %-12s %6.2f\n' $$f "$$(stat -c %s $(TARGET_DIR)/aarch64-unknown-linux-gnu/release/$$f | awk '{print $$1 / 1e6}')"; done

.PHONY: bench-fleet
bench-fleet: venv ## fleet-wide reads at 1,000, 10,000 and 100,000 vehicles (memory) and 10,000 (moto): p50/p95, table requests (release build)
	$(CARGO) build --release -p canopy-local
	CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(TARGET_DIR)/release/canopy-local bench-fleet

.PHONY: bench-api
bench-api: venv ## charts of a 100 Hz signal to 2,000 points (a day, a month, a page of eight) raw and under S3's latency, and the API function's first chart after a cold start (release builds)
	$(CARGO) build --release --bin api
	$(CARGO) build --release -p canopy-local
	CANOPY_MOTO_SERVER=$(VENV)/bin/moto_server $(TARGET_DIR)/release/canopy-local bench-api \
	  --api-bin $(TARGET_DIR)/release/api --mqtt-port 0 --api-port 0
