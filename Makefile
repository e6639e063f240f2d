# Two set-up-and-go targets for a fresh clone (Python 3.11): `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Real-data tests read ../shared/data when it exists (skipped with a reason otherwise).
SHARED ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	# CPU build of torch, pinned; a GPU user installs their CUDA build of 2.13.0 first.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[demo,dev]"
	touch $@

demo: setup
	$(OFFLINE) $(BIN)/xstilts demo --output-dir runs/demo

test: setup
	$(OFFLINE) XSTILTS_SHARED_DATA=$${XSTILTS_SHARED_DATA:-$(SHARED)} $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup
	$(OFFLINE) $(BIN)/python benchmarks/bench_pairs.py $(if $(SHARED),--data-dir $(SHARED),)

clean:
	rm -rf $(VENV) runs .pytest_cache
