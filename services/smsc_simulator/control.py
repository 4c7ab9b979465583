"""HTTP control interface of the SMSC simulator (plain asyncio, JSON in and out), the same
for every protocol.

=========================  =================================================================
``GET /health``            ``{"status": "ok"}``
``GET /stats``             counters (:meth:`SmscSimulator.stats`)
``GET /messages``          reassembled messages received (``?limit=N``: the last N)
``DELETE /messages``       forget received messages and raw submits
``GET /submits``           raw submits (SMPP submit_sm, UCP O/51 fields, CIMD2 03 parameters;
                           octet strings as hex; ``?limit=N``)
``GET /faults``            current faults
``POST /faults``           ``{"tps_limit", "error_by_prefix", "no_response", "drop_after",
                           "receipt_rules"}`` (any subset), ``"clear": true`` to reset first,
                           ``"unbind": true`` (or a system_id) to unbind from the SMSC side
                           (UCP and CIMD2: the connection is closed)
``POST /mo``               ``{"from", "to", "text", "coding": "auto", "split": "udh",
                           "system_id"?}`` -> ``{"statuses": [...], "status_names": [...]}``;
                           409 when no receiver is bound (``status_names``: SMPP command
                           status names; UCP ``ACK`` or the NACK's EC; CIMD2 ``OK`` or 900)
=========================  =================================================================

One request per connection (``Connection: close``); bodies up to 1 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .base import NoReceiverError

if TYPE_CHECKING:
    from .base import SimulatorBase

log = logging.getLogger("switchboard.smsc_simulator.control")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 413: "Payload Too Large", 500: "Internal Server Error"}
MAX_BODY = 1024 * 1024


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.hex() if isinstance(v, bytes | bytearray) else v) for k, v in record.items()}


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ControlServer:
    def __init__(self, sim: SimulatorBase, host: str, port: int):
        self.sim = sim
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, payload = 500, {"error": "internal error"}
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length") or 0)
            if length > MAX_BODY:
                raise HttpError(413, "body too large")
            body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
            status, payload = await self._route(method.upper(), target, body)
        except HttpError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
            status, payload = 400, {"error": f"bad request: {exc}"}
        except Exception:
            log.exception("control request failed")
        data = json.dumps(payload, default=str).encode()
        head_out = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                    "Connection: close\r\n\r\n").encode()
        with contextlib.suppress(Exception):
            writer.write(head_out + data)
            await writer.drain()
            writer.close()

    async def _route(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        query = parse_qs(url.query)
        sim = self.sim
        allowed = {
            "/health": ("GET",), "/stats": ("GET",), "/messages": ("GET", "DELETE"),
            "/submits": ("GET",), "/faults": ("GET", "POST"), "/mo": ("POST",),
        }
        if path not in allowed:
            raise HttpError(404, f"no such resource {path}")
        if method not in allowed[path]:
            raise HttpError(405, f"{method} not allowed on {path}")
        limit = int(query.get("limit", ["0"])[0] or 0)
        if path == "/health":
            return 200, {"status": "ok", "port": sim.port}
        if path == "/stats":
            return 200, sim.stats()
        if path == "/messages":
            if method == "DELETE":
                sim.reset()
                return 200, {"status": "reset"}
            items = list(sim.messages)[-limit:] if limit else list(sim.messages)
            return 200, {"messages": items, "count": len(items)}
        if path == "/submits":
            items = list(sim.submits)[-limit:] if limit else list(sim.submits)
            return 200, {"submits": [_jsonable(r) for r in items], "count": len(items)}
        data = self._json(body)
        if path == "/faults":
            if method == "GET":
                return 200, sim.faults.to_dict()
            unbind = data.pop("unbind", None)
            clear = bool(data.pop("clear", False))
            try:
                faults = sim.set_faults(clear=clear, **data)
            except (ValueError, TypeError) as exc:
                raise HttpError(400, str(exc)) from None
            result: dict[str, Any] = {"faults": faults.to_dict()}
            if unbind:
                result["unbound"] = await sim.unbind(unbind if isinstance(unbind, str) else None)
            return 200, result
        # POST /mo
        source, dest, text = data.get("from"), data.get("to"), data.get("text")
        if not source or not dest or not isinstance(text, str):
            raise HttpError(400, "from, to and text are required")
        try:
            statuses = await sim.inject_mo(
                str(source), str(dest), text, coding=data.get("coding", "auto"),
                split=data.get("split") or "udh", system_id=data.get("system_id"),
                timeout=float(data.get("timeout", 5.0)))
        except NoReceiverError as exc:
            raise HttpError(409, str(exc)) from None
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return 200, {"statuses": statuses,
                     "status_names": [None if s is None else sim.status_name(s) for s in statuses]}

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise HttpError(400, f"invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HttpError(400, "a JSON object is required")
        return data
