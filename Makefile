# The README's two commands. Both set everything up on a fresh clone: a virtualenv in .venv with the
# bounded dependencies of pyproject.toml and the jax, torch and export targets (torch pinned to its CPU build,
# 2.13.0+cpu here; tf-keras matching the installed TensorFlow, with --no-deps), re-installed when
# pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup clean matrix

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[jax,export]" "torch==2.13.0"
	$(BIN)/python -m pip install --quiet --no-deps "tf-keras==$$($(BIN)/python -c 'from importlib.metadata import version; print(version("tensorflow-cpu") if __import__("platform").machine() == "x86_64" else version("tensorflow"))')"
	touch $(STAMP)

setup: $(STAMP)

# Run the whole corpus and print the per-case lines and the summary; `make run MODE=all` for every
# execution mode (default: eager,graph).
MODE ?=
run: $(STAMP)
	$(BIN)/harness run cases $(if $(MODE),--mode $(MODE))

# The harness's own tests, then the corpus on every installed target, with pytest (two workers: one per core).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests cases --harness-target all

# Upgrade check across TensorFlow versions: one virtualenv each under .matrix/, report under docs/.
TF ?= 2.15.1 2.21.0
matrix: $(STAMP)
	$(BIN)/python scripts/matrix.py $(TF)

clean:
	rm -rf $(VENV) .pytest_cache .matrix
