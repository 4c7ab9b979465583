"""Running `switchboard` commands as real processes in the test session's environment.

os.environ already carries the session's SWITCHBOARD_PREFIX, RABBITMQ_URL and REDIS_URL
(tests/conftest.py), so every child talks to this session's isolated exchanges and queues.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_cli(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """`switchboard <args>` as a child with piped stdout and stderr."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args,
        cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(*args: str, timeout: float = 30, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `switchboard <args>` to completion: (exit code, stdout, stderr)."""
    proc = await start_cli(*args, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"switchboard {' '.join(args)} did not finish within {timeout} s") from None
    return proc.returncode, out.decode(), err.decode()


async def read_line(stream: asyncio.StreamReader, timeout: float = 15) -> str:
    line = await asyncio.wait_for(stream.readline(), timeout)
    assert line, "the process closed its output"
    return line.decode().rstrip("\n")


def json_lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()
