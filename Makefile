# The README's two commands. Both set everything up on a fresh clone: a virtualenv in .venv with the
# bounded dependencies of pyproject.toml and the jax, torch and export targets (torch pinned to its CPU build,
# 2.13.0+cpu here; tf-keras matching the installed TensorFlow, with --no-deps), re-installed when
# pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-keras3 setup clean matrix

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
# The harness is installed in .venv, not on PATH: say how to call it directly, whatever the run's outcome.
run: $(STAMP)
	$(BIN)/harness run cases $(if $(MODE),--mode $(MODE)); status=$$?; \
	echo "harness is in $(VENV): 'source $(VENV)/bin/activate' once per shell, then 'harness run PATH' (or type $(BIN)/harness)"; \
	exit $$status

# The harness's own tests, then the corpus on every target (tensorflow, jax, torch, tf-keras, saved-model,
# tflite, onnx), with pytest (two workers: one per core). `make test-keras3` runs the corpus on the three Keras 3
# targets only, and the converted and legacy ones on the cases that pin behaviour (faster).
EXPORT_CASES := cases/seed cases/hand-computed cases/gru/hand-computed cases/simple-rnn/hand-computed \
	cases/bidirectional/hand-computed cases/regressions cases/gru/regressions cases/simple-rnn/regressions \
	cases/bidirectional/regressions cases/targets cases/masking cases/stateful
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests cases --harness-target all

test-keras3: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests cases --harness-target tensorflow,jax,torch
	$(BIN)/python -m pytest -n 2 $(EXPORT_CASES) --harness-target tf-keras,saved-model,tflite,onnx

# Upgrade check across TensorFlow versions: one virtualenv each under .matrix/, reports there too; exits 1
# when a comparison finds a change beyond tolerance or a new failure. TARGETS: which targets (default
# tensorflow); DOCS=docs also writes the reports there (tracked), without machine-dependent figures.
TF ?= 2.15.1 2.21.0
TARGETS ?= tensorflow
DOCS ?=
matrix: $(STAMP)
	$(BIN)/python scripts/matrix.py $(TF) --targets "$(TARGETS)" $(if $(DOCS),--docs $(DOCS))

clean:
	rm -rf $(VENV) .pytest_cache .matrix
