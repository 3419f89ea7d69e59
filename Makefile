# SpectralForge: `make demo` and `make test` work on a fresh clone (they set up .venv first).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

export SPECTRAL_DATA_ROOT := $(abspath $(or $(SPECTRAL_DATA_ROOT),data))
export ENMAP_ARCHIVE := $(abspath $(or $(ENMAP_ARCHIVE),$(SPECTRAL_DATA_ROOT)/archive))
export DESIS_ARCHIVE := $(abspath $(or $(DESIS_ARCHIVE),$(SPECTRAL_DATA_ROOT)/archive_desis))
export DAGSTER_HOME := $(abspath $(or $(DAGSTER_HOME),$(SPECTRAL_DATA_ROOT)/.dagster))

# 44 EnMAP products: 20 of the demo visit model's anchors (16 label sites about 42 km apart, so
# each label dataset's blocked split has blocks for val and test; the antimeridian), 24 at random
DEMO_TILES ?= 44
DEMO_TILE_SIZE ?= 384
DEMO_FAULTS ?= 6
DEMO_DESIS_TILES ?= 10
DEMO_DESIS_TILE_SIZE ?= 320
UI_PORT ?= 3000

.PHONY: setup demo ui test lint format bench clean-data

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # first, pinned: the CPU wheel on disk, not gigabytes of CUDA
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.dev.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

demo: setup $(DAGSTER_HOME)/dagster.yaml
	@if [ ! -d "$(ENMAP_ARCHIVE)" ]; then \
	  echo "simulating $(DEMO_TILES) products into $(SPECTRAL_DATA_ROOT)/archive"; \
	  $(BIN)/spectralforge simulate --out $(SPECTRAL_DATA_ROOT) --tiles $(DEMO_TILES) \
	    --tile-size $(DEMO_TILE_SIZE) --faults $(DEMO_FAULTS) --seed 2 --visit-model demo --delivery tar; \
	fi
	@if [ ! -d "$(DESIS_ARCHIVE)" ]; then \
	  echo "simulating $(DEMO_DESIS_TILES) DESIS-like products into $(SPECTRAL_DATA_ROOT)/archive_desis"; \
	  $(BIN)/spectralforge simulate --sensor desis --out $(SPECTRAL_DATA_ROOT) --tiles $(DEMO_DESIS_TILES) \
	    --tile-size $(DEMO_DESIS_TILE_SIZE) --seed 2 --visit-model demo; \
	fi
	$(BIN)/python -W ignore -m pipelines.demo

# the workspace names the code location `spectralforge`, as the demo's runs do (-m would name it
# pipelines.definitions, and the UI would not find their location to re-execute them)
ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python deploy/serve.py $(BIN)/dagster dev -w deploy/workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

test: setup
	$(BIN)/pytest -q -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python benchmarks/catalog.py
	$(BIN)/python benchmarks/plan.py

clean-data:
	rm -rf $(SPECTRAL_DATA_ROOT)
