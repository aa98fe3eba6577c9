# The two quick-start commands (`make demo`, `make test`) set themselves up:
# they create .venv and install the project on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint check bench bench-emulator bench-load bench-efficiency \
	bench-overhead bench-memory bench-data-api clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "legacy-bridge needs Python 3.11 or newer (PY=$(PY))"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/legacy-bridge demo

test: $(STAMP)
	$(BIN)/pytest

# the long runs: 5,000 random statements against PostgreSQL, and the like
test-slow: $(STAMP)
	$(BIN)/pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

bench-emulator: $(STAMP)
	$(BIN)/python bench/emulator_paging.py --write-readme

bench: bench-efficiency bench-overhead bench-memory bench-load bench-emulator bench-data-api

bench-efficiency: $(STAMP)
	$(BIN)/python bench/upstream_efficiency.py --write-readme

bench-overhead: $(STAMP)
	$(BIN)/python bench/overhead.py --write-readme

bench-memory: $(STAMP)
	$(BIN)/python bench/memory.py --write-readme

bench-load: $(STAMP)
	$(BIN)/python bench/load.py --write-readme

bench-data-api: $(STAMP)
	$(BIN)/python bench/data_api.py --write-readme

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .hypothesis
