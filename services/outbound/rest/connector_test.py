"""`switchboard run rest [--aggregator NAME]`: which adapters a worker runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .connector import adapters_for

ROOT = Path(__file__).resolve().parents[3]


def test_all_six_by_default_and_the_named_ones_otherwise():
    assert [a.transport for a in adapters_for()] == [
        "rest.twilio", "rest.vonage", "rest.infobip", "rest.africastalking", "rest.kannel", "rest.generic",
    ]  # fmt: skip
    assert [a.aggregator for a in adapters_for(["kannel", "twilio", "kannel"])] == ["kannel", "twilio"]


def test_unknown_aggregator_is_refused():
    with pytest.raises(ValueError, match="unknown aggregator\\(s\\): sinch"):
        adapters_for(["twilio", "sinch"])


@pytest.mark.parametrize("argv", [["-m", "services.outbound.rest"], ["-m", "services.cli", "run", "rest"]])
def test_command_exits_2_on_an_unknown_aggregator_before_touching_the_broker(argv):
    env = {**os.environ, "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/"}
    result = subprocess.run([sys.executable, *argv, "--aggregator", "sinch"], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "unknown aggregator(s): sinch" in result.stderr
