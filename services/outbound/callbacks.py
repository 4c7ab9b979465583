"""`switchboard run callbacks`: the front doors call RapidPro back (CONTRACT section 10).

Two steps, each on its own durable queue (services/core/callback_queues.py):

1. **Plan** (`callbacks.status`, `callbacks.inbound`). A StatusUpdate of a message a door
   accepted becomes the callbacks it owes, as jobs: Kannel DLR GETs (`dlr_types` in
   services/providers/kannel_door.py decides which, from the state kept in the message's
   `door:<uuid>` Redis hash) or one EX status POST; an InboundMessage becomes one MO POST per
   door that forwards its channel. The decision and the per-message sequence number are
   written to the hash in one optimistic transaction, with the jobs themselves: a redelivered
   status gets the same jobs again, never new ones.
2. **Deliver**, right away, while the status (or message) is held unacked. One HTTP request
   per job. Order per message: job `n` goes out only once job `n-1` was answered 2xx (or given
   up); the hash's `acked` says how far a message got. 2xx -> done. A timeout, connection
   error or 5xx -> the job is published to the shared `retry.<delay_ms>` queues (CC
   `callbacks`, exactly as a SendRequest's retry), which hand it to `callbacks.deliver`
   (bound to `sms.transport` `callbacks`) when the delay is over, with the delays of
   SWITCHBOARD_RETRY_DELAYS_MS, the last one repeated, until 24 h after its first try; a job
   whose predecessor is still pending waits the same way. A 4xx (or an URL the SSRF guard
   refuses, or 24 h of failures) is final: the job is dead-lettered to `sms.dead` with
   `x-error` giving the answer's status and body, and the next job of the message may go.

The status is acked only once each of its jobs was answered, or its retry or dead letter was
confirmed by the broker. At least once: a worker killed at any moment loses nothing (the
status comes back, and gets its jobs again; those already answered are skipped); a kill
between a 2xx and the `acked` write repeats that one callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode

import httpx
import orjson
from prometheus_client import Counter
from pydantic import ConfigDict
from redis.exceptions import WatchError

from ..core.broker import Delivery
from ..core.callback_queues import DELIVER_KEY, DELIVER_QUEUE, INBOUND_QUEUE, STATUS_QUEUE
from ..core.models import Body, InboundMessage, StatusUpdate
from ..core.redact import redact
from ..core.service import Runtime, run_service
from ..providers import external_door as ex
from ..providers import kannel_door as kn
from .sender import HttpPool, SsrfGuard

log = logging.getLogger(__name__)

GIVE_UP_AFTER_S = 24 * 3600  # retries go on for at least this long after the first try
WAIT_FOR_PREDECESSOR_S = 30.0  # in this process; beyond that the job waits in a retry queue
TIMEOUT_S = 15.0
PREFETCH = 64
BODY_IN_ERROR = 500  # characters of the answer kept in `x-error`
CALLBACKS = Counter("switchboard_callbacks_total", "Front door callbacks by kind and outcome", ["kind", "outcome"])

_MARK_ACKED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'acked') or '0')
if tonumber(ARGV[1]) > current then redis.call('HSET', KEYS[1], 'acked', ARGV[1]) end
return 1
"""


class CallbackJob(Body):
    """One callback to make, as it travels `callbacks.deliver` and the retry queues."""

    model_config = ConfigDict(extra="ignore", title="CallbackJob")

    door: str
    kind: Literal["dlr", "status", "mo"]
    method: Literal["GET", "POST"] = "POST"
    url: str
    form: dict[str, str] | None = None  # a POST's urlencoded body
    key: str | None = None  # the message's door record: callbacks with a key go out in `seq` order
    seq: int = 0
    attempt: int = 0  # failed tries so far
    waits: int = 0  # times it waited for its predecessor
    first_at: float
    about: str = ""  # the message (uuid) it is about, for logs


