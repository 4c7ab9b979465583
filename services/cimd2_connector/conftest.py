"""The broker fixtures of tests/conftest.py (real RabbitMQ and Redis, a unique prefix per
session, clean-up at the end) for the connector tests that live beside the code."""

from tests.conftest import (  # noqa: F401 - fixtures and the clean-up hook are found by name
    amqp,
    publisher,
    pytest_sessionfinish,
    redis_client,
    settings,
)
