"""The worker of one SMSC connection, whatever the protocol: queue, correlation, statuses.

A protocol's connector subclasses :class:`SmscConnector` and fills in the protocol's part:
which sessions to hold (:meth:`~SmscConnector.roles`, :meth:`~SmscConnector.open_session`),
how a SendRequest becomes parts (:meth:`~SmscConnector.build_parts`), what a submit's answer
means (:meth:`~SmscConnector.outcome` -> :class:`Submitted`), and what a delivery from the SMSC
is (its session's ``on_deliver`` calls :meth:`~SmscConnector.on_report` with a :class:`Report`
or :meth:`~SmscConnector.on_message` with an :class:`Incoming`, and turns the :class:`Answer`
into the protocol's answer). Everything else lives here once:

Sending (queue `transport.<protocol>.<name>`, consumed only while the transmitting side is
logged in):

1. channel lookup, expiry, and on a redelivery the `sent:<channel>:<id>` record: a request
   whose parts were all accepted before is not submitted again, its `wired` is republished;
2. the parts go out within the window; a "slow down" answer pauses the whole link and the
   part is submitted again (for up to a minute, then it is `errored` and goes through the
   `retry.<delay_ms>` queues, like every retryable refusal); any other refusal is `failed`
   with the protocol's code;
3. every accepted part's id is mapped to the request in Redis (:mod:`.store`) *before* the
   queue message is acked; `wired` (external_id: the first part's id as the SMSC gave it)
   once every part was accepted, and one ChannelLog listing the exchanges.

A message holds one of `window` slots from its first submit until its ids are recorded
(issue 13): after a kill -9 at most `window` messages can have reached the SMSC without the
record that stops their redelivery, so duplicates are bounded by the window. While Redis is
away the record is tried again until it is written (the message is neither acked nor
reported meanwhile), and once `window` messages wait for their record no new submit goes
out; receipts arriving meanwhile are answered "try later" and come again.

Scaling (issue 13): `tps` is the connection's, shared in Redis by every copy of the
connector (:class:`~services.core.ratelimit.SharedTokenBucket`); `binds: N` copies log in at
once, the others wait as standbys (:mod:`services.core.leases`).

When the link goes down, what is in flight is requeued at once (those submits were not
confirmed). **Possible duplicate:** when no answer comes within `submit_timeout_s` the
session is closed and the message redelivered, but the SMSC may have accepted it before
going silent, so the phone may get it twice; likewise a multipart message whose first parts
were accepted before the link fell is sent whole again. Nothing is lost either way.

Receiving:

- a receipt is looked up by its id keys, and looked up again after short delays while the
  mapping is not there yet (a receipt can overtake the handling of the submit's answer). The
  answer to the SMSC waits until the StatusUpdate was confirmed by the broker: OK then, "try
  later" when the broker or Redis failed, so the SMSC delivers the receipt again. A receipt
  still unknown after the last look-up is published with its `external_id` only (on the
  connection's first channel) and answered OK. A multipart message is `delivered` once every
  part's receipt said so, and gets any other status once (CONTRACT section 5);
- anything else is a message from a phone: reassembled in Redis when multipart, and
  published as an InboundMessage; answered OK only after the broker confirmed it, "try later"
  when it could not take it, "bad sender" for a sender that is no number.

SIGTERM: stop consuming, wait (bounded) for the submits in flight, requeue the rest, log out.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import gc
import itertools
import logging
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..core.broker import Delivery, Publisher, Requeue
from ..core.channel_logs import ChannelLogPublisher
from ..core.channels import transport_key
from ..core.heartbeat import RateMeter, SmscHealth
from ..core.leases import Leases
from ..core.models import ChannelLog, InboundMessage, SendRequest, StatusError, StatusUpdate, split_urn
from ..core.ratelimit import SharedTokenBucket
from ..core.redact import redact
from ..core.retry import retry_delay_ms, schedule_retry
from ..core.service import Runtime, run_service
from ..core.tls import TlsConfigError, client_context
from ..core.urns import UrnError, sender_urn
from ..protocols.gsm import decode_user_data
from .link import Link
from .metrics import metrics_for
from .session import LinkDown, Session
from .store import Mapping, Store
from .window import Window

log = logging.getLogger(__name__)

#: Look-ups of a receipt whose mapping is not there yet, after these delays (seconds).
RECEIPT_LOOKUP_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0)
#: How long one part may keep being refused with throttling before the message is
#: `errored` instead (it then waits in a retry queue rather than unacked here).
THROTTLED_GIVE_UP_S = 60.0
#: How long SIGTERM waits for the answers of what is in flight before requeueing it.
DRAIN_S = 5.0
PUBLISH_TIMEOUT_S = 5.0
#: Deliveries held at once. Far more than the window: a message whose submit was answered
#: still waits for its Redis write and its publish confirms, and the window must not idle
#: meanwhile. Waiting for the window is short, and a link loss requeues them at once.
PREFETCH = 300
#: Redis connections of the connector. Callers wait for a free one (up to REDIS_WAIT_S)
#: instead of failing: hundreds of receipts and submits can want one at the same moment.
REDIS_CONNECTIONS = 32
REDIS_WAIT_S = 10.0
#: Waits before writing the id mappings again when Redis failed after the SMSC accepted
#: (the last repeats, for as long as Redis is away: the record is never given up).
RECORD_RETRY_DELAYS_S = (0.1, 0.2, 0.5, 1.0)
#: Every message and receipt allocates futures, tasks and dicts by the dozen: with the default
#: young-generation threshold (700) the collector ran every few messages and took ~13 % of
#: the connector's CPU (py-spy --native). Objects are freed by reference counting anyway;
#: cycles are rare and wait a little longer.
GC_THRESHOLDS = (20_000, 20, 100)


class UnsendableMessage(ValueError):
    """The request cannot become submits (too many parts, not a phone number)."""


class Answer(enum.Enum):
    """What the connector wants the SMSC told about one delivery."""

    OK = "ok"
    RETRY = "retry"  # not taken now: deliver it again later
    BAD_SENDER = "bad_sender"  # the sender is no number: do not deliver it again


@dataclass(slots=True)
class Submitted:
    """What the answer to one submit means. `message_id` is the id as the SMSC wrote it
    (accepted); `refusal` the SMSC's name for its error (refused), with the StatusUpdate
    `code` and `message`; `throttled`: the SMSC asks to slow down (the link pauses and the
    part goes again); `retryable`: a temporary refusal (errored, retried later)."""

    message_id: str | None
    summary: dict[str, Any]
    refusal: str | None = None
    code: str | None = None
    message: str = ""
    throttled: bool = False
    retryable: bool = False


@dataclass(slots=True)
class Report:
    """A delivery receipt: the id keys to look up (empty: it names no message), the id as the
    SMSC wrote it, and the status (`delivered`, `sent`, `failed` + `code`) it reports."""

    keys: list[str]
    external_id: str | None
    status: str
    code: str | None
    detail: str
    summary: dict[str, Any]


@dataclass(slots=True)
class Incoming:
    """A message from a phone. `sender` is the originator as the URN parser should see it;
    `part` is (group, seq, total, bytes) for one part of a multipart message, joined by the
    connector's :meth:`SmscConnector.join_parts` once all are in; `text` the whole text else."""

    source: str
    destination: str
    sender: str
    summary: dict[str, Any]
    text: str = ""
    part: tuple[str, int, int, bytes] | None = None