def _epoch(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def _reply(status: StatusUpdate) -> str:
    """Kannel's %A (the SMSC's reply): the error when there is one, else the status."""
    if status.error is not None:
        return f"{status.error.code}: {status.error.message}".rstrip(": ")
    return status.status


def plan_kannel(record: dict, fields: dict[bytes, bytes], status: StatusUpdate, key: str, now: float):
    """(jobs, hash updates) of one status of a Kannel door message."""
    state = kn.DlrState(
        types=frozenset(int(t) for t in fields.get(b"types", b"").split(b",") if t),
        wired=fields.get(b"wired") == b"1",
    )
    types, new_state = kn.dlr_types(status.status, int(record["mask"]), state)
    seq = int(fields.get(b"seq", 0))
    jobs = []
    for kind in types:
        seq += 1
        values = kn.dlr_values(record, kind, _reply(status), status.external_id or "", status.transport or "", now)
        url = kn.fill_escapes(record["url"], values)
        jobs.append(CallbackJob(door=record["door"], kind="dlr", method="GET", url=url, key=key, seq=seq,
                                first_at=now, about=record["uuid"]))  # fmt: skip
    updates = {"types": ",".join(str(t) for t in sorted(new_state.types)), "wired": "1" if new_state.wired else "0", "seq": seq}
    return jobs, updates


def plan_external(record: dict, fields: dict[bytes, bytes], status: StatusUpdate, key: str, now: float, door):
    done = frozenset(a for a in fields.get(b"actions", b"").decode().split(",") if a)
    action = ex.status_action(status.status, done)
    if action is None or door is None:
        return [], {}
    seq = int(fields.get(b"seq", 0)) + 1
    url = door.callback_base.rstrip("/") + "/" + action
    job = CallbackJob(door=record["door"], kind="status", url=url, form=ex.status_form(record["ref"]), key=key, seq=seq,
                      first_at=now, about=record["uuid"])  # fmt: skip
    return [job], {"actions": ",".join(sorted(done | {action})), "seq": seq}


class Callbacks:
    """The worker: plans on `callbacks.status` / `callbacks.inbound`, delivers `callbacks.deliver`."""

    def __init__(self, runtime: Runtime, *, timeout: float = TIMEOUT_S, prefetch: int = PREFETCH):
        self.runtime = runtime
        self.settings = runtime.settings
        self.pool = HttpPool(timeout, max_connections=prefetch, shards=4)
        self.guard = SsrfGuard(runtime.settings.send_allow_private)
        self.prefetch = prefetch
        self._inflight: dict[tuple[str, int], asyncio.Event] = {}
        self._mark_acked = runtime.redis.register_script(_MARK_ACKED)
        self._last_warning: dict[str, float] = {}

    async def start(self) -> None:
        self.runtime.on_stop.append(self.pool.aclose)
        await self.runtime.consume(STATUS_QUEUE, self.on_status, model=StatusUpdate, prefetch=self.prefetch)
        await self.runtime.consume(INBOUND_QUEUE, self.on_inbound, model=InboundMessage, prefetch=self.prefetch)
        await self.runtime.consume(DELIVER_QUEUE, self.on_job, model=CallbackJob, prefetch=self.prefetch)

    # ------------------------------------------------------------------ planning

    async def on_status(self, status: StatusUpdate, delivery: Delivery) -> None:
        ident = status.id if status.id is not None else status.uuid
        if ident is None:
            return
        key = self.runtime.key(f"door:{ident}")
        jobs = await self.plan_status(key, status)  # claimed in flight already (see _claim)
        try:
            for job in jobs:
                await self.on_job(job, delivery)
        finally:
            self._release(jobs)

    async def plan_status(self, key: str, status: StatusUpdate) -> list[CallbackJob]:
        """The jobs this status owes, decided once: a second delivery of the same status gets
        the jobs decided the first time (the deliverer skips what was already answered)."""
        decided = f"s:{status.status}".encode()
        async with self.runtime.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    fields = await pipe.hgetall(key)
                    if b"d" not in fields:  # not a door's message (or its record expired)
                        await pipe.reset()
                        return []
                    if decided in fields:
                        await pipe.reset()
                        return self._claim([CallbackJob.model_validate(j) for j in orjson.loads(fields[decided])])
                    record = orjson.loads(fields[b"d"])
                    now = time.time()
                    if record["kind"] == "kannel":
                        jobs, updates = plan_kannel(record, fields, status, key, now)
                    else:
                        door = self.runtime.registry.doors.get(record["door"])
                        if door is None:
                            self._warn("door-gone", "a message's front door is no longer in the channels file", door=record["door"])
                        jobs, updates = plan_external(record, fields, status, key, now, door)
                    updates[decided] = orjson.dumps([j.model_dump() for j in jobs])
                    pipe.multi()
                    pipe.hset(key, mapping=updates)
                    await pipe.execute()
                    return self._claim(jobs)
                except WatchError:  # another status of the same message was planned meanwhile
                    continue

    async def on_inbound(self, message: InboundMessage, delivery: Delivery) -> None:
        registry = self.runtime.registry
        now = time.time()
        for door in registry.doors.values():
            if message.channel_uuid not in door.fed_channels():
                continue
            if door.kind == "kannel":
                channel = registry.get(message.channel_uuid)
                values = kn.mo_values(message.from_, channel.address if channel else "", message.text,
                                      _epoch(message.received_on), message.uuid, message.transport)  # fmt: skip
                job = CallbackJob(door=door.name, kind="mo", url=kn.fill_escapes(door.mo.url, values), first_at=now, about=message.uuid)
            else:
                form = ex.receive_form(message.from_, message.text, message.received_on)
                url = door.callback_base.rstrip("/") + "/receive"
                job = CallbackJob(door=door.name, kind="mo", url=url, form=form, first_at=now, about=message.uuid)
            await self.on_job(job, delivery)

    # ------------------------------------------------------------------ delivering

    def _claim(self, jobs: list[CallbackJob]) -> list[CallbackJob]:
        """Mark `jobs` in flight in this process, with no await between their planning and
        this: the message's next job (planned by another status a moment later) must find
        them here and wait in memory, not in a retry queue."""
        for job in jobs:
            if job.key:
                self._inflight.setdefault((job.key, job.seq), asyncio.Event())
        return jobs

    def _release(self, jobs: list[CallbackJob]) -> None:
        for job in jobs:
            if job.key:
                done = self._inflight.pop((job.key, job.seq), None)
                if done is not None:
                    done.set()

    async def on_job(self, job: CallbackJob, delivery: Delivery) -> None:
        self._claim([job])  # before the first await (a job from the retry queues)
        try:
            await self._deliver(job, delivery)
        finally:
            self._release([job])

    async def _deliver(self, job: CallbackJob, delivery: Delivery) -> None:
        redis = self.runtime.redis
        if job.key:
            acked_raw, seq_raw = await redis.hmget(job.key, "acked", "seq")
            if seq_raw is not None:  # the record is alive: keep the order
                acked = int(acked_raw or 0)
                if job.seq <= acked:
                    return  # answered before (a redelivery or a re-planned status)
                if job.seq > acked + 1:
                    before = self._inflight.get((job.key, job.seq - 1))
                    if before is not None:
                        try:
                            await asyncio.wait_for(before.wait(), WAIT_FOR_PREDECESSOR_S)
                        except TimeoutError:
                            pass
                        acked = int(await redis.hget(job.key, "acked") or 0)
                    if job.seq > acked + 1:
                        self._wait(delivery, job)
                        return
        outcome, detail = await self.call(job)
        CALLBACKS.labels(job.kind, outcome).inc()
        if outcome == "retry" and time.time() - job.first_at < GIVE_UP_AFTER_S:
            self._retry(delivery, job, detail)
            return
        if outcome != "ok":
            if outcome == "retry":
                detail = f"gave up after {GIVE_UP_AFTER_S // 3600} h: {detail}"
            self._dead_letter(delivery, job, detail)
            await delivery.settle()  # confirmed before the next callback of the message may go
        if job.key:
            await self._mark_acked(keys=[job.key], args=[job.seq])

    async def call(self, job: CallbackJob) -> tuple[str, str]:
        """("ok" | "retry" | "final", what happened). Never raises for the remote's doing."""
        try:
            refusal = await self.guard.refusal(job.url)
        except OSError as exc:
            return "retry", f"cannot resolve the host: {exc}"
        if refusal is not None:
            return "final", refusal
        headers: dict[str, str] = {}
        content = None
        if job.method == "POST":
            content = urlencode(job.form or {}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            response = await self.pool.send(self.pool.build_request(job.method, job.url, headers, content))
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            return "final", f"cannot make the request: {exc}"
        except httpx.TimeoutException:
            return "retry", f"timeout after {time.perf_counter() - started:.1f} s"
        except (httpx.TransportError, OSError) as exc:
            return "retry", f"connection failed: {type(exc).__name__} {exc}"
        code = response.status_code
        body = response.content[: BODY_IN_ERROR * 4].decode("utf-8", "replace")[:BODY_IN_ERROR]
        if 200 <= code < 300:
            return "ok", ""
        return ("retry" if code >= 500 else "final"), f"HTTP {code}: {body}"

    def _delay_ms(self, count: int) -> int:
        delays = self.settings.retry_delays_ms
        return delays[min(count, len(delays) - 1)]

    def _retry(self, delivery: Delivery, job: CallbackJob, detail: str) -> None:
        delay = self._delay_ms(job.attempt)
        again = job.model_copy(update={"attempt": job.attempt + 1})
        delivery.publish("sms.retry", str(delay), again.to_bytes(), headers={"CC": [DELIVER_KEY]},
                         message_id=f"cb:{job.door}:{job.about}:{job.seq or job.kind}:try{again.attempt}")  # fmt: skip
        self._warn(f"retry-{job.door}", "callback not answered; retried later", door=job.door, kind=job.kind,
                   url=redact(job.url), error=redact(detail), retry_in_ms=delay, attempt=again.attempt)  # fmt: skip

    def _wait(self, delivery: Delivery, job: CallbackJob) -> None:
        """Its predecessor is not answered yet: back through a retry queue, not an attempt."""
        if time.time() - job.first_at > 2 * GIVE_UP_AFTER_S:  # its predecessor was lost: go anyway
            job = job.model_copy(update={"key": None})
        delay = self._delay_ms(job.waits)
        again = job.model_copy(update={"waits": job.waits + 1})
        delivery.publish("sms.retry", str(delay), again.to_bytes(), headers={"CC": [DELIVER_KEY]},
                         message_id=f"cb:{job.door}:{job.about}:{job.seq}:wait{again.waits}")  # fmt: skip

    def _dead_letter(self, delivery: Delivery, job: CallbackJob, detail: str) -> None:
        headers = {
            "x-error": redact(detail)[:1000],
            "x-original-exchange": self.settings.name("sms.transport"),
            "x-original-routing-key": DELIVER_KEY,
            "x-queue": self.settings.name(DELIVER_QUEUE),
            "x-service": "callbacks",
        }
        # As a replay (`switchboard dead replay`) would send it: on its own, out of the message's order.
        parked = job.model_copy(update={"key": None, "attempt": 0, "waits": 0, "first_at": time.time()})
        delivery.publish("sms.dead", f"callback.{job.door}", parked.to_bytes(), headers=headers,
                         message_id=f"cb:{job.door}:{job.about}:{job.seq or job.kind}:dead")  # fmt: skip
        log.warning("callback refused; dead-lettered", extra={"door": job.door, "kind": job.kind, "url": redact(job.url),
                                                              "error": redact(detail)[:300]})  # fmt: skip

    def _warn(self, topic: str, message: str, **extra) -> None:
        """At most one line per topic a second: RapidPro down must not flood the logs."""
        now = time.monotonic()
        if now - self._last_warning.get(topic, 0.0) < 1.0:
            return
        self._last_warning[topic] = now
        log.warning(message, extra=extra)


async def setup(runtime: Runtime) -> None:
    if not runtime.registry.doors:
        log.info("no front doors in the channels file; nothing to call back")
        return
    await Callbacks(runtime).start()


def main() -> None:
    """`switchboard run callbacks` / `python -m services.outbound.callbacks`."""
    run_service("callbacks", setup)


if __name__ == "__main__":
    main()
