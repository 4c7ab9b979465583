"""Every queue worker stops cleanly on SIGTERM: exit 0 within 10 s (CONTRACT section 2).

The inbound edge, the SMPP connector, the simulator and `run all` have their own such tests
beside their other cases; these are the HTTP connectors and the router, started as an
operator starts them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = """
channels:
  - uuid: a86f686f-9168-4dd9-a03e-77f11b265b56
    type: external
    config: {send_url: "http://127.0.0.1:9/send"}
front_doors:
  - {name: rp, kind: external, token: t0ken-value, channel: a86f686f-9168-4dd9-a03e-77f11b265b56, callback_base: "http://127.0.0.1:9/c/ex/x"}
"""


@pytest.mark.parametrize(
    "module", ["services.outbound.router", "services.outbound.external", "services.outbound.rest", "services.outbound.callbacks"]
)
def test_worker_exits_0_on_sigterm(tmp_path, module):
    channels = tmp_path / "channels.yaml"
    channels.write_text(CHANNELS)
    env = {**os.environ, "SWITCHBOARD_CHANNELS": str(channels), "LOG_LEVEL": "INFO"}
    proc = subprocess.Popen(
        [sys.executable, "-m", module], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if '"msg":"started"' in line.replace(" ", ""):
                break
        assert any('"started"' in line for line in lines), lines
        proc.terminate()
        started = time.monotonic()
        assert proc.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
