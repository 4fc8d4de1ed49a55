# Developer commands.  Every target creates .venv when it is missing (scripts/bootstrap).
#
#   make demo       start the emulator and run a publish/subscribe demo against it
#                   (installs only the emulator's requirements and runs from the source
#                   folders: no build, no test tools, no npm)
#   make test       run the whole test suite with branch coverage over both packages
#   make test-target  run tests/examples against an emulator started as another process,
#                   through pytest --appsync-target (scripts/test_against_target)
#   make lint       ruff check + ruff format --check
#   make types      mypy --strict (configured in pyproject.toml)
#   make coverage   make test, then require 100% branch coverage of the protocol cores and the catalogue
#   make lean       check the client-only install (no extras) in a fresh venv
#   make ci         what CI runs (.ci/run: a fresh venv, lint, types, test, lean)
#
# `make setup` installs `-e .[test]`: the client, the `emulator` and `pydantic` extras and
# the test tools.
#
# VENV=path selects another virtual environment; PYTEST_ARGS=... adds pytest arguments.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup run demo test test-target lint format types coverage lean ci clean

setup:
	scripts/bootstrap $(VENV)

run demo:
	scripts/bootstrap --demo $(VENV)
	PYTHONPATH=src:emulator $(PY) -m appsync_emulator --demo

test: setup
	$(PY) -m pytest --cov --cov-branch --cov-report=term-missing $(PYTEST_ARGS)

test-target: setup
	scripts/test_against_target $(PY)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

types: setup
	$(PY) -m mypy

coverage: test
	$(PY) -m coverage report --include='*/appsync_events/protocol/*,*/appsync_emulator/server_protocol.py,*/appsync_emulator/catalogue.py,*/appsync_emulator/validation.py' --fail-under=100

lean:
	scripts/check_lean_install

ci:
	bash .ci/run

clean:
	rm -rf .coverage .coverage.* htmlcov .pytest_cache .mypy_cache .ruff_cache .hypothesis