def incoming_text(source: str, destination: str, sender: str, summary: dict[str, Any], data) -> Incoming:
    """An :class:`Incoming` from a codec's decoded user data (`text`, `payload` in `dcs`, and
    `ref`/`total`/`seq` of a concatenation UDH): a part keeps the DCS octet and the payload,
    which :meth:`SmscConnector.join_parts` joins once every part is in."""
    incoming = Incoming(source, destination, sender, summary)
    if data.ref is not None and data.total > 1:
        incoming.part = (f"udh:{data.ref}:{data.total}", data.seq, data.total, bytes([data.dcs & 0xFF]) + data.payload)
    else:
        incoming.text = data.text
    return incoming


def attachment_url(attachment: str) -> str:
    """`image/jpeg:https://x/a.jpg` -> `https://x/a.jpg` (an attachment without a type is all URL)."""
    kind, sep, url = attachment.partition(":")
    return url if sep and not url.startswith("//") else attachment


def message_text(request: SendRequest) -> str:
    """The text with each attachment's URL appended as `\\n<url>`, as the HTTP transports do."""
    return request.text + "".join("\n" + attachment_url(a) for a in request.attachments)


def phone_number(to: str, protocol: str) -> str:
    """The number of a request's `to` without its `+`; UnsendableMessage for other URNs."""
    scheme, path = split_urn(to)
    if scheme != "tel":
        raise UnsendableMessage(f"{protocol} sends to phone numbers only, not {scheme}: URNs")
    return _plain(path)


