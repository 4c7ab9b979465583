"""Shared fixtures: a real RabbitMQ and Redis, and a unique prefix per test session.

The broker is found as DEVELOPERS.md says: `RABBITMQ_URL` if set, else localhost:5672 if it
answers, else a testcontainers RabbitMQ (for machines with Docker). Redis the same way.
Every exchange, queue and Redis key this session makes carries `SWITCHBOARD_PREFIX`, and
is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid

import pytest

PREFIX = f"t{uuid.uuid4().hex[:8]}."


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _find_rabbitmq() -> tuple[str, object | None]:
    if os.environ.get("RABBITMQ_URL"):
        return os.environ["RABBITMQ_URL"], None
    if _answers("127.0.0.1", 5672):
        return "amqp://guest:guest@127.0.0.1:5672/", None
    from testcontainers.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer("rabbitmq:3.13-management").start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
    return f"amqp://guest:guest@{host}:{port}/", container


def _find_redis() -> tuple[str, object | None]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    if _answers("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0", None
    from testcontainers.redis import RedisContainer

    container = RedisContainer("redis:7").start()
    return f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0", container


_RABBIT_URL, _RABBIT_CONTAINER = _find_rabbitmq()
_REDIS_URL, _REDIS_CONTAINER = _find_redis()
# Set before any test imports settings, so subprocesses inherit the same isolation.
os.environ["RABBITMQ_URL"] = _RABBIT_URL
os.environ["REDIS_URL"] = _REDIS_URL
os.environ["SWITCHBOARD_PREFIX"] = PREFIX
os.environ.setdefault("SEND_ALLOW_PRIVATE", "true")
os.environ.setdefault("LOG_LEVEL", "INFO")
# `run all` starts a dashboard: on any free port unless a test picks one, never on 8090.
os.environ.setdefault("DASHBOARD_PORT", "0")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return _RABBIT_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _REDIS_URL


@pytest.fixture(scope="session")
def prefix() -> str:
    return PREFIX


@pytest.fixture
def settings():
    from services.core.settings import Settings

    return Settings()


@pytest.fixture(scope="session")
async def amqp():
    """A session-wide broker connection with the default topology declared."""
    from services.core.broker import connect, declare_topology
    from services.core.settings import Settings

    connection = await connect(Settings(), attempts=3)
    await declare_topology(connection, Settings())
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
async def publisher(amqp):
    from services.core.broker import Publisher
    from services.core.settings import Settings

    pub = await Publisher(amqp, Settings()).start()
    yield pub
    await pub.close()


@pytest.fixture
async def redis_client():
    import redis.asyncio as aioredis

    client = aioredis.from_url(_REDIS_URL)
    yield client
    await client.aclose()


def _cleanup_broker() -> None:
    """Delete every queue and exchange named with this session's prefix."""
    import asyncio

    import aio_pika

    async def go():
        names: set[str] = set()
        if shutil.which("rabbitmqctl") and _RABBIT_CONTAINER is None:
            out = subprocess.run(
                ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, timeout=60
            ).stdout
            names = {line.strip() for line in out.splitlines() if line.strip().startswith(PREFIX)}
        from services.core.broker import delete_topology
        from services.core.settings import Settings

        connection = await aio_pika.connect(_RABBIT_URL)
        await delete_topology(connection, Settings(), sorted(names))
        await connection.close()

    try:
        asyncio.run(go())
    except Exception as exc:  # clean-up must not turn a green run red
        print(f"broker clean-up incomplete: {exc}")


def _cleanup_redis() -> None:
    import redis

    try:
        client = redis.from_url(_REDIS_URL)
        keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception as exc:
        print(f"redis clean-up incomplete: {exc}")


def pytest_sessionfinish(session, exitstatus):
    _cleanup_broker()
    _cleanup_redis()
    for container in (_RABBIT_CONTAINER, _REDIS_CONTAINER):
        if container is not None:
            container.stop()
