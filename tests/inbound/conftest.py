"""The inbound edge in-process: a started Edge (real RabbitMQ publisher, real Redis) under its
real ASGI app, an httpx client on it, and the channels the tests use."""

from __future__ import annotations

import httpx
import pytest
import yaml

from services.core.channels import parse_channels
from services.core.service import Runtime
from services.core.settings import Settings
from services.inbound.app import create_app
from services.inbound.edge import Edge

PUBLIC = "https://edge.example"
SECRET = "rcv-s3cret-value"
SOAP_RESPONSE = "<?xml version=\"1.0\"?><return>0</return>"
# Named like courier's handler tests: "us" is its default EX channel (country US, tel).
CHANNELS: dict[str, dict] = {
    "us": {"uuid": "8eb23e93-5ecb-45ba-b726-3b064e0c56ab", "country": "US", "address": "2020"},
    "gm": {"uuid": "1b1e1f84-cc2f-4c46-9a4e-0a1b6c1d0001", "country": "GM"},
    "custom": {
        "uuid": "1b1e1f84-cc2f-4c46-9a4e-0a1b6c1d0002", "country": "US",
        "config": {"mo_from_field": "from_number", "mo_text_field": "messageText", "mo_date_field": "timestamp"},
    },
    "soap": {
        "uuid": "1b1e1f84-cc2f-4c46-9a4e-0a1b6c1d0003", "country": "US",
        "config": {"from_xpath": "//source", "text_xpath": "//content", "mo_response": SOAP_RESPONSE,
                   "mo_response_content_type": "text/xml"},
    },
    "ext": {"uuid": "1b1e1f84-cc2f-4c46-9a4e-0a1b6c1d0004", "country": "GM", "schemes": ["ext"]},
    "secret": {"uuid": "1b1e1f84-cc2f-4c46-9a4e-0a1b6c1d0005", "country": "RW", "config": {"receive_secret": SECRET}},
    "dedupe": {"uuid": "1b1e1f84-cc2f-4c46-9a4e-0a1b6c1d0006", "country": "RW", "config": {"dedupe_window_s": 60}},
    "nocountry": {"uuid": "1b1e1f84-cc2f-4c46-9a4e-0a1b6c1d0007"},
}
REST_UUID = "1b1e1f84-cc2f-4c46-9a4e-0a1b6c1d0099"
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


def channels_yaml() -> str:
    channels = []
    for name, spec in CHANNELS.items():
        config = {"send_url": "http://127.0.0.1:9/send", **spec.get("config", {})}
        entry = {"uuid": spec["uuid"], "name": name, "type": "external", "config": config}
        for key in ("country", "address", "schemes"):
            if key in spec:
                entry[key] = spec[key]
        channels.append(entry)
    channels.append({"uuid": REST_UUID, "type": "rest", "aggregator": "twilio",
                     "config": {"account_sid": "AC1", "auth_token": "tok-for-tests"}})
    return yaml.safe_dump({"channels": channels})


def path(channel: str, action: str = "receive") -> str:
    return f"/c/ex/{CHANNELS[channel]['uuid']}/{action}"


@pytest.fixture(scope="session")
def inbound_settings() -> Settings:
    return Settings(SWITCHBOARD_PUBLIC_URL=PUBLIC)


@pytest.fixture(scope="session")
async def edge(amqp, inbound_settings):
    """A started Edge over the test channels (the `amqp` fixture declared the topology)."""
    the_edge = Edge(Runtime("inbound-test", inbound_settings, parse_channels(channels_yaml(), "channels.yaml")))
    await the_edge.start()
    yield the_edge
    await the_edge.close()


@pytest.fixture(scope="session")
async def client(edge):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(edge)), base_url=PUBLIC, timeout=15
    ) as http:
        yield http
