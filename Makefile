# Every target does its own set-up: a fresh clone needs only Python 3.11+ and a broker.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test chaos lint lint-imports run demo-send demo-mo bench topology clean schemas

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The long fault tests (@pytest.mark.chaos: Redis outages, kills, a 3-node RabbitMQ cluster).
chaos: install
	$(BIN)/python -m pytest -q -s -m chaos $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check services tests bench

# The layering contracts in pyproject.toml ([tool.importlinter]); `make test` runs them first.
lint-imports: install
	$(BIN)/lint-imports --no-cache

schemas: install
	$(BIN)/python -m services.core.schemas --write
	$(BIN)/python -m services.core.asyncapi --write

topology: install
	$(BIN)/switchboard topology

# The whole gateway on this machine: demo channels, the SMSC simulator and the demo sink.
DEMO_CHANNELS := compose/channels.demo.yaml
DEMO_SINK_PORT := 9090
DEMO_CHANNEL := 8d3f4a52-6c1e-4b7a-9e0d-2f5a7c9b1e11

# One readable line per event on a terminal (LOG_FORMAT=console), JSON lines elsewhere. The
# example flow engine (examples/flow_engine.py) answers every message that comes in.
run: install
	@$(BIN)/python -m services.tools.broker_check
	$(BIN)/switchboard topology --channels $(DEMO_CHANNELS)
	@if [ -t 1 ]; then : "$${LOG_FORMAT:=console}"; fi; : "$${LOG_FORMAT:=json}"; export LOG_FORMAT; \
	$(BIN)/python examples/flow_engine.py & FLOW=$$!; trap 'kill $$FLOW 2>/dev/null' EXIT; \
	SEND_ALLOW_PRIVATE=true SWITCHBOARD_CHANNELS=$(DEMO_CHANNELS) \
		$(BIN)/switchboard run all --channels $(DEMO_CHANNELS) --demo-sink $(DEMO_SINK_PORT)

# With `make run` going in another terminal: one message to the demo external channel.
demo-send: install
	$(BIN)/switchboard send --channel $(DEMO_CHANNEL) --to +250788123123 --text "Hello from make demo-send" --wait --timeout 30

# With `make run` going: a message from a phone, injected at the SMSC simulator (HTTP control
# POST /mo); the example flow engine answers it over SMPP and the dashboard shows it all.
DEMO_SMSC_CONTROL := http://127.0.0.1:2776
demo-mo: install
	$(BIN)/python -m services.tools.demo_mo --control $(DEMO_SMSC_CONTROL) --from +250788123123 --to 1234 --text "Hello from make demo-mo"

clean:
	rm -rf $(VENV) .pytest_cache

# Scenarios: inbound, outbound, rest, smpp, ucp, cimd2, ... (bench/scenarios/). BENCH="outbound smpp" picks some.
bench: install
	$(BIN)/python -m bench $(BENCH)
