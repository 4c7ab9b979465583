"""services.core.service.run_service as a process: it starts, logs, and exits 0 when stopped.

Guards a bug that crashed every worker right after it started (a log call passed `service`
as an extra while setup_logging already puts `service` on every record).
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

from tests.tools.procs import ROOT

WORKER = """
from services.core.service import run_service

async def setup(runtime):
    runtime.stopping.set()

run_service("probe", setup)
"""


def test_a_worker_starts_logs_and_stops_with_exit_0(tmp_path):
    channels = tmp_path / "channels.yaml"
    channels.write_text("channels: []\n")
    result = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=ROOT, capture_output=True, text=True, timeout=30,
        env={**os.environ, "SWITCHBOARD_CHANNELS": str(channels)},
    )
    assert result.returncode == 0, result.stderr
    entries = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {"started", "stopping"} <= {e["msg"] for e in entries if e.get("service") == "probe"}
