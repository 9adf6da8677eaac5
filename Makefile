# The two front-door commands: `make demo` and `make test`. Both create .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint typecheck bench fuzz clean

install: $(VENV)/.installed

# torch is pinned before the project so that pip never pulls a newer, multi-GB GPU build.
# The distributed (Ray) and federated (Flower) extras are installed too: their executors
# are tested in CI.
$(VENV)/.installed: pyproject.toml examples/modelhub-sklearn-runtime/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,s3,distributed,federated]'
	$(BIN)/python -m pip install --quiet -e examples/modelhub-sklearn-runtime
	touch $@

demo: install
	$(BIN)/python scripts/demo.py

# A persona learning from corrections, and refusing a poisoned batch (docs/personas.md).
.PHONY: persona-demo
persona-demo: install
	$(BIN)/python scripts/persona_demo.py

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: install
	$(BIN)/mypy

# The 20 slowest tests are printed, so a CI log shows where the suite's time goes.
test: lint typecheck
	$(BIN)/python -m pytest -q --durations=20

bench: install
	bash bench/run_all.sh

# Coverage-guided fuzzing of every parser family (atheris), FUZZ_SECONDS each; not part of
# `make test`. New inputs that grow coverage go to .fuzz/, the committed seeds stay as they are.
FUZZ_SECONDS ?= 60
fuzz: install
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	@set -e; for harness in fuzz/fuzz_*.py; do \
		family=$$(basename $$harness .py | sed 's/^fuzz_//'); \
		mkdir -p .fuzz/$$family; \
		echo "== $$family"; \
		$(BIN)/python $$harness .fuzz/$$family fuzz/corpus/$$family \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1; \
	done

clean:
	rm -rf $(VENV) .demo .demo-persona .fuzz .pytest_cache .mypy_cache .ruff_cache .hypothesis
