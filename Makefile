# Two entry points: `make book` (the main job) and `make test`. Both set up .venv idempotently.
PYTHON ?= python3
PROFILE ?= cpu
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The local data mirror, when it sits beside the checkout (CI, developer machines).
export LIN_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: book run build test bench verify venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

book: run build

run: $(STAMP)
	$(BIN)/lin-utils book run --profile $(PROFILE) $(if $(FORCE),--force,)

build: $(STAMP)
	$(BIN)/lin-utils book build

# Re-run the notebooks of $(PROFILE) (or ONLY=name,name) in a scratch folder; compare with the committed tables.
verify: $(STAMP)
	$(BIN)/lin-utils book verify --profile $(PROFILE) $(if $(ONLY),--only $(ONLY),)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python scripts/bench_linearity.py

clean:
	rm -rf _build book/notebooks/*.ipynb book/notebooks/.staging book/notebooks/.failed