def international(number: str, international_ton: bool = False) -> str:
    """An incoming originator as the URN parser should see it: digits the SMSC marks as
    international, or that start with `00`, get a `+`; anything else is left as it is."""
    number = (number or "").strip()
    if number.isdigit():
        if international_ton:
            return "+" + number
        if number.startswith("00") and len(number) > 4:
            return "+" + number[2:]
    return number


def recipient_key(number: str, stamp: str) -> str:
    """The id key of UCP and CIMD2 submits: the recipient's last 7 digits and the SMSC's
    time stamp (SCTS / 060). Receipts name the recipient and repeat the stamp, and SMSCs
    write the number with or without its country prefix (Kannel matches the same way)."""
    return f"{''.join(c for c in number if c.isdigit())[-7:]}:{stamp}"


def _plain(address: str | None) -> str:
    a = (address or "").strip()
    return a[1:] if a.startswith("+") else a


def channel_for(channels: list, destination: str | None):
    """The connection's channel whose address is `destination` (a leading `+` ignored on
    both sides), else its first channel (None when it has none)."""
    wanted = _plain(destination)
    for channel in channels:
        if wanted and _plain(channel.address) == wanted:
            return channel
    return channels[0] if channels else None


class SmscConnector(ABC):
    """The worker of one connection; see the module docstring.

    `publisher` (default: the runtime's) publishes what deliveries cause: tests swap in one
    whose publishes fail. `receipt_lookup_delays_s`, `throttle_first_s` and `throttled_give_up_s`
    are shortened by tests.
    """

    #: `smpp`, `ucp` or `cimd2`: the transport key prefix, the Redis namespace, the metrics,
    #: and the ChannelLog `type` of sends and receipts.
    protocol = ""
    #: The protocol's session (a :class:`~.session.Session` subclass).
    session_class: type[Session] = Session
    #: The ChannelLog field the frame summaries go in.
    log_field = "frames"

    def __init__(
        self,
        runtime: Runtime,
        connection,
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
        self.transport = f"{self.protocol}.{connection.name}"
        self.queue = f"transport.{self.transport}"
        self.publisher = publisher or runtime.publisher
        self.prefetch = prefetch or max(PREFETCH, 2 * connection.window)
        self.receipt_lookup_delays_s = receipt_lookup_delays_s
        self.throttled_give_up_s = throttled_give_up_s
        self.metrics = metrics_for(self.protocol)
        self.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            runtime.settings.redis_url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_WAIT_S))  # fmt: skip
        self.store = Store(self.redis, runtime.settings.prefix, self.protocol, connection.name, self.id_key)
        link_options: dict[str, Any] = {} if throttle_first_s is None else {"throttle_first_s": throttle_first_s}
        base = f"{runtime.settings.prefix}{self.protocol}:{connection.name}"
        if connection.tps > 0:
            link_options["bucket"] = SharedTokenBucket(self.redis, f"{base}:tps", connection.tps)
        link_options["leases"] = Leases(self.redis, f"{base}:bind", getattr(connection, "binds", 1))
        self.link = Link(connection, self.roles(), self.open_session, self.metrics, self._on_bind_state,
                         self._on_bind_event, **link_options)  # fmt: skip
        #: messages between their first submit and their written record (see the module docstring)
        self.unrecorded = Window(connection.window)
        self.consumer = None
        self.logs: ChannelLogPublisher | None = None
        self._refs = itertools.count(1)
        self._bind_changed = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._stopped = False
        self._metric_children: dict = {}
        # heartbeat (core/heartbeat.py): submits answered, and the last bind or submit error
        self.submits = 0
        self.last_error: str | None = None
        self._tps = RateMeter()

    # ------------------------------------------------------------------ the protocol's part

    def roles(self) -> list[str]:
        """The sessions the link holds; the first one transmits."""
        return ["session"]

    async def open_session(self, role: str) -> Session:
        """Connect and log in one session whose deliveries go to the connector's
        ``on_deliver`` (the protocol's: it answers in the protocol's terms)."""
        return await self.session_class.open(self.connection, role, self.on_deliver)

    @abstractmethod
    async def on_deliver(self, frame):
        """A delivery from the SMSC -> :meth:`on_report` or :meth:`on_message` -> the
        protocol's answer."""

    @abstractmethod
    def build_parts(self, channel, request: SendRequest, ref: int) -> list[Any]:
        """The parts of `request` in order (`ref`: the concatenation reference of this
        message); raises UnsendableMessage or ValueError."""

    @abstractmethod
    def outcome(self, part, answer, elapsed_ms: float) -> Submitted:
        """What the SMSC's answer to the submit of `part` means."""

    def id_key(self, message_id: str) -> str:
        """The key an accepted id is stored under (and a receipt looks it up by)."""
        return message_id

    def join_parts(self, parts: list[bytes]) -> str:
        """The text of a multipart message from its parts in order (each the DCS octet and
        the payload). The payloads are joined before decoding, so an escape or surrogate pair
        a sender did cut still comes out whole."""
        return decode_user_data(b"".join(p[1:] for p in parts), parts[0][0])

    def link_summary(self, kind: str, detail: dict) -> dict[str, Any]:
        """What the channel log shows of a login, failed login or close (never a password)."""
        return {"event": kind, "host": f"{self.connection.host}:{self.connection.port}",
                **{k: v for k, v in detail.items() if k != "bind"}}  # fmt: skip

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.logs = await ChannelLogPublisher(self.runtime.connection, self.runtime.settings, self.runtime.name).start()
        self.runtime.on_stop.append(self.stop)
        self.runtime.health_sources.append(self.health)
        self._spawn(self._follow_bind())
        self._spawn(self._stop_on_signal())
        self.link.start()

    async def _follow_bind(self) -> None:
        """Consume `transport.<protocol>.<name>` exactly while the transmitting side is bound."""
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

    def health(self) -> SmscHealth:
        """The link's part of this process's heartbeat (state, window in use, tps, last error)."""
        session = self.link.tx
        if session is None:
            state = "unbound" if self._stopped else "connecting"
        else:
            state = "throttled" if self.link.throttled_now else "bound"
        return SmscHealth(
            connection=self.name, protocol=self.protocol, state=state, window=session.in_flight if session else 0,
            window_max=self.connection.window, tps=self._tps.rate(self.submits),
            tps_limit=self.connection.tps or None, last_error=self.last_error,
        )  # fmt: skip

    def _on_bind_event(self, kind: str, detail: dict) -> None:
        """Logins and closes also go to the channel logs of the connection's first channel:
        that is where an operator looks. The password never appears."""
        errors = [redact(str(detail[k])) for k in ("error", "reason") if k in detail]
        if kind != "bound" and errors:
            self.last_error = f"{kind}: {errors[0]}"
        channels = self.runtime.registry.for_connection(self.name)
        if not channels:
            return
        entry = self.channel_log(channels[0].uuid, None, [self.link_summary(kind, detail)], errors)
        if self.logs is not None:
            self.logs.add(entry)

    async def _stop_on_signal(self) -> None:
        await self.runtime.stopping.wait()
        await self.stop()

    async def stop(self) -> None:
        """Stop consuming, give the submits in flight DRAIN_S to be answered, log out (what is
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

    def count(self, metric, label: str) -> None:
        """metric{connection, label} += 1, with the labelled child cached (labels() is slow)."""
        child = self._metric_children.get((metric, label))
        if child is None:
            child = self._metric_children[(metric, label)] = metric.labels(self.name, label)
        child.inc()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def channel_log(self, channel_uuid: str, msg_id, frames: list[dict], errors: list[str], kind: str | None = None) -> ChannelLog:
        return ChannelLog(channel_uuid=channel_uuid, type=kind or self.protocol, msg_id=msg_id,
                          errors=[redact(e) for e in errors], **{self.log_field: frames})  # fmt: skip

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
            parts = self.build_parts(channel, request, next(self._refs))
        except (UnsendableMessage, ValueError) as exc:
            return self._finish(delivery, request, "failed", "invalid_request", str(exc))
        if not self.link.bound:
            raise Requeue(f"{self.name} is not bound")

        exchanges: list[dict[str, Any]] = []
        await self.unrecorded.acquire()
        try:
            if len(parts) == 1:
                results = [await self._submit_part(parts[0], exchanges)]
            else:
                results = await asyncio.gather(*(self._submit_part(p, exchanges) for p in parts), return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
            await self._conclude(request, delivery, len(parts), results, exchanges)
        finally:
            self.unrecorded.release()
        return None

    async def _submit_part(self, part, exchanges: list[dict[str, Any]]) -> Submitted:
        """Submit one part again after each throttling pause (for at most
        `throttled_give_up_s`); returns what the last answer means. LinkDown becomes Requeue:
        the part was not confirmed."""
        first_throttled = None
        while True:
            started = time.perf_counter()
            try:
                answer = await self.link.submit(part)
            except LinkDown as exc:
                raise Requeue(str(exc)) from None
            result = self.outcome(part, answer, round((time.perf_counter() - started) * 1000, 1))
            self.count(self.metrics.SUBMITS, result.refusal or "ok")
            self.submits += 1
            if result.refusal is not None:
                self.last_error = f"submit: {result.refusal}"
            exchanges.append(result.summary)
            if result.throttled:
                first_throttled = first_throttled or started
                if started - first_throttled < self.throttled_give_up_s:
                    self.link.throttled()
                    continue
            elif result.refusal is None:
                self.link.accepted()
            return result

    async def _conclude(self, request: SendRequest, delivery: Delivery, total: int, results: list[Submitted], exchanges) -> None:
        """Record the accepted parts, then publish the message's status and its ChannelLog."""
        attempt = request.attempt + 1
        accepted = [r for r in results if r.refusal is None]
        refused = next((r for r in results if r.refusal is not None), None)
        first_id = accepted[0].message_id if accepted else None
        wired = None
        if refused is None:
            wired = StatusUpdate(id=request.id, uuid=request.uuid, channel_uuid=request.channel_uuid, status="wired",
                                 external_id=first_id, transport=self.transport, attempt=attempt)  # fmt: skip
        if accepted:
            mappings = [
                Mapping(request.id, request.uuid, request.channel_uuid, total, i + 1, first_id, refused is None)
                for i, r in enumerate(results) if r.refusal is None
            ]  # fmt: skip
            await self._record(request, mappings, [r.message_id for r in accepted], wired.to_bytes() if wired else None)
        errors: list[str] = []
        if wired is not None:
            status = wired
        else:
            errors.append(refused.message)
            retry = refused.retryable or refused.throttled
            delay = retry_delay_ms(self.runtime.settings, attempt) if retry else None
            if delay is not None:
                schedule_retry(delivery, self.transport, attempt, delay,
                               message_id=f"{request.channel_uuid}:{request.id}:retry:{attempt}")  # fmt: skip
                status = self._status(request, "errored", refused.code, refused.message, attempt, retry_in_ms=delay)
            else:
                status = self._status(request, "failed", refused.code, refused.message, attempt)
            log.info("submit not accepted", extra={"connection": self.name, "msg_id": request.id, "status": status.status,
                                                   "code": refused.code})  # fmt: skip
        self.count(self.metrics.MESSAGES, status.status)
        delivery.publish_status(status)
        self.logs.add(self.channel_log(request.channel_uuid, request.id, exchanges, errors))

    async def _record(self, request: SendRequest, mappings: list[Mapping], message_ids: list[str], wired: bytes | None) -> None:
        """Write the id mappings (and the `sent:` record), trying again for as long as Redis
        fails (CONTRACT: the correlation is stored before the ack). The SMSC has accepted the
        parts: requeueing would send them twice, and reporting without the record would
        leave their receipts uncorrelated, so the message waits, holding its window slot."""
        failures = 0
        while True:
            try:
                await self.store.record_submits(mappings, message_ids, wired)
                break
            except Exception as exc:
                if failures == 0:
                    log.error("could not record the message ids; holding the message until Redis answers",
                              extra={"connection": self.name, "msg_id": request.id, "error": repr(exc)})  # fmt: skip
                await asyncio.sleep(RECORD_RETRY_DELAYS_S[min(failures, len(RECORD_RETRY_DELAYS_S) - 1)])
                failures += 1
        if failures:
            log.info("message ids recorded after Redis came back",
                     extra={"connection": self.name, "msg_id": request.id, "attempts": failures + 1})  # fmt: skip

    def _status(self, request: SendRequest, status: str, code: str, message: str, attempt: int | None,
                retry_in_ms: int | None = None) -> StatusUpdate:  # fmt: skip
        return StatusUpdate(
            id=request.id, uuid=request.uuid, channel_uuid=request.channel_uuid, status=status, transport=self.transport,
            attempt=attempt, error=StatusError(code=code, message=redact(message), retry_in_ms=retry_in_ms),
        )  # fmt: skip

    def _finish(self, delivery: Delivery, request: SendRequest, status: str, code: str, message: str) -> None:
        """A request that ends before any submit: its status and a ChannelLog with the reason."""
        update = self._status(request, status, code, message, request.attempt + 1)
        self.count(self.metrics.MESSAGES, status)
        delivery.publish_status(update)
        self.logs.add(self.channel_log(request.channel_uuid, request.id, [], [message]))
        log.info("send refused", extra={"connection": self.name, "msg_id": request.id, "code": code})

    # ------------------------------------------------------------------ receiving

    async def on_report(self, report: Report) -> Answer:
        """A delivery receipt -> at most one StatusUpdate per message and state."""
        if not report.keys:
            self.count(self.metrics.RECEIPTS, "no_id")
            log.warning("receipt without a message id ignored", extra={"connection": self.name})
            self._receive_log(None, None, report.summary, ["receipt without a message id"], "msg_status")
            return Answer.OK
        try:
            mapping = await self.store.lookup(report.keys)
            for delay in self.receipt_lookup_delays_s:
                if mapping is not None:
                    break
                await asyncio.sleep(delay)
                mapping = await self.store.lookup(report.keys)
        except Exception as exc:
            log.warning("receipt look-up failed; answered 'try later'", extra={"connection": self.name, "error": repr(exc)})
            self.count(self.metrics.RECEIPTS, "deferred")
            return Answer.RETRY
        if mapping is None:
            return await self._uncorrelated_report(report)
        if not mapping.accepted:
            self.count(self.metrics.RECEIPTS, "ignored")
            return Answer.OK  # a part of a message that failed as a whole: it was reported already
        status = report.status
        claimed = False
        try:
            if mapping.parts > 1 and status == "delivered":
                publish = await self.store.part_delivered(mapping)
            else:
                # once per message and state: a receipt the SMSC sends again because the link
                # fell before our answer does not publish a second status
                publish = claimed = await self.store.claim_status(mapping, status)
            if publish:
                error = StatusError(code=report.code, message=report.detail) if report.code else None
                update = StatusUpdate(id=mapping.id, uuid=mapping.uuid, channel_uuid=mapping.channel_uuid, status=status,
                                      external_id=mapping.external_id, transport=self.transport, error=error)  # fmt: skip
                await self.publisher.publish_status(update)
                self._receive_log(mapping.channel_uuid, mapping.id, report.summary, [], self.protocol)
        except Exception as exc:
            log.warning("receipt not published; answered 'try later'", extra={"connection": self.name, "error": repr(exc)})
            if claimed:
                await self._release(mapping, status)
            self.count(self.metrics.RECEIPTS, "deferred")
            return Answer.RETRY
        self.count(self.metrics.RECEIPTS, status if publish else "part")
        return Answer.OK

    async def _release(self, mapping: Mapping, status: str) -> None:
        try:
            await self.store.release_status(mapping, status)
        except Exception:
            log.warning("could not release a receipt claim", extra={"connection": self.name})

    async def _uncorrelated_report(self, report: Report) -> Answer:
        """A receipt whose id maps to nothing even after the look-ups: the status goes out
        with the external_id alone, on the connection's first channel."""
        channel = channel_for(self.runtime.registry.for_connection(self.name), None)
        log.warning("receipt for an unknown message id", extra={"connection": self.name, "receipt_id": report.external_id})
        self.count(self.metrics.RECEIPTS, "unknown")
        if channel is None:
            return Answer.OK
        error = StatusError(code=report.code, message=report.detail) if report.code else None
        update = StatusUpdate(channel_uuid=channel.uuid, status=report.status, external_id=report.external_id,
                              transport=self.transport, error=error)  # fmt: skip
        try:
            await self.publisher.publish_status(update)
        except Exception:
            return Answer.RETRY
        self._receive_log(channel.uuid, None, report.summary, ["no message is known under this receipt id"], self.protocol)
        return Answer.OK

    async def on_message(self, incoming: Incoming) -> Answer:
        """A message from a phone -> InboundMessage on `sms.inbound` (all parts first)."""
        channel = channel_for(self.runtime.registry.for_connection(self.name), incoming.destination)
        summary = incoming.summary
        if channel is None:
            log.error("incoming message for a connection without channels", extra={"connection": self.name})
            self.count(self.metrics.MO, "no_channel")
            return Answer.RETRY
        scheme = channel.schemes[0] if channel.schemes else "tel"
        try:
            urn, sender = sender_urn(incoming.sender, country=channel.country, scheme=scheme)
        except UrnError as exc:
            self.count(self.metrics.MO, "bad_sender")
            log.warning("incoming message refused", extra={"connection": self.name, "error": repr(exc)})
            self._receive_log(channel.uuid, None, summary, [f"sender {incoming.source!r}: {exc}"], "msg_receive")
            return Answer.BAD_SENDER
        mo_key = None
        try:
            if incoming.part is not None:
                group, seq, total, data = incoming.part
                summary.update({"segment": seq, "segments": total})
                mo_key = self.store.mo_key(incoming.source, incoming.destination, group)
                parts = await self.store.add_mo_part(mo_key, seq, total, data)
                if parts is None:
                    self.count(self.metrics.MO, "part")
                    return Answer.OK  # kept in Redis until the other parts arrive
                text = self.join_parts(parts)
            else:
                text = incoming.text
            message = InboundMessage(channel_uuid=channel.uuid, urn=urn, from_=sender, text=text, transport=self.transport)
            await self.publisher.publish("sms.inbound", f"msg.{channel.uuid}", message.to_bytes(), message_id=message.uuid,
                                         timeout=PUBLISH_TIMEOUT_S)  # fmt: skip
        except Exception as exc:
            log.warning("incoming message not published; answered 'try later'", extra={"connection": self.name, "error": repr(exc)})
            self.count(self.metrics.MO, "deferred")
            return Answer.RETRY
        if mo_key is not None:
            try:
                await self.store.forget_mo(mo_key)
            except Exception:
                pass  # it expires by itself
        self.count(self.metrics.MO, "published")
        self._receive_log(channel.uuid, None, summary, [], "msg_receive")
        return Answer.OK

    def _receive_log(self, channel_uuid, msg_id, summary: dict, errors: list[str], kind: str) -> None:
        """One ChannelLog for a received delivery (on the connection's first channel when
        the receipt names none)."""
        if channel_uuid is None:
            channels = self.runtime.registry.for_connection(self.name)
            if not channels:
                return
            channel_uuid = channels[0].uuid
        self.logs.add(self.channel_log(channel_uuid, msg_id, [summary], errors, kind))


