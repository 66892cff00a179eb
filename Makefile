# pesaswitch: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run lint format test test-sqlite test-postgres clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/pesaswitch serve --bootstrap

lint: install
	$(BIN)/ruff check pesaswitch tests
	$(BIN)/ruff format --check pesaswitch tests
	$(BIN)/mypy

format: install
	$(BIN)/ruff format pesaswitch tests
	$(BIN)/ruff check --fix pesaswitch tests

test: lint test-sqlite test-postgres

test-sqlite: install
	$(BIN)/python -m pytest --db sqlite

test-postgres: install
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m pytest --db postgres

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
