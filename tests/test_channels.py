"""Channels file: every kind of broken file gives one line naming its path, exit 2, no broker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from services.core.channels import ChannelsError, parse_channels, transport_key
from services.core.redact import MASK, redact

ROOT = Path(__file__).resolve().parents[1]
U1 = "a86f686f-9168-4dd9-a03e-77f11b265b56"
U2 = "0b1e3c44-5d6f-4a1b-8c2d-3e4f5a6b7c8d"

BAD_FILES = [
    # label, file text, the line expected on stderr
    (
        "missing send_url",
        f"channels:\n  - uuid: {U1}\n    type: external\n    config: {{method: POST}}\n",
        "channels.yaml: channels[0].config.send_url: required for type external",
    ),
    (
        "bad uuid",
        "channels:\n  - uuid: not-a-uuid\n    type: external\n    config: {send_url: 'http://x'}\n",
        "channels.yaml: channels[0].uuid: not a valid uuid: 'not-a-uuid'",
    ),
    (
        "unknown type",
        f"channels:\n  - uuid: {U1}\n    type: carrier-pigeon\n",
        "channels.yaml: channels[0]: unknown type 'carrier-pigeon' (expected external, rest, smpp, ucp or cimd2)",
    ),
    (
        "duplicate uuid",
        f"channels:\n  - uuid: {U1}\n    type: external\n    config: {{send_url: 'http://x'}}\n"
        f"  - uuid: {U1}\n    type: external\n    config: {{send_url: 'http://y'}}\n",
        f"channels.yaml: channels[1].uuid: duplicate of channels[0] ({U1})",
    ),
    (
        "undefined smpp connection",
        f"channels:\n  - uuid: {U1}\n    type: smpp\n    connection: smsc-z\n",
        "channels.yaml: channels[0].connection: undefined SMPP connection 'smsc-z'",
    ),
    (
        "unset variable",
        f"channels:\n  - uuid: {U1}\n    type: external\n    config:\n      send_url: 'http://x'\n"
        "      send_authorization: ${SWITCHBOARD_TEST_SURELY_UNSET}\n",
        "channels.yaml: channels[0].config.send_authorization: environment variable SWITCHBOARD_TEST_SURELY_UNSET is not set",
    ),
    (
        "rest without its required key",
        f"channels:\n  - uuid: {U1}\n    type: rest\n    aggregator: twilio\n    config: {{account_sid: AC1}}\n",
        "channels.yaml: channels[0].config.auth_token: required for aggregator twilio",
    ),
    (
        "undefined ucp connection",
        f"channels:\n  - uuid: {U1}\n    type: ucp\n    connection: op-u\n",
        "channels.yaml: channels[0].connection: undefined UCP connection 'op-u'",
    ),
    (
        "channel of another protocol than its connection",
        f"channels:\n  - uuid: {U1}\n    type: cimd2\n    connection: op-u\n"
        "smsc_connections:\n  - {name: op-u, protocol: ucp, host: 127.0.0.1, port: 5000}\n",
        "channels.yaml: channels[0].connection: 'op-u' is a ucp connection, not cimd2",
    ),
    (
        "ucp window above 100",
        "channels: []\nsmsc_connections:\n  - {name: op-u, protocol: ucp, host: 127.0.0.1, port: 5000, window: 101}\n",
        "channels.yaml: smsc_connections[0].window: input should be less than or equal to 100",
    ),
    (
        "unknown smsc protocol",
        "channels: []\nsmsc_connections:\n  - {name: op-x, protocol: x25, host: 127.0.0.1, port: 5000}\n",
        "channels.yaml: smsc_connections[0]: unknown protocol 'x25' (expected smpp, ucp or cimd2)",
    ),
    (
        "cimd2 connection without a port",
        "channels: []\nsmsc_connections:\n  - {name: op-c, protocol: cimd2, host: 127.0.0.1}\n",
        "channels.yaml: smsc_connections[0].port: required",
    ),
    (
        "connection name used twice across the two lists",
        "channels: []\nsmpp_connections:\n  - {name: op, host: 127.0.0.1, system_id: s}\n"
        "smsc_connections:\n  - {name: op, protocol: ucp, host: 127.0.0.1, port: 5000}\n",
        "channels.yaml: smsc_connections[0].name: duplicate connection 'op'",
    ),
    ("not yaml", "channels: [\n", "channels.yaml: line 2: not valid YAML"),
    ("not a mapping", "- 1\n- 2\n", "channels.yaml: the file must be a mapping with a 'channels' list"),
]


@pytest.mark.parametrize("label,text,expected", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_channels_file_is_reported_by_path(label, text, expected):
    with pytest.raises(ChannelsError) as info:
        parse_channels(text, "channels.yaml")
    assert any(line.startswith(expected) or expected in line for line in info.value.problems), info.value.problems
    assert all(line.startswith("channels.yaml: ") for line in info.value.problems)


def test_every_problem_is_reported_at_once():
    text = (
        f"channels:\n  - uuid: bad\n    type: external\n    config: {{}}\n"
        f"  - uuid: {U2}\n    type: nope\n"
    )
    with pytest.raises(ChannelsError) as info:
        parse_channels(text)
    joined = "\n".join(info.value.problems)
    assert "channels[0].uuid" in joined and "channels[0].config.send_url" in joined and "channels[1]" in joined


@pytest.mark.parametrize("label,text,expected", BAD_FILES[:6], ids=[c[0] for c in BAD_FILES[:6]])
def test_cli_check_exits_2_without_touching_the_broker(tmp_path, label, text, expected):
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    env = {**os.environ, "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/"}
    env.pop("SWITCHBOARD_TEST_SURELY_UNSET", None)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "channels", "check", str(path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )
    assert result.returncode == 2, result
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_worker_refuses_to_start_on_a_broken_file(tmp_path):
    """A service exits 2 before connecting (the broker URL here points nowhere)."""
    path = tmp_path / "channels.yaml"
    path.write_text(BAD_FILES[0][1])
    env = {**os.environ, "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/", "SWITCHBOARD_CHANNELS": str(path)}
    code = "from services.core.service import run_service\nasync def setup(rt): pass\nrun_service('probe', setup)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert "channels[0].config.send_url: required for type external" in result.stderr


def test_example_file_checks_ok():
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "channels", "check", "compose/channels.example.yaml"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 3 channels, 1 SMPP connections")


def test_channels_list_prints_receive_urls():
    env = {**os.environ, "SWITCHBOARD_PUBLIC_URL": "https://sb.example/"}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "channels", "list", "compose/channels.example.yaml"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"https://sb.example/c/ex/{U1}/receive" in result.stdout
    assert f"https://sb.example/c/twilio/{U2}/status" in result.stdout


def test_smsc_connections_of_every_protocol():
    registry = parse_channels(
        textwrap.dedent(
            f"""
            channels:
              - {{uuid: {U1}, type: ucp, connection: op-u, address: "1234"}}
              - {{uuid: {U2}, type: cimd2, connection: op-c}}
            smsc_connections:
              - {{name: op-u, protocol: ucp, host: 127.0.0.1, port: 5000, username: weni, password: ucp-secret-1}}
              - {{name: op-c, protocol: cimd2, host: 127.0.0.1, port: 9971, username: foo, password: cimd-secret-2}}
              - {{name: op-s, host: 127.0.0.1, system_id: sys}}
            """
        )
    )
    assert transport_key(registry.get(U1)) == "ucp.op-u" and transport_key(registry.get(U2)) == "cimd2.op-c"
    assert registry.transports() == ["ucp.op-u", "cimd2.op-c", "smpp.op-s"]
    ucp, cimd2, smpp = (registry.connections[n] for n in ("op-u", "op-c", "op-s"))
    assert (ucp.protocol, ucp.window, ucp.keepalive_s, ucp.registered_delivery) == ("ucp", 10, 30, True)
    assert (cimd2.protocol, cimd2.window) == ("cimd2", 1)
    assert smpp.protocol == "smpp" and smpp.port == 2775
    assert [c.uuid for c in registry.for_connection("op-c")] == [U2]
    assert "ucp-secret-1" not in redact("login ucp-secret-1") and "cimd-secret-2" not in redact("x cimd-secret-2")


def test_interpolation_lookup_and_secrets(monkeypatch):
    monkeypatch.setenv("SB_TEST_TOKEN", "tok-very-secret-42")
    registry = parse_channels(
        textwrap.dedent(
            f"""
            channels:
              - uuid: {U1.upper()}
                type: external
                config:
                  send_url: "https://p.example/send?key=${{SB_TEST_TOKEN}}"
                  max_length: "320"
              - uuid: {U2}
                type: smpp
                connection: a
            smpp_connections:
              - {{name: a, host: 127.0.0.1, system_id: sys, password: pw-secret-9}}
            """
        )
    )
    channel = registry.get(U1)
    assert channel is not None and channel.config.max_length == 320
    assert channel.config.send_url == "https://p.example/send?key=tok-very-secret-42"
    assert transport_key(channel) == "external"
    assert transport_key(registry.get(U2)) == "smpp.a"
    assert [c.uuid for c in registry.for_connection("a")] == [U2]
    assert redact("calling https://p.example/send?key=tok-very-secret-42 now") == f"calling https://p.example/send?key={MASK} now"
    assert "pw-secret-9" not in redact("bind password=pw-secret-9")
