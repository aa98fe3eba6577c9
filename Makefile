# The two quick-start commands (`make demo`, `make test`) set themselves up:
# they create .venv and install the project on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions of everything installed (`make lock` refreshes them); the image
# installs requirements-image.lock, the runtime subset of the same pins.
LOCK := requirements.lock
LOCK_FLAGS := --universal --python-version 3.11 --quiet --custom-compile-command 'make lock'

.PHONY: demo test test-slow test-newest lock lint check bench bench-emulator bench-load bench-efficiency \
	bench-overhead bench-memory bench-data-api bench-course-progress bench-profile manifests clean

$(STAMP): pyproject.toml $(LOCK)
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "legacy-bridge needs Python 3.11 or newer (PY=$(PY))"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) -e '.[dev]'
	touch $(STAMP)

# Resolve the newest releases the bounds in pyproject.toml allow, and pin them.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --upgrade $(LOCK_FLAGS) -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --extra all --constraint $(LOCK) $(LOCK_FLAGS) \
		--generate-hashes -o requirements-image.lock
	touch $(LOCK)

# The whole suite on the newest releases, ignoring the lock, in a venv of its own:
# breakage from an upstream release is seen here before `make lock` takes it in.
test-newest:
	rm -rf .venv-newest
	$(PY) -m venv .venv-newest
	.venv-newest/bin/python -m pip install --quiet --upgrade -e '.[dev]'
	.venv-newest/bin/pytest -p no:cacheprovider

demo: $(STAMP)
	$(BIN)/legacy-bridge demo

test: $(STAMP)
	$(BIN)/pytest

# the long runs: 5,000 random statements against PostgreSQL, and the like
test-slow: $(STAMP)
	$(BIN)/pytest -m slow

# The sidecar manifest is the chart rendered with the sidecar example values; CI fails
# when it is stale (tests/test_deploy.py). Helm's own engine, no helm binary needed.
manifests: $(STAMP)
	$(BIN)/python deploy/helm/render.py -f deploy/helm/examples/sidecar.yaml --validate \
		--out deploy/kubernetes/legacy-client-with-bridge.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

bench-emulator: $(STAMP)
	$(BIN)/python bench/emulator_paging.py --write-readme

bench: bench-efficiency bench-overhead bench-memory bench-load bench-emulator bench-data-api \
	bench-course-progress

bench-efficiency: $(STAMP)
	$(BIN)/python bench/upstream_efficiency.py --write-readme

bench-overhead: $(STAMP)
	$(BIN)/python bench/overhead.py --write-readme

# py-spy samples of the served proxy under the distinct load (README, Benchmarks)
bench-profile: $(STAMP)
	$(BIN)/python bench/cpu_profile.py

bench-memory: $(STAMP)
	$(BIN)/python bench/memory.py --write-readme

bench-load: $(STAMP)
	$(BIN)/python bench/load.py --write-readme

bench-data-api: $(STAMP)
	$(BIN)/python bench/data_api.py --write-readme

bench-course-progress: $(STAMP)
	$(BIN)/python bench/course_progress.py --write-readme

clean:
	rm -rf $(VENV) .venv-newest .data .pytest_cache .mypy_cache .ruff_cache .hypothesis
