# The two commands of the README: `make demo` (the main job) and `make test`.
# For contributors: `make lint` (ruff + import layers) and `make test-fast` (everything not marked slow).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU build first so no extra pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,dev,lab,analysis,serve,ray,gym]"
	# NeMo Gym's /verify models for the serve tests: its wheel asks for Python >= 3.13.14 and a training stack;
	# the pydantic models it needs import on 3.10+ with these four small packages.
	$(BIN)/pip install -q --no-deps --ignore-requires-python nemo-gym==0.7.0 itsdangerous httptools yappi pydot
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rewardsmith lab --preset quick

test: $(STAMP)
	$(BIN)/python -m pytest -q

# What does not train a model or start a cluster/server process (see the `slow` marker in pyproject.toml).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# Lint, formatting and the import layers; the pre-commit hooks run the same three tools.
lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/lint-imports --no-logo

bench: $(STAMP)
	$(BIN)/python bench/verify_throughput.py
	$(BIN)/python bench/verifier_table.py
	$(BIN)/python bench/shaping_throughput.py
	$(BIN)/python bench/ray_scaling.py
	$(BIN)/python bench/code_sandbox.py
	$(BIN)/python bench/serve_load.py

clean:
	rm -rf $(VENV) runs .pytest_cache
