"""JSON-lines logging: one object per line on stdout, secrets redacted (CONTRACT section 3)."""

from __future__ import annotations

import logging
import sys
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
