"""Issue 13, item 6: deep YAML, rate-limited error logs, the dedupe store's 503 logs a line."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis
import yaml
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.core.channels import ChannelsError, parse_channels
from services.core.logs import OncePerSecond, RepeatFilter
from services.core.service import Runtime
from tests.tools.procs import free_port, run_cli

DEEP = "channels: " + "[" * 5000 + "\n"
GOOD = {"channels": [{"uuid": "8d3f4a52-6c1e-4b7a-9e0d-2f5a7c9b1e11", "type": "external",
                      "config": {"send_url": "http://127.0.0.1:9/send"}}]}  # fmt: skip


@pytest.mark.parametrize("text", [DEEP, "channels:\n  - " + "[" * 900 + "]" * 900 + "\n", "{a: " * 3000])
def test_deeply_nested_yaml_is_one_clear_problem(text):
    with pytest.raises(ChannelsError) as caught:
        parse_channels(text, "/etc/switchboard/channels.yaml")
    assert caught.value.problems == ["channels.yaml: file: nested too deeply"]


async def test_channels_check_on_deep_yaml_exits_2_with_one_line(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP)
    code, out, err = await run_cli("channels", "check", str(path))
    assert (code, out, err) == (2, "", "deep.yaml: file: nested too deeply\n")


def test_sighup_with_deep_yaml_keeps_the_old_channels_with_one_line(tmp_path, settings, caplog):
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    runtime = Runtime("reload", settings.model_copy(update={"channels_file": str(path)}), parse_channels(path.read_text()))
    before = runtime.registry
    path.write_text(DEEP)
    with caplog.at_level(logging.INFO):
        runtime.reload()
    assert runtime.registry is before
    [record] = [r for r in caplog.records if r.name == "services.core.service"]
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert record.problems == ["channels.yaml: file: nested too deeply"]


def test_once_per_second_counts_what_it_leaves_out():
    now = [100.0]
    limit = OncePerSecond(1.0, clock=lambda: now[0])
    assert limit.allow() == 0
    assert [limit.allow() for _ in range(5)] == [None] * 5
    now[0] += 1.0
    assert limit.allow() == 5
    assert limit.allow() is None


def test_repeat_filter_writes_one_line_a_second_per_message_with_a_count():
    now = [0.0]
    lines: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record)

    handler = Collect()
    handler.addFilter(RepeatFilter(clock=lambda: now[0]))
    logger = logging.getLogger("tests.repeat")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for second in range(10):  # 10 s of an outage, 300 failures a second
            now[0] = float(second)
            for i in range(300):
                logger.error("handler failed; message requeued", extra={"msg_id": i})
                logger.warning("could not write the sent record", extra={"msg_id": i})
                logger.info("message requeued")  # info is never held back
    finally:
        logger.removeHandler(handler)
    errors = [r for r in lines if r.levelno == logging.ERROR]
    warnings = [r for r in lines if r.levelno == logging.WARNING]
    assert len(errors) == len(warnings) == 10
    assert [getattr(r, "suppressed", 0) for r in errors] == [0] + [299] * 9
    assert sum(r.levelno == logging.INFO for r in lines) == 3000


async def test_dedupe_store_unavailable_answers_503_and_logs_a_line(caplog):
    from services.inbound.common import BrokerUnavailable
    from services.inbound.dedupe import Deduplicator, StoreUnavailable

    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", retry=Retry(NoBackoff(), 0))  # nobody listens
    dedupe = Deduplicator(client, "t.")
    published = []

    async def publish():
        published.append(1)

    try:
        with caplog.at_level(logging.WARNING), pytest.raises(StoreUnavailable) as caught:
            await dedupe.publish_once(dedupe.key("c", "tel:+1", "hi"), "uuid-1", 60, publish)
    finally:
        await client.aclose()
    assert isinstance(caught.value, BrokerUnavailable) and published == []
    [record] = [r for r in caplog.records if r.name == "services.inbound.dedupe"]
    assert record.getMessage() == "de-duplication store unavailable; answering 503"
    assert "ConnectionError" in record.error
