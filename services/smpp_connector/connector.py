"""The SMPP connector: one process holds the bind of one `smpp_connections` entry
(`switchboard run smpp --connection NAME`, `python -m services.smpp_connector --connection NAME`).

Sending (queue `transport.smpp.<name>`, consumed only while the transmitting side is bound):

1. channel lookup, expiry, and on a redelivery the `sent:<channel>:<id>` record: a request
   whose parts were all accepted before is not submitted again, its `wired` is republished;
2. the parts (:mod:`.outgoing`) go out within the window; ESME_RTHROTTLED / ESME_RMSGQFUL
   pause the whole bind and the part is submitted again (for up to a minute, then it is
   `errored` like ESME_RSYSERR and goes through the `retry.<delay_ms>` queues); any other error status
   is `failed` `smpp_<ESME name>`;
3. every accepted part's id is mapped to the request in Redis (:mod:`.store`) *before* the
   queue message is acked; `wired` (external_id: the first part's id as the SMSC gave it)
   once every part was accepted, and one ChannelLog listing the PDU exchanges.

When the link goes down, what is in flight is requeued at once (those submits were not
confirmed). **Possible duplicate:** when no submit_sm_resp comes within `submit_timeout_s`
the session is closed and the message redelivered, but the SMSC may have accepted it before
going silent, so the phone may get it twice; likewise a multipart message whose first parts
were accepted before the link fell is sent whole again. Nothing is lost either way.

Receiving (deliver_sm, on the transceiver or the receiver):

- a receipt (TLVs or text form) is looked up by its id (`dlr_id_format`), and looked up
  again after short delays while the mapping is not there yet (a receipt can overtake the
  submit_sm_resp handling). **The deliver_sm_resp is deferred** until the StatusUpdate was
  confirmed by the broker: ESME_ROK then, ESME_RX_T_APPN when the broker or Redis failed, so
  the SMSC delivers the receipt again. A receipt still unknown after the last look-up is
  published with its `external_id` only (on the connection's first channel) and answered OK;
- anything else is a message from a phone: decoded, reassembled in Redis when multipart, and
  published as an InboundMessage; answered ESME_ROK only after the broker confirmed it,
  ESME_RX_T_APPN when it could not take it, ESME_RINVSRCADR for a sender that is no number.

SIGTERM: stop consuming, wait (bounded) for the submits in flight, requeue the rest, unbind.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from ..core.broker import Delivery, Publisher, Requeue
from ..core.channel_logs import ChannelLogPublisher
from ..core.channels import SmppConnection, transport_key
from ..core.models import ChannelLog, InboundMessage, SendRequest, StatusError, StatusUpdate
from ..core.redact import redact
from ..core.retry import retry_delay_ms, schedule_retry
from ..core.service import Runtime, run_service
from ..core.urns import UrnError, sender_urn
from . import metrics
from ..protocols.smpp import (
    RETRYABLE_STATUSES,
    THROTTLING_STATUSES,
    extract_segment,
    join_segments,
    receipt_id_keys,
    status_name,
)
from .incoming import Receipt, channel_for, receipt_of, receipt_status, sender_number
from .link import Link
from .outgoing import UnsendableMessage, build_submits
from .session import LinkDown
from .store import Mapping, Store

log = logging.getLogger(__name__)

ESME_ROK = 0x00
ESME_RINVSRCADR = 0x0A
ESME_RX_T_APPN = 0x64
#: Look-ups of a receipt whose mapping is not there yet, after these delays (seconds).
RECEIPT_LOOKUP_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0)
#: How long one part may keep being refused with throttling before the message is
#: `errored` instead (it then waits in a retry queue rather than unacked here).
THROTTLED_GIVE_UP_S = 60.0
#: How long SIGTERM waits for submit_sm_resp of what is in flight before requeueing it.
DRAIN_S = 5.0
PUBLISH_TIMEOUT_S = 5.0
#: Deliveries held at once. Far more than the window: a message whose submit_sm was answered
#: still waits for its Redis write and its publish confirms, and the window must not idle
#: meanwhile. Waiting for the window is short, and a link loss requeues them at once.
PREFETCH = 300
#: Redis connections of the connector. Callers wait for a free one (up to REDIS_WAIT_S)
#: instead of failing: hundreds of receipts and submits can want one at the same moment.
REDIS_CONNECTIONS = 32
REDIS_WAIT_S = 10.0
#: Waits before writing the id mappings again when Redis failed after the SMSC accepted.
RECORD_RETRY_DELAYS_S = (0.2, 1.0, 3.0)
#: Every message and receipt allocates futures, tasks and dicts by the dozen: with the default
#: young-generation threshold (700) the collector ran every few messages and took ~13 % of
#: the connector's CPU (py-spy --native). Objects are freed by reference counting anyway;
#: cycles are rare and wait a little longer.
GC_THRESHOLDS = (20_000, 20, 100)


class SmppConnector:
    """The worker of one connection; see the module docstring.

    `publisher` (default: the runtime's) publishes what deliver_sm causes: tests swap in one
    whose publishes fail. `receipt_lookup_delays_s`, `throttle_first_s` and `throttled_give_up_s`
    are shortened by tests.
    """

    def __init__(
        self,
        runtime: Runtime,
        connection: SmppConnection,
        *,
        publisher: Publisher | None = None,
        prefetch: int | None = None,
        receipt_lookup_delays_s: tuple[float, ...] = RECEIPT_LOOKUP_DELAYS_S,
        throttle_first_s: float | None = None,
        throttled_give_up_s: float = THROTTLED_GIVE_UP_S,
    ):
        self.runtime = runtime
        self.connection = connection
        self.name = connection.name
        self.transport = f"smpp.{connection.name}"
        self.queue = f"transport.{self.transport}"
        self.publisher = publisher or runtime.publisher
        self.prefetch = prefetch or max(PREFETCH, 2 * connection.window)
        self.receipt_lookup_delays_s = receipt_lookup_delays_s
        self.throttled_give_up_s = throttled_give_up_s
        self.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            runtime.settings.redis_url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT_S))  # fmt: skip
        self.store = Store(self.redis, runtime.settings.prefix, connection.name)
        link_options = {} if throttle_first_s is None else {"throttle_first_s": throttle_first_s}
        self.link = Link(connection, self.on_deliver, self._on_bind_state, self._on_bind_event, **link_options)
        self.consumer = None
        self.logs: ChannelLogPublisher | None = None
        self._refs = itertools.count(1)
        self._bind_changed = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._stopped = False
        self._metric_children: dict = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.logs = await ChannelLogPublisher(self.runtime.connection, self.runtime.settings, self.runtime.name).start()
        self.runtime.on_stop.append(self.stop)
        self._spawn(self._follow_bind())
        self._spawn(self._stop_on_signal())
        self.link.start()

    async def _follow_bind(self) -> None:
        """Consume `transport.smpp.<name>` exactly while the transmitting side is bound."""
        while not self._stopped:
            await self._bind_changed.wait()
            self._bind_changed.clear()
            if self._stopped or self.runtime.stopping.is_set():
                return
            try:
                if self.link.bound:
                    if self.consumer is None:
                        self.consumer = await self.runtime.consume(
                            self.queue, self.handle, model=SendRequest, prefetch=self.prefetch, transport=self.transport
                        )
                    else:
                        await self.consumer.resume()
                elif self.consumer is not None:
                    await self.consumer.pause()
                    log.info("consumer paused while unbound", extra={"connection": self.name})
            except Exception as exc:  # the broker connection is recovering: try again shortly
                log.warning("could not follow the bind state; retrying", extra={"connection": self.name, "error": repr(exc)})
                await asyncio.sleep(1)
                self._bind_changed.set()

    def _on_bind_state(self, bound: bool) -> None:
        self._bind_changed.set()

    def _on_bind_event(self, kind: str, detail: dict) -> None:
        """Bind results and closes also go to the channel logs of the connection's first
        channel: that is where an operator looks. The password never appears."""
        channels = self.runtime.registry.for_connection(self.name)
        if not channels:
            return
        summary = {"pdu": f"bind_{detail.get('bind')}", "event": kind, "system_id": self.connection.system_id,
                   "host": f"{self.connection.host}:{self.connection.port}",
                   **{k: v for k, v in detail.items() if k != "bind"}}  # fmt: skip
        errors = [redact(str(detail[k])) for k in ("error", "reason") if k in detail]
        entry = ChannelLog(channel_uuid=channels[0].uuid, type="smpp", smpp=[summary], errors=errors)
        if self.logs is not None:
            self.logs.add(entry)

    async def _stop_on_signal(self) -> None:
        await self.runtime.stopping.wait()
        await self.stop()

    async def stop(self) -> None:
        """Stop consuming, give the submits in flight DRAIN_S to be answered, unbind (what is
        still waiting fails with LinkDown and is requeued)."""
        if self._stopped:
            return
        self._stopped = True
        self._bind_changed.set()
        if self.consumer is not None:
            try:
                await self.consumer.pause()
            except Exception:
                pass
        await self.link.drain(DRAIN_S)
        await self.link.stop()
        if self.logs is not None:
            await self.logs.close()
        await self.redis.aclose()

    def _count(self, metric, label: str) -> None:
        """metric{connection, label} += 1, with the labelled child cached (labels() is slow)."""
        child = self._metric_children.get((metric, label))
        if child is None:
            child = self._metric_children[(metric, label)] = metric.labels(self.name, label)
        child.inc()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ sending

    async def handle(self, request: SendRequest, delivery: Delivery) -> None:
        channel = self.runtime.registry.get(request.channel_uuid)
        if channel is None:
            return self._finish(delivery, request, "failed", "channel_not_found", f"no channel {request.channel_uuid}")
        if transport_key(channel) != self.transport:
            message = f"channel {channel.uuid} is sent through {transport_key(channel)}, not {self.transport}"
            return self._finish(delivery, request, "failed", "channel_config", message)
        if request.expired():
            return self._finish(delivery, request, "failed", "expired", f"expired on {request.expires_on}")
        if delivery.redelivered:
            stored = await self.store.sent_status(request.channel_uuid, request.id)
            if stored is not None:
                delivery.publish_status(StatusUpdate.from_bytes(stored))
                log.info("redelivered message was already sent; status republished",
                         extra={"connection": self.name, "msg_id": request.id})  # fmt: skip
                return None
        try:
            submission = build_submits(self.connection, channel.address, request, next(self._refs))
        except (UnsendableMessage, ValueError) as exc:
            return self._finish(delivery, request, "failed", "invalid_request", str(exc))
        if not self.link.bound:
            raise Requeue(f"{self.name} is not bound")

        exchanges: list[dict[str, Any]] = []
        if len(submission.parts) == 1:
            results = [await self._submit_part(submission.parts[0], exchanges)]
        else:
            results = await asyncio.gather(*(self._submit_part(f, exchanges) for f in submission.parts), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        await self._conclude(request, delivery, submission.parts, results, exchanges)
        return None

    async def _submit_part(self, fields: dict[str, Any], exchanges: list[dict[str, Any]]):
        """Submit one part again after each throttling pause (for at most
        `throttled_give_up_s`); returns the last submit_sm_resp. LinkDown becomes Requeue: the part was not confirmed."""
        first_throttled = None
        while True:
            started = time.perf_counter()
            try:
                resp = await self.link.submit(fields)
            except LinkDown as exc:
                raise Requeue(str(exc)) from None
            status = resp.status
            self._count(metrics.SUBMITS, "ok" if not status else status_name(status))
            exchanges.append({
                "pdu": "submit_sm", "sequence": resp.sequence, "destination": fields["destination_addr"],
                "data_coding": fields["data_coding"], "status": status_name(status) if status else "ESME_ROK",
                "message_id": resp.message_id or None, "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
            })  # fmt: skip
            if status in THROTTLING_STATUSES:
                first_throttled = first_throttled or started
                if started - first_throttled < self.throttled_give_up_s:
                    self.link.throttled()
                    continue
            elif not status:
                self.link.accepted()
            return resp

    async def _conclude(self, request: SendRequest, delivery: Delivery, parts, results, exchanges) -> None:
        """Record the accepted parts, then publish the message's status and its ChannelLog."""
        attempt = request.attempt + 1
        accepted = [r for r in results if not r.status]
        refused = next((r for r in results if r.status), None)
        first_id = results[0].message_id if not results[0].status else (accepted[0].message_id if accepted else None)
        wired = None
        if refused is None:
            wired = StatusUpdate(id=request.id, uuid=request.uuid, channel_uuid=request.channel_uuid, status="wired",
                                 external_id=first_id, transport=self.transport, attempt=attempt)  # fmt: skip
        if accepted:
            mappings = [
                Mapping(request.id, request.uuid, request.channel_uuid, len(parts), i + 1, first_id, refused is None)
                for i, r in enumerate(results) if not r.status
            ]  # fmt: skip
            await self._record(request, mappings, [r.message_id for r in accepted], wired.to_bytes() if wired else None)
        errors: list[str] = []
        if wired is not None:
            status = wired
        else:
            code = f"smpp_{status_name(refused.status)}"
            message = f"submit_sm refused: {status_name(refused.status)}"
            errors.append(message)
            delay = retry_delay_ms(self.runtime.settings, attempt) if refused.status in RETRYABLE_STATUSES else None
            if delay is not None:
                schedule_retry(delivery, self.transport, attempt, delay,
                               message_id=f"{request.channel_uuid}:{request.id}:retry:{attempt}")  # fmt: skip
                status = self._status(request, "errored", code, message, attempt, retry_in_ms=delay)
            else:
                status = self._status(request, "failed", code, message, attempt)
            log.info("submit not accepted", extra={"connection": self.name, "msg_id": request.id, "status": status.status, "code": code})
        self._count(metrics.MESSAGES, status.status)
        delivery.publish_status(status)
        entry = ChannelLog(channel_uuid=request.channel_uuid, type="smpp", msg_id=request.id, smpp=exchanges, errors=errors)
        self.logs.add(entry)

    async def _record(self, request: SendRequest, mappings: list[Mapping], message_ids: list[str], wired: bytes | None) -> None:
        """Write the id mappings (and the `sent:` record), retrying a failing Redis a few
        times. The SMSC has accepted the parts, so when Redis stays down the message is still
        reported rather than requeued (which would send it twice); its receipts will then be
        published with their external_id only."""
        for delay in (*RECORD_RETRY_DELAYS_S, None):
            try:
                await self.store.record_submits(mappings, message_ids, wired)
                return
            except Exception as exc:
                if delay is None:
                    log.error("could not record the message ids; its receipts will not be correlated",
                              extra={"connection": self.name, "msg_id": request.id, "error": repr(exc)})  # fmt: skip
                    return
                await asyncio.sleep(delay)

    def _status(self, request: SendRequest, status: str, code: str, message: str, attempt: int | None,
                retry_in_ms: int | None = None) -> StatusUpdate:  # fmt: skip
        return StatusUpdate(
            id=request.id, uuid=request.uuid, channel_uuid=request.channel_uuid, status=status, transport=self.transport,
            attempt=attempt, error=StatusError(code=code, message=redact(message), retry_in_ms=retry_in_ms),
        )  # fmt: skip

    def _finish(self, delivery: Delivery, request: SendRequest, status: str, code: str, message: str) -> None:
        """A request that ends before any submit_sm: its status and a ChannelLog with the reason."""
        update = self._status(request, status, code, message, request.attempt + 1)
        self._count(metrics.MESSAGES, status)
        delivery.publish_status(update)
        entry = ChannelLog(channel_uuid=request.channel_uuid, type="smpp", msg_id=request.id, errors=[redact(message)])
        self.logs.add(entry)
        log.info("send refused", extra={"connection": self.name, "msg_id": request.id, "code": code})

    # ------------------------------------------------------------------ receiving

    async def on_deliver(self, pdu) -> int:
        """The deliver_sm_resp status for one deliver_sm (see the module docstring)."""
        receipt = receipt_of(pdu)
        if receipt is not None:
            return await self._on_receipt(pdu, receipt)
        return await self._on_message(pdu)

    async def _on_receipt(self, pdu, receipt: Receipt) -> int:
        summary = {"pdu": "deliver_sm", "sequence": pdu.sequence, "receipt_id": receipt.message_id, "stat": receipt.stat}
        if receipt.message_id is None:
            self._count(metrics.RECEIPTS, "no_id")
            log.warning("receipt without a message id ignored", extra={"connection": self.name})
            self._receive_log(None, None, summary, ["receipt without a message id"], "msg_status")
            return ESME_ROK
        keys = receipt_id_keys(receipt.message_id, self.connection.dlr_id_format)
        try:
            mapping = await self.store.lookup(keys)
            for delay in self.receipt_lookup_delays_s:
                if mapping is not None:
                    break
                await asyncio.sleep(delay)
                mapping = await self.store.lookup(keys)
        except Exception as exc:
            log.warning("receipt look-up failed; answered ESME_RX_T_APPN", extra={"connection": self.name, "error": repr(exc)})
            self._count(metrics.RECEIPTS, "deferred")
            return ESME_RX_T_APPN
        status, code = receipt_status(receipt.stat)
        if mapping is None:
            return await self._uncorrelated_receipt(receipt, status, code, summary)
        if not mapping.accepted:
            self._count(metrics.RECEIPTS, "ignored")
            return ESME_ROK  # a part of a message that failed as a whole: it was reported already
        claimed = False
        try:
            if mapping.parts > 1:
                if status == "delivered":
                    publish = await self.store.part_delivered(mapping)
                else:
                    publish = claimed = await self.store.claim_status(mapping, status)
            else:
                publish = True
            if publish:
                error = StatusError(code=code, message=f"receipt stat {receipt.stat} err {receipt.err}") if code else None
                update = StatusUpdate(id=mapping.id, uuid=mapping.uuid, channel_uuid=mapping.channel_uuid, status=status,
                                      external_id=mapping.external_id, transport=self.transport, error=error)  # fmt: skip
                await self.publisher.publish_status(update)
                self._receive_log(mapping.channel_uuid, mapping.id, summary, [], "smpp")
        except Exception as exc:
            log.warning("receipt not published; answered ESME_RX_T_APPN", extra={"connection": self.name, "error": repr(exc)})
            if claimed:
                await self._release(mapping, status)
            self._count(metrics.RECEIPTS, "deferred")
            return ESME_RX_T_APPN
        self._count(metrics.RECEIPTS, status if publish else "part")
        return ESME_ROK

    async def _release(self, mapping: Mapping, status: str) -> None:
        try:
            await self.store.release_status(mapping, status)
        except Exception:
            log.warning("could not release a receipt claim", extra={"connection": self.name})

    async def _uncorrelated_receipt(self, receipt: Receipt, status: str, code: str | None, summary: dict) -> int:
        """A receipt whose message id maps to nothing even after the look-ups: the status goes
        out with the external_id alone, on the connection's first channel."""
        channel = channel_for(self.runtime.registry.for_connection(self.name), None)
        log.warning("receipt for an unknown message id", extra={"connection": self.name, "receipt_id": receipt.message_id})
        self._count(metrics.RECEIPTS, "unknown")
        if channel is None:
            return ESME_ROK
        error = StatusError(code=code, message=f"receipt stat {receipt.stat}") if code else None
        update = StatusUpdate(channel_uuid=channel.uuid, status=status, external_id=receipt.message_id,
                              transport=self.transport, error=error)  # fmt: skip
        try:
            await self.publisher.publish_status(update)
        except Exception:
            return ESME_RX_T_APPN
        self._receive_log(channel.uuid, None, summary, ["no message is known under this receipt id"], "smpp")
        return ESME_ROK

    async def _on_message(self, pdu) -> int:
        """A message from a phone -> InboundMessage on `sms.inbound` (all parts first)."""
        channel = channel_for(self.runtime.registry.for_connection(self.name), pdu.destination_addr)
        summary = {"pdu": "deliver_sm", "sequence": pdu.sequence, "source": pdu.source_addr,
                   "destination": pdu.destination_addr, "data_coding": pdu.data_coding}  # fmt: skip
        if channel is None:
            log.error("incoming message for a connection without channels", extra={"connection": self.name})
            self._count(metrics.MO, "no_channel")
            return ESME_RX_T_APPN
        scheme = channel.schemes[0] if channel.schemes else "tel"
        try:
            urn, sender = sender_urn(sender_number(pdu), country=channel.country, scheme=scheme)
        except UrnError as exc:
            self._count(metrics.MO, "bad_sender")
            log.warning("incoming message refused", extra={"connection": self.name, "error": repr(exc)})
            self._receive_log(channel.uuid, None, summary, [f"source_addr {pdu.source_addr!r}: {exc}"], "msg_receive")
            return ESME_RINVSRCADR
        segment = extract_segment(pdu)
        mo_key = None
        summary.update({"segment": segment.seq, "segments": segment.total} if segment.total > 1 else {})
        try:
            if segment.total > 1:
                mo_key = self.store.mo_key(pdu.source_addr or "", pdu.destination_addr or "", segment)
                parts = await self.store.add_mo_part(mo_key, segment)
                if parts is None:
                    self._count(metrics.MO, "part")
                    return ESME_ROK  # kept in Redis until the other parts arrive
                text = join_segments(parts)
            else:
                text = segment.text
            message = InboundMessage(channel_uuid=channel.uuid, urn=urn, from_=sender, text=text, transport=self.transport)
            await self.publisher.publish("sms.inbound", f"msg.{channel.uuid}", message.to_bytes(), message_id=message.uuid,
                                         timeout=PUBLISH_TIMEOUT_S)  # fmt: skip
        except Exception as exc:
            log.warning("incoming message not published; answered ESME_RX_T_APPN", extra={"connection": self.name, "error": repr(exc)})
            self._count(metrics.MO, "deferred")
            return ESME_RX_T_APPN
        if mo_key is not None:
            try:
                await self.store.forget_mo(mo_key)
            except Exception:
                pass  # it expires by itself
        self._count(metrics.MO, "published")
        self._receive_log(channel.uuid, None, summary, [], "msg_receive")
        return ESME_ROK

    def _log_entry(self, channel_uuid: str, msg_id, summary: dict, errors: list[str], kind: str) -> ChannelLog:
        return ChannelLog(channel_uuid=channel_uuid, type=kind, msg_id=msg_id, smpp=[summary], errors=[redact(e) for e in errors])

    def _receive_log(self, channel_uuid, msg_id, summary: dict, errors: list[str], kind: str) -> None:
        """One ChannelLog for a received deliver_sm (on the connection's first channel when
        the receipt names none)."""
        if channel_uuid is None:
            channels = self.runtime.registry.for_connection(self.name)
            if not channels:
                return
            channel_uuid = channels[0].uuid
        self.logs.add(self._log_entry(channel_uuid, msg_id, summary, errors, kind))


def parse_args(argv: list[str] | None) -> str:
    parser = argparse.ArgumentParser(prog="python -m services.smpp_connector", description=__doc__.split("\n")[0])
    parser.add_argument("--connection", required=True, help="the smpp_connections entry whose bind this process holds")
    return parser.parse_args(argv).connection


def main(argv: list[str] | None = None, connection: str | None = None) -> None:
    """Entry point of `python -m services.smpp_connector --connection NAME` and of
    `switchboard run smpp --connection NAME`."""
    name = connection or parse_args(argv)

    async def setup(runtime: Runtime) -> None:
        conn = runtime.registry.connections.get(name)
        if conn is None:
            known = ", ".join(sorted(runtime.registry.connections)) or "none"
            print(f"{runtime.registry.source}: no SMPP connection {name!r} (known: {known})", file=sys.stderr)
            raise SystemExit(2)
        await SmppConnector(runtime, conn).start()
        # What start-up created lives as long as the process: keep it out of every collection.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    run_service(f"smpp-{name}", setup)

