"""JSON-lines logging: one object per line on stdout, secrets redacted (CONTRACT section 3).

Warnings and errors are rate-limited: the same message (same logger, same text before its
arguments) is written at most once a second, and the line that is written says how many were
left out since the last one (`suppressed`). A 10 s Redis outage used to write thousands of
identical lines per worker.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime

import orjson

from .redact import redact

# color_message is uvicorn's ANSI-coloured copy of msg: noise in JSON.
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        line = orjson.dumps(entry, default=str).decode()
        return redact(line)


class ConsoleFormatter(logging.Formatter):
    """`LOG_FORMAT=console`: one readable line per event for a terminal (`make run`):
    `12:00:01 router     info  started  queue=outbound.router`."""

    def format(self, record: logging.LogRecord) -> str:
        clock = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        service = getattr(record, "service", None) or record.name.rsplit(".", 1)[-1]
        extras = " ".join(
            f"{key}={value}" for key, value in record.__dict__.items()
            if key not in _RESERVED and not key.startswith("_") and key != "service"
        )  # fmt: skip
        line = f"{clock} {service:<18} {record.levelname.lower():<7} {record.getMessage()}"
        if extras:
            line += "  " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class OncePerSecond:
    """Lets one event through per `interval` seconds and counts the others.

    `allow()` returns None for an event to leave out, else the number left out since the
    last one let through (0 the first time)."""

    __slots__ = ("interval", "_last", "_suppressed", "_clock")

    def __init__(self, interval: float = 1.0, clock=time.monotonic):
        self.interval = interval
        self._clock = clock
        self._last = float("-inf")
        self._suppressed = 0

    def allow(self) -> int | None:
        now = self._clock()
        if now - self._last < self.interval:
            self._suppressed += 1
            return None
        suppressed, self._last, self._suppressed = self._suppressed, now, 0
        return suppressed


class RepeatFilter(logging.Filter):
    """At most one warning or error a second per (logger, message); the next one written
    carries `suppressed`, the count left out. Info and debug lines pass untouched."""

    MAX_KEYS = 1000  # message templates are few; a flood of distinct ones must not grow this forever

    def __init__(self, interval: float = 1.0, clock=time.monotonic):
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._limits: dict[tuple[str, object], OncePerSecond] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg)
        limit = self._limits.get(key)
        if limit is None:
            if len(self._limits) >= self.MAX_KEYS:
                self._limits.clear()
            limit = self._limits[key] = OncePerSecond(self.interval, self.clock)
        suppressed = limit.allow()
        if suppressed is None:
            return False
        if suppressed:
            record.suppressed = suppressed
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", fmt: str = "json", service: str | None = None) -> None:
    """Configure the root logger once per process."""
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif fmt == "console":
        handler.setFormatter(ConsoleFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if service:
        old_factory = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            record = old_factory(*args, **kwargs)
            record.service = service
            return record

        logging.setLogRecordFactory(factory)
