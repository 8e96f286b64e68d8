# The two commands of the README: `make demo` (the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU build first so no extra pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,dev,lab,analysis,serve,ray,gym]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rewardsmith lab --preset quick

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Layer contracts (pyproject.toml [tool.importlinter]; docs/architecture.md).
lint: $(STAMP)
	$(BIN)/lint-imports --no-logo

bench: $(STAMP)
	$(BIN)/python bench/verify_throughput.py
	$(BIN)/python bench/shaping_throughput.py
	$(BIN)/python bench/ray_scaling.py
	$(BIN)/python bench/code_sandbox.py

clean:
	rm -rf $(VENV) runs .pytest_cache
