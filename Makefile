# Every target does its own set-up: a fresh clone needs only Python 3.11+ and a broker.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint run bench topology clean schemas

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check services tests bench

schemas: install
	$(BIN)/python -m services.core.schemas --write

topology: install
	$(BIN)/switchboard topology

clean:
	rm -rf $(VENV) .pytest_cache

# Scenarios: inbound, outbound, rest, smpp (bench/scenarios/). BENCH="outbound smpp" picks some.
bench: install
	$(BIN)/python -m bench $(BENCH)
