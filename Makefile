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

.PHONY: book run build publish test bench verify rehearse mutate mutate-sample venv clean

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

# Build the book, check it (every page, figures, linked result tables, vendored MathJax; nothing else from
# data/) and push _build/html to the $(BRANCH) branch of $(REMOTE) with ghp-import (lin_utils/publish.py).
# On GitHub, .github/workflows/book.yml deploys the same build to Pages instead.
REMOTE ?= origin
BRANCH ?= gh-pages
publish: book
	$(BIN)/python -m lin_utils.publish --remote $(REMOTE) --branch $(BRANCH) _build/html

# Re-run the notebooks of $(PROFILE) (or ONLY=name,name) in a scratch folder; compare with the committed tables.
verify: $(STAMP)
	$(BIN)/lin-utils book verify --profile $(PROFILE) $(if $(ONLY),--only $(ONLY),)

# One OpenMP/MKL thread per process: two xdist workers (and the notebook kernels one of them
# starts) on two cores; torch's default of one thread per core oversubscribes them and its
# spinning threads cost a third of the suite's CPU time (7 min 4 s -> 4 min 54 s, measured).
test: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadscope

# Dress rehearsal of the full profile, offline: tiny models under the paper's hub ids and revisions,
# hub datasets' stand-ins, every notebook at shrunk sizes, the book built (scripts/rehearse.py).
rehearse: $(STAMP)
	$(BIN)/python scripts/rehearse.py $(if $(ONLY),--only $(ONLY),)

bench: $(STAMP)
	$(BIN)/python scripts/bench_linearity.py

# Mutation testing of the engine, the cache, the claims and the computations behind the figures
# (mutmut 3; not in CI: hours on two cores). Resumes where it stopped; `mutmut browse` to inspect.
mutate: $(STAMP)
	$(BIN)/pip install -q mutmut==3.8.1
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/mutmut run $(if $(ONLY),"$(ONLY)",)
	$(BIN)/mutmut results

# The same on a seeded random sample of N mutants per module (default 200): an unbiased estimate of
# each module's score with its 95% interval, in about an hour here (scripts/mutation_sample.py).
mutate-sample: $(STAMP)
	$(BIN)/pip install -q mutmut==3.8.1
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PATH=$(abspath $(BIN)):$$PATH $(BIN)/python scripts/mutation_sample.py run --n $(or $(N),200)

clean:
	rm -rf _build book/notebooks/*.ipynb book/notebooks/.staging book/notebooks/.failed
