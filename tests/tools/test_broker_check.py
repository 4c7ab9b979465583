"""`make run`'s broker check: instructions instead of a stack trace when nothing answers."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.tools.procs import ROOT, free_port


def run_check(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.tools.broker_check"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=30,
    )


def test_a_closed_port_gets_instructions_and_a_non_zero_exit():
    port = free_port()  # nothing listens there once the probe socket is closed
    result = run_check(RABBITMQ_URL=f"amqp://guest:hunter22@127.0.0.1:{port}/")
    assert result.returncode == 1
    err = result.stderr
    assert f"no RabbitMQ answers at amqp://guest:**********@127.0.0.1:{port}/" in err
    assert "docker compose -f compose/docker-compose.yml up -d rabbitmq redis" in err
    assert "rabbitmq-server -detached" in err and "redis-server --daemonize yes" in err
    assert "hunter22" not in err and "Traceback" not in err
    assert result.stdout == ""


def test_a_missing_redis_is_named_too():
    result = run_check(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 1
    assert "no Redis answers at redis://127.0.0.1:" in result.stderr
    assert "RabbitMQ" not in result.stderr.splitlines()[0]


def test_a_running_broker_passes_silently():
    result = run_check()
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
