"""schemas/asyncapi.yaml is generated from services/core/asyncapi.py, valid for the AsyncAPI
initiative's own parser (@asyncapi/parser on Node), and complete (CONTRACT sections 4 and 12)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.core.asyncapi import PATH, document, to_yaml
from services.core.broker import EXCHANGES, queue_bindings
from services.core.settings import Settings

TOOL = Path(__file__).resolve().parents[1] / "tools" / "asyncapi"


def test_the_committed_document_is_generated_from_the_code():
    assert PATH.read_text() == to_yaml(), "schemas/asyncapi.yaml is stale: run make schemas"


@pytest.fixture(scope="module")
def validate():
    """`node validate.mjs FILE`, with @asyncapi/parser installed from the lock file when missing."""
    assert shutil.which("node") and shutil.which("npm"), "Node 20 and npm are needed (.ci/run installs them)"
    if not (TOOL / "node_modules" / "@asyncapi" / "parser").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TOOL, check=True, timeout=300)

    def run(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["node", str(TOOL / "validate.mjs"), str(path)], capture_output=True, text=True, timeout=120)

    return run


def test_the_asyncapi_parser_accepts_the_document(validate):
    result = validate(PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID: AsyncAPI 3.0.0" in result.stdout


def test_the_asyncapi_parser_rejects_a_broken_document(validate, tmp_path):
    doc = document()
    first = next(iter(doc["operations"].values()))
    first["channel"] = {"$ref": "#/channels/no-such-channel"}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    result = validate(broken)
    assert result.returncode == 1 and "INVALID" in result.stdout


def test_every_exchange_and_default_queue_is_described():
    doc = document()
    bindings = [c["bindings"]["amqp"] for c in doc["channels"].values()]
    exchanges = {b["exchange"]["name"] for b in bindings if b["is"] == "routingKey"}
    assert exchanges == set(EXCHANGES)
    queues = {b["queue"]["name"] for b in bindings if b["is"] == "queue"}
    for name in queue_bindings(Settings.model_construct()):
        shown = ("retry.{delay_ms}" if name.startswith("retry.")
                 else "transport.rest.{aggregator}" if name.startswith("transport.rest.") else name)  # fmt: skip
        assert shown in queues, name
    assert "transport.smpp.{connection}" in queues
    for name, channel in doc["channels"].items():
        assert "#" not in name and "?" not in name
        if channel["bindings"]["amqp"]["is"] == "queue" and name != "dashboard.feeds":
            assert "Queue type: quorum" in channel["description"] and "Arguments:" in channel["description"]


def test_publishers_say_persist_except_heartbeats():
    doc = document()
    sends = {name: op for name, op in doc["operations"].items() if op["action"] == "send"}
    assert len(sends) == 9
    for name, op in sends.items():
        mode = op["bindings"]["amqp"].get("deliveryMode")
        assert mode == (1 if name.startswith("sms.health") else 2), (name, mode)


def test_bodies_are_the_pydantic_models():
    schemas = document()["components"]["schemas"]
    for model in ("SendRequest", "StatusUpdate", "InboundMessage", "ChannelEvent", "ChannelLog", "Heartbeat"):
        assert model in schemas, model
    assert set(schemas["StatusUpdate"]["properties"]["status"]["enum"]) == {"queued", "wired", "sent", "delivered", "errored", "failed"}
