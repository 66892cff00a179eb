# pesaswitch: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run lint format test test-sqlite test-postgres test-sdk bench bench-webhooks chaos clean docs docs-build

# The SDK (sdk/python) is a package of its own; installed beside the gateway so that its
# tests can start `pesaswitch serve` from the same venv.
$(STAMP): pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./sdk/python
	touch $(STAMP)

install: $(STAMP)

# Sandbox accounts may send webhooks to local receivers when trying things out.
run: install
	PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS=$${PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS:-true} \
		$(BIN)/pesaswitch serve --bootstrap

lint: install
	$(BIN)/ruff check pesaswitch tests bench chaos examples sdk/python
	$(BIN)/ruff format --check pesaswitch tests bench chaos examples sdk/python
	$(BIN)/mypy
	cd sdk/python && ../../$(BIN)/mypy
	$(BIN)/bandit -c pyproject.toml -r pesaswitch -q
	$(BIN)/python scripts/audit_deps.py

format: install
	$(BIN)/ruff format pesaswitch tests bench chaos examples sdk/python
	$(BIN)/ruff check --fix pesaswitch tests bench chaos examples sdk/python

test: lint docs-build test-sqlite test-postgres test-sdk

# Two pytest processes per pass (pytest-xdist), each with its own database (and its own
# PostgreSQL cluster), a test module kept whole in one (--dist loadfile: module fixtures
# start their servers once). TEST_WORKERS=0 runs a pass in one process.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile

# Each test runs once per database it can tell apart: the SQLite pass leaves out what runs
# on PostgreSQL only (the chaos short profile, schemathesis), the PostgreSQL pass what
# never reaches the database (marked db_agnostic by tests/conftest.py: pure functions,
# the simulator alone, the docs walkthroughs, whose gateway is SQLite whatever --db says).

test-sqlite: install
	bash scripts/ensure-php.sh
	bash scripts/ensure-node.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest --db sqlite -m 'not postgres_only' $(PYTEST_PARALLEL)

test-postgres: install
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-php.sh
	bash scripts/ensure-node.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest --db postgres -m 'not db_agnostic' $(PYTEST_PARALLEL)

# Once, not per database: the SDK's tests start their own `pesaswitch serve` (SQLite,
# embedded simulator) and see only its HTTP API. sdk/python/pyproject.toml configures them.
test-sdk: install
	cd sdk/python && ../../$(BIN)/python -m pytest

# The documentation site (mkdocs.yml, docs/): strict, so a broken link fails `make test`.
docs-build: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

DOCS_ADDR ?= 127.0.0.1:8001
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr $(DOCS_ADDR)

# The API benchmark (bench/run.py): gateway, worker, simulator and receiver as processes.
# Not part of `make test`. Override e.g. BENCH_ARGS='--db postgres --api-procs 2 --workers 2'.
BENCH_ARGS ?= --db sqlite --api-procs 1 --workers 1
bench: install
	case '$(BENCH_ARGS)' in *postgres*) bash scripts/ensure-postgres.sh ;; esac
	bash scripts/ensure-wrk.sh
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-webhooks: install
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m bench.webhook_throughput --db sqlite --workers 1
	$(BIN)/python -m bench.webhook_throughput --db postgres --workers 1
	$(BIN)/python -m bench.webhook_throughput --db postgres --workers 2

# The chaos run (chaos/run.py, docs/chaos.md): 10,000 payments + 1,000 payouts under
# SIGKILLs, a PostgreSQL restart and Daraja/receiver faults, on both databases. Not part
# of `make test` (its short profile is: tests/e2e/test_chaos.py). Override e.g.
# CHAOS_ARGS='--payments 2000 --seed 42'.
CHAOS_ARGS ?=
chaos: install
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m chaos.run --db postgres $(CHAOS_ARGS)
	$(BIN)/python -m chaos.run --db sqlite $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var site .mypy_cache .ruff_cache .pytest_cache