def main_for(connector: type[SmscConnector], prog: str, argv: list[str] | None = None, connection: str | None = None,
             on_started: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Entry point of `python -m <prog> --connection NAME` and `switchboard run <protocol>
    --connection NAME`: hold the link of one connection of `connector.protocol`."""
    protocol = connector.protocol
    if connection is None:
        parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=f"Hold the link of one {protocol.upper()} connection.")
        parser.add_argument("--connection", required=True, help=f"the {protocol} connection whose link this process holds")
        connection = parser.parse_args(argv).connection

    async def setup(runtime: Runtime) -> None:
        conn = runtime.registry.connections.get(connection)
        if conn is None or conn.protocol != protocol:
            known = ", ".join(sorted(n for n, c in runtime.registry.connections.items() if c.protocol == protocol)) or "none"
            print(f"{runtime.registry.source}: no {protocol.upper()} connection {connection!r} (known: {known})", file=sys.stderr)
            raise SystemExit(2)
        if getattr(conn, "tls", False):
            try:
                client_context(conn.tls_ca, conn.tls_verify)
            except TlsConfigError as exc:
                print(f"{runtime.registry.source}: connection {connection!r}: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
        await connector(runtime, conn).start()
        # What start-up created lives as long as the process: keep it out of every collection.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    run_service(f"{protocol}-{connection}", setup)
