# Two entry points; each creates or updates .venv and installs the project into it first.
#   make bench  - run the benchmark suites on the embedded default (CPU device, digits data)
#   make test   - ruff, mypy, then the project's own tests (all three layers: tests/unit, tests/plugin, tests/e2e)
#   make test-fast - the unit layer alone (tests/unit: in-process, no pytester, no subprocess), under a minute
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test test-fast install clean

install: $(STAMP)

# torch first and pinned: installing anything that depends on torch first pulls a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/pytest bench_suites/ $(ARGS)

# Two xdist workers: the suite takes ~9 min on 2 cores (its cases share the device lock and host
# gate like any other parallel run).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m mypy
	$(BIN)/pytest tests/ -n 2 $(ARGS)

# The unit layer alone, for the edit-test loop; tests/plugin and tests/e2e run in `make test`.
test-fast: $(STAMP)
	$(BIN)/pytest tests/unit $(ARGS)

clean:
	rm -rf $(VENV) .prunebench .benchmarks .pytest_cache .mypy_cache
