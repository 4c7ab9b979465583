"""What every HTTP transport shares: one worker runs one or more adapters.

An adapter (services/providers/adapter.py) only knows its provider. This module does the rest,
in this order for each SendRequest taken from `transport.<key>`:

1. channel lookup (`failed` `channel_not_found`), expiry (`failed` `expired`);
2. on a redelivery, the `sent:<channel>:<id>` record: when the send already succeeded its
   `wired` status is published again and nothing is sent (CONTRACT section 8);
3. `adapter.build` (a ChannelConfigError is `failed` `channel_config`), the SSRF guard;
4. the per-channel concurrency cap and `tps` token bucket, then the parts in order on the
   process's HTTP pool (HttpPool); the first part that is not accepted stops the rest;
5. on success the `sent:` record and the `ext:` correlation records are written to Redis
   before anything is published, then `wired`; `errored` goes to `retry.<delay_ms>` until
   the delays run out and then becomes `failed`;
6. one ChannelLog per send on `sms.logs` (through the batched, unconfirmed
   core.channel_logs.ChannelLogPublisher, like every service's logs), secrets redacted, and
   the metrics.

Steps 3-4 are `send_parts` and the status decision is `decide`, plain functions that need no
broker; `HttpSender.handle` is the thin wiring around them.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial

import httpx
import orjson
import sniffio

from ..core.broker import Delivery
from ..core.channel_logs import ChannelLogPublisher
from ..core.channels import transport_key
from ..core.metrics import SEND_SECONDS, SENDS
from ..core.models import ChannelLog, HttpExchange, SendRequest, StatusError, StatusUpdate
from ..core.ratelimit import SharedTokenBucket, TokenBucket
from ..core.redact import redact
from ..core.redis_batch import RedisBatch
from ..core.retry import retry_delay_ms, schedule_retry
from ..core.service import Runtime, run_service
from ..core.settings import Settings
from ..providers.adapter import Adapter, ChannelConfigError, Outcome, OutgoingRequest, SendContext

log = logging.getLogger(__name__)

SENT_TTL_S = 24 * 3600  # CONTRACT section 8: the de-duplication record lives 24 h
CORRELATION_TTL_S = 7 * 24 * 3600  # REST_ADAPTERS.md 9.1: `ext:` records live 7 days
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_PREFETCH = 200
DEFAULT_PER_CHANNEL = 50
LOG_BODY_LIMIT = 10_000  # characters of a request or response body kept in a ChannelLog
# A provider's answer is a status and an id: anything bigger is not read into memory.
RESPONSE_LIMIT = 1024 * 1024
DNS_TTL_S = 60.0
GC_THRESHOLDS = (20_000, 20, 100)  # as the inbound server and the SMPP connector


@cache
def _send_seconds(transport: str):
    return SEND_SECONDS.labels(transport)


@cache
def _sends(transport: str, status: str):
    return SENDS.labels(transport, status)


# --------------------------------------------------------------------------- guards and limits


class SsrfGuard:
    """Refuses URLs that are not http(s) or whose host resolves to a non-public address, and
    says which address was vetted so that the request connects there (`pinned`).

    Resolution is asynchronous (the loop's getaddrinfo) and cached for `ttl` seconds per host,
    so the guard costs one lookup per host per minute. Every address the name resolves to must
    be public; a name that does not resolve raises OSError (a connection failure: DNS may come
    back). With `allow_private` only the scheme is checked and nothing is pinned.

    Why pin: a request that connects by name resolves it again, and a DNS-rebinding host can
    answer the guard with a public address and the connection with 127.0.0.1.
    """

    def __init__(self, allow_private: bool, ttl: float = DNS_TTL_S):
        self.allow_private = allow_private
        self.ttl = ttl
        self._cache: dict[tuple[str, int], tuple[float, str | None, str | None]] = {}

    async def refusal(self, url: str) -> str | None:
        """Why `url` may not be called, or None when it may. Raises OSError when the host
        does not resolve."""
        try:
            parsed = _parse_url(url)
        except httpx.InvalidURL as exc:
            return f"invalid URL: {exc}"
        if parsed.scheme not in ("http", "https"):
            return f"URL scheme {parsed.scheme!r} is not http or https"
        if not parsed.host:
            return "URL has no host"
        if self.allow_private:
            return None
        key = _host_key(parsed)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        reason, address = await self._check_host(*key)
        self._cache[key] = (now + self.ttl, reason, address)
        return reason

    def pinned(self, url: str) -> str | None:
        """The address `refusal(url)` vetted for the URL's host name, to connect to; None when
        the host is an address already, nothing was vetted, or `allow_private` is on."""
        if self.allow_private:
            return None
        cached = self._cache.get(_host_key(_parse_url(url)))
        return cached[2] if cached is not None and cached[1] is None else None

    async def _resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [info[4][0].split("%", 1)[0] for info in infos]

    def _allowed(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return is_public(address)

    async def _check_host(self, host: str, port: int) -> tuple[str | None, str | None]:
        """(why not, None) or (None, the address to connect to: None for an address literal)."""
        try:
            addresses, literal = [ipaddress.ip_address(host)], True
        except ValueError:
            addresses, literal = [ipaddress.ip_address(a) for a in await self._resolve(host, port)], False
        for address in addresses:
            if not self._allowed(address):
                return f"host {host} resolves to the non-public address {address} (SEND_ALLOW_PRIVATE is off)", None
        return None, (None if literal else str(addresses[0]))


def _host_key(url: httpx.URL) -> tuple[str, int]:
    return url.host, url.port or (443 if url.scheme == "https" else 80)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast: not loopback, private, link-local, reserved, shared or multicast."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass
class ChannelLimit:
    semaphore: asyncio.Semaphore
    bucket: TokenBucket | None
    tps: float


class ChannelLimits:
    """Per-channel concurrency cap and `tps` bucket, rebuilt when a channel's `tps` changes.

    With `redis` (and `prefix`, the deployment's key prefix) the bucket is shared by every copy
    of the connector through Redis: `tps` is the channel's limit, not each process's (CONTRACT
    section 6). Without it (unit tests), each process keeps its own."""

    def __init__(self, per_channel: int = DEFAULT_PER_CHANNEL, redis=None, prefix: str = ""):
        self.per_channel = per_channel
        self.redis = redis
        self.prefix = prefix
        self._limits: dict[str, ChannelLimit] = {}

    def _bucket(self, channel):
        if channel.tps <= 0:
            return None
        if self.redis is None:
            return TokenBucket(channel.tps)
        return SharedTokenBucket(self.redis, f"{self.prefix}tps:channel:{channel.uuid}", channel.tps)

    def get(self, channel) -> ChannelLimit:
        limit = self._limits.get(channel.uuid)
        if limit is None or limit.tps != channel.tps:
            bucket = self._bucket(channel)
            limit = ChannelLimit(asyncio.Semaphore(self.per_channel), bucket, channel.tps)
            self._limits[channel.uuid] = limit
        return limit


# --------------------------------------------------------------------------- one send


@dataclass
class SendResult:
    """What sending a message's parts gave: the outcome and what goes in the ChannelLog."""

    outcome: Outcome
    http: list[HttpExchange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)


class HttpPool:
    """The process's one HTTP connection pool, split over `shards` httpx transports used in turn.

    Why not a single AsyncClient: httpcore's pool walks every connection it holds (asking each
    socket whether it is still readable) whenever a request is queued or a response closed, so
    its cost per request grows with the connections in use. Against bench/http_sink.py, 50
    requests in flight cost 1.9 ms of CPU per request on one client and 0.7 ms on ten clients
    of five connections. Round robin keeps every shard's pool small and all of them warm.

    Why transports rather than clients: for a provider call the AsyncClient layer only adds
    work we do not use (auth flow, event hooks, a redirect request built for every 3xx, a
    cookie jar shared by every channel on the shard, proxy lookup per URL). `send` builds the
    request as `AsyncClient.build_request` would (the client's default headers, then the
    part's; the client's timeouts) and hands it to the shard's `AsyncHTTPTransport`, which
    maps httpcore's errors to httpx's exactly as under a client. Redirects are never followed,
    as before.
    """

    def __init__(
        self, timeout: float = DEFAULT_TIMEOUT_S, max_connections: int = 256, shards: int = 16,
        verify: ssl.SSLContext | None = None, response_limit: int = RESPONSE_LIMIT,
    ):  # fmt: skip
        per_shard = max(1, -(-max_connections // shards))
        self.response_limit = response_limit
        tls = verify or httpx.create_ssl_context()  # one CA bundle load for every shard
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self.transports = [httpx.AsyncHTTPTransport(verify=tls, limits=limits) for _ in range(shards)]
        # The headers and timeouts a default AsyncClient would add (no connection is opened).
        template = httpx.AsyncClient(timeout=timeout, verify=tls, trust_env=False)
        self.default_headers = template.headers
        self.extensions = {"timeout": template.timeout.as_dict()}
        self._turn = 0

    def build_request(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None, address: str | None = None
    ) -> httpx.Request:
        """The request; with `address` (the SSRF guard's vetted address) it connects there,
        keeping the name in the Host header and, for https, in TLS SNI and the certificate check."""
        merged = self.default_headers.copy()
        merged.update(headers)
        target, extensions = _parse_url(url), self.extensions
        if address is not None:
            merged["Host"] = target.netloc.decode("ascii")
            if target.scheme == "https":
                extensions = {**extensions, "sni_hostname": target.host}
            target = target.copy_with(host=address)
        return httpx.Request(method, target, headers=merged, content=content, extensions=extensions)

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The response to `request`, its body read (at most `response_limit` bytes, else
        ResponseTooLarge) and its connection released."""
        self._turn = (self._turn + 1) % len(self.transports)
        response = await self.transports[self._turn].handle_async_request(request)
        response.request = request
        try:
            return await _read_capped(response, self.response_limit)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        for transport in self.transports:
            await transport.aclose()


class ResponseTooLarge(Exception):
    """A provider's answer is bigger than the limit: not read, the connection dropped."""


async def _read_capped(response: httpx.Response, limit: int) -> httpx.Response:
    """`response` with its body read, never more than `limit` bytes of it (decoded, so a
    compressed answer cannot grow past it either)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"the answer declares {int(declared)} bytes, more than the {limit} read")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"the answer is more than the {limit} bytes read")
        chunks.append(chunk)
    # The body is decoded already: the response handed on holds it without the encoding header.
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
    return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks),
                          request=response.request, extensions=response.extensions)  # fmt: skip


@lru_cache(maxsize=1024)
def _parse_url(url: str) -> httpx.URL:
    """A channel's send URL is usually the same string for every message: parse it once.
    (httpx.URL is immutable; httpx.Request copies what it keeps.)"""
    return httpx.URL(url)


async def send_parts(
    adapter: Adapter,
    channel,
    request: SendRequest,
    ctx: SendContext,
    client: httpx.AsyncClient | HttpPool,
    guard: SsrfGuard,
    limit: ChannelLimit | None = None,
) -> SendResult:
    """Build the parts, check their URLs, and send them in order until one is not accepted.

    Never raises for anything the channel, the request or the provider did: every such case is
    an Outcome (`failed` `channel_config`, `errored` `connection_failed`, ...).
    """
    try:
        parts = adapter.build(channel, request, ctx)
    except (ChannelConfigError, ValueError) as exc:
        return _config_failure(str(exc))
    if not parts:
        return _config_failure("the adapter made no request for this message")
    for part in parts:
        try:
            refusal = await guard.refusal(part.url)
        except OSError as exc:
            message = f"cannot resolve {httpx.URL(part.url).host}: {exc}"
            return SendResult(Outcome("errored", code="connection_failed", message=message), errors=[message])
        if refusal is not None:
            return _config_failure(refusal)

    addresses = [guard.pinned(part.url) for part in parts]
    result = SendResult(Outcome("wired"))
    if limit is None:
        await _send_each(adapter, channel, parts, addresses, client, result, None)
    else:
        async with limit.semaphore:
            await _send_each(adapter, channel, parts, addresses, client, result, limit.bucket)
    return result


def _config_failure(message: str) -> SendResult:
    message = redact(message)
    return SendResult(Outcome("failed", code="channel_config", message=message), errors=[message])


async def _send_each(adapter, channel, parts, addresses, client, result: SendResult, bucket: TokenBucket | None) -> None:
    first_id: str | None = None
    for part, address in zip(parts, addresses, strict=True):
        if bucket is not None:
            await bucket.take()
        outcome = await _exchange(adapter, channel, part, client, result, address)
        if outcome.status != "wired":
            result.outcome = outcome
            if outcome.message:
                result.errors.append(outcome.message)
            return
        ids = outcome.external_ids or ((outcome.external_id,) if outcome.external_id else ())
        result.external_ids.extend(i for i in ids if i not in result.external_ids)
        if first_id is None:
            first_id = outcome.external_id
    result.outcome = Outcome("wired", external_id=first_id, external_ids=tuple(result.external_ids))


async def _exchange(adapter, channel, part: OutgoingRequest, http, result: SendResult, address: str | None = None) -> Outcome:
    """One HTTP request (to the vetted `address` when there is one): its Outcome, with the
    exchange appended to the ChannelLog."""
    started = time.perf_counter()
    request: httpx.Request | None = None
    response: httpx.Response | None = None
    try:
        if address is None:
            request = http.build_request(part.method, part.url, headers=part.headers, content=part.content)
        else:
            request = http.build_request(part.method, part.url, headers=part.headers, content=part.content, address=address)
        response = await http.send(request)
        outcome = adapter.interpret(channel, response)
    except ResponseTooLarge as exc:
        outcome = Outcome("errored", code="response_too_large", message=str(exc))
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        outcome = Outcome("failed", code="channel_config", message=redact(f"cannot make the request: {exc}"))
    except httpx.TimeoutException:
        outcome = Outcome("errored", code="connection_failed", message=f"timeout after {time.perf_counter() - started:.1f} s")
    except (httpx.TransportError, OSError) as exc:
        outcome = Outcome("errored", code="connection_failed", message=redact(f"connection failed: {type(exc).__name__} {exc}"))
    elapsed = time.perf_counter() - started
    _send_seconds(adapter.transport).observe(elapsed)
    result.http.append(_exchange_log(part, request, response, elapsed))
    return outcome


def _exchange_log(part: OutgoingRequest, request: httpx.Request | None, response: httpx.Response | None, elapsed: float):
    """The ChannelLog entry of one exchange, every secret masked."""
    if request is not None:
        target = request.url.raw_path.decode("ascii", "replace")
        head = "".join(f"{k}: {v}\n" for k, v in request.headers.items())
        body = request.content
    else:
        target, body = part.url, part.content or b""
        head = "".join(f"{k}: {v}\n" for k, v in part.headers.items())
    request_text = f"{part.method} {target} HTTP/1.1\n{head}\n{_clip(body)}"
    response_text = ""
    status = None
    if response is not None:
        status = response.status_code
        head = "".join(f"{k}: {v}\n" for k, v in response.headers.items())
        response_text = f"HTTP/1.1 {status} {response.reason_phrase}\n{head}\n{_clip(response.content)}"
    return HttpExchange.model_construct(
        url=redact(part.url),
        method=part.method,
        request=redact(request_text),
        status=status,
        response=redact(response_text),
        elapsed_ms=int(elapsed * 1000),
    )


def _clip(body: bytes) -> str:
    text = body[: LOG_BODY_LIMIT * 4].decode("utf-8", "replace")
    return text if len(text) <= LOG_BODY_LIMIT else text[:LOG_BODY_LIMIT] + "..."


# --------------------------------------------------------------------------- statuses


@dataclass(frozen=True)
class Decision:
    """The status a send ends in, and the delay of the retry to schedule (errored only)."""

    status: StatusUpdate
    retry_delay_ms: int | None = None


def status_update(
    request: SendRequest, transport: str | None, status: str, *, code: str | None = None, message: str = "",
    external_id: str | None = None, attempt: int | None = None, retry_in_ms: int | None = None,
) -> StatusUpdate:
    """A StatusUpdate about `request` (the values are ours, so no validation is repeated)."""
    error = StatusError.model_construct(code=code, message=message, retry_in_ms=retry_in_ms) if code else None
    return StatusUpdate(
        id=request.id, uuid=request.uuid, channel_uuid=request.channel_uuid, status=status,
        external_id=external_id, transport=transport, attempt=attempt, error=error,
    )  # fmt: skip


def decide(outcome: Outcome, request: SendRequest, transport: str, settings: Settings) -> Decision:
    """CONTRACT sections 5 and 8: `wired`; `errored` with a retry while delays remain, then
    `failed` with the error's code; `failed`. `attempt` counts this attempt (1 for the first)."""
    attempt = request.attempt + 1
    if outcome.status == "wired":
        return Decision(status_update(request, transport, "wired", external_id=outcome.external_id, attempt=attempt))
    code = outcome.code or ("connection_failed" if outcome.status == "errored" else "response_status")
    if outcome.status == "errored":
        delay = retry_delay_ms(settings, attempt)
        if delay is not None:
            status = status_update(
                request, transport, "errored", code=code, message=outcome.message, attempt=attempt, retry_in_ms=delay
            )
            return Decision(status, delay)
    return Decision(status_update(request, transport, "failed", code=code, message=outcome.message, attempt=attempt))


# --------------------------------------------------------------------------- the worker


class HttpSender:
    """Consumes `transport.<adapter.transport>` for each adapter and sends through it.

    One instance per process: one HTTP pool, one SSRF guard cache, one set of channel
    limits. `on_accepted` (tests only) is awaited right after the `sent:` record is written,
    the moment a crash is most costly.
    """

    def __init__(
        self,
        runtime: Runtime,
        adapters: Sequence[Adapter],
        *,
        client: httpx.AsyncClient | HttpPool | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        prefetch: int = DEFAULT_PREFETCH,
        per_channel: int = DEFAULT_PER_CHANNEL,
        on_accepted: Callable[[SendRequest], Awaitable[None]] | None = None,
    ):
        self.runtime = runtime
        self.adapters = list(adapters)
        self.client = client or HttpPool(timeout, max_connections=max(prefetch, per_channel))
        self.prefetch = prefetch
        self.guard = SsrfGuard(runtime.settings.send_allow_private)
        self.limits = ChannelLimits(per_channel, runtime.redis, runtime.settings.prefix)
        self.ctx = SendContext(runtime.settings)
        self.on_accepted = on_accepted
        self.redis_batch = RedisBatch(runtime.redis)
        self.logs: ChannelLogPublisher | None = None

    async def start(self) -> None:
        self.logs = await ChannelLogPublisher(self.runtime.connection, self.runtime.settings, self.runtime.name).start()
        self.runtime.on_stop.append(self.close)
        for adapter in self.adapters:
            await self.runtime.consume(
                f"transport.{adapter.transport}",
                partial(self.handle, adapter),
                model=SendRequest,
                prefetch=self.prefetch,
                transport=adapter.transport,
            )

    async def close(self) -> None:
        """After the consumers stopped: the queued channel logs, then the HTTP pool."""
        if self.logs is not None:
            await self.logs.close()
        await self.client.aclose()

    def sent_key(self, request: SendRequest) -> str:
        return self.runtime.key(f"sent:{request.channel_uuid}:{request.id}")

    async def handle(self, adapter: Adapter, request: SendRequest, delivery: Delivery) -> None:
        transport = adapter.transport
        channel = self.runtime.registry.get(request.channel_uuid)
        if channel is None:
            self._finish(delivery, request, transport, Outcome("failed", code="channel_not_found",
                                                               message=f"no channel {request.channel_uuid}"))  # fmt: skip
            return
        if transport_key(channel) != transport:
            message = f"channel {channel.uuid} is sent through {transport_key(channel)}, not {transport}"
            self._finish(delivery, request, transport, Outcome("failed", code="channel_config", message=message))
            return
        if request.expired():
            self._finish(delivery, request, transport, Outcome("failed", code="expired", message=f"expired on {request.expires_on}"))
            return
        if delivery.redelivered and await self._republish_sent(request, delivery):
            return

        result = await send_parts(adapter, channel, request, self.ctx, self.client, self.guard, self.limits.get(channel))
        decision = decide(result.outcome, request, transport, self.runtime.settings)
        if decision.status.status == "wired":
            await self._record_sent(request, decision.status, result.external_ids)
            if self.on_accepted is not None:
                await self.on_accepted(request)
        elif decision.retry_delay_ms is not None:
            schedule_retry(delivery, transport, decision.status.attempt, decision.retry_delay_ms,
                           message_id=f"{request.channel_uuid}:{request.id}:retry:{decision.status.attempt}")  # fmt: skip
        delivery.publish_status(decision.status)
        self.logs.add(self._channel_log(request, result))
        _sends(transport, decision.status.status).inc()
        if decision.status.status != "wired":
            error = decision.status.error
            log.info("send not accepted", extra={"channel": request.channel_uuid, "msg_id": request.id,
                                                 "status": decision.status.status, "code": error.code if error else None})  # fmt: skip

    def _finish(self, delivery: Delivery, request: SendRequest, transport: str, outcome: Outcome) -> None:
        """A send that ends before any HTTP request: its status and a ChannelLog with the reason."""
        decision = decide(outcome, request, transport, self.runtime.settings)
        delivery.publish_status(decision.status)
        result = SendResult(outcome, errors=[outcome.message] if outcome.message else [])
        self.logs.add(self._channel_log(request, result))
        _sends(transport, decision.status.status).inc()
        log.info("send refused", extra={"channel": request.channel_uuid, "msg_id": request.id, "code": outcome.code})

    @staticmethod
    def _channel_log(request: SendRequest, result: SendResult) -> ChannelLog:
        return ChannelLog(channel_uuid=request.channel_uuid, type="msg_send", msg_id=request.id,
                          http=result.http, errors=[redact(e) for e in result.errors])  # fmt: skip

    async def _record_sent(self, request: SendRequest, wired: StatusUpdate, external_ids: Iterable[str]) -> None:
        """The `sent:` record first, then one `ext:` correlation record per provider id, in one
        round trip, before `wired` is published. When Redis fails here the message was still
        sent: it is reported `wired` rather than retried (which would send it twice)."""
        items = [(self.sent_key(request), wired.to_bytes(), SENT_TTL_S)]
        if external_ids:
            correlation = orjson.dumps({"id": request.id, "uuid": request.uuid})
            for external_id in external_ids:
                items.append((self.runtime.key(f"ext:{request.channel_uuid}:{external_id}"), correlation, CORRELATION_TTL_S))
        try:
            await self.redis_batch.set_all(items)
        except Exception as exc:  # redis.RedisError, OSError: the send must still be reported
            log.error("could not write the sent record; a redelivery would send again",
                      extra={"channel": request.channel_uuid, "msg_id": request.id, "error": str(exc)})  # fmt: skip

    async def _republish_sent(self, request: SendRequest, delivery: Delivery) -> bool:
        """On a redelivery whose send already succeeded: publish its `wired` again, send nothing."""
        stored = await self.runtime.redis.get(self.sent_key(request))
        if stored is None:
            return False
        delivery.publish_status(StatusUpdate.from_bytes(stored))
        log.info("redelivered message was already sent; status republished",
                 extra={"channel": request.channel_uuid, "msg_id": request.id})  # fmt: skip
        return True


async def serve_adapters(runtime: Runtime, adapters: Sequence[Adapter], **options) -> HttpSender:
    """Start an HttpSender for `adapters` on `runtime` (a `run_service` setup step)."""
    sender = HttpSender(runtime, adapters, **options)
    await sender.start()
    return sender


def run_adapters(name: str, adapters: Sequence[Adapter], **options) -> None:
    """Entry point of a worker that sends through `adapters` (`switchboard run external`)."""

    async def setup(runtime: Runtime) -> None:
        await serve_adapters(runtime, adapters, **options)
        # What start-up created lives as long as the process: keep it out of every collection,
        # and let the young generation grow (the default 700 collected every few sends).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        # httpcore asks sniffio which async library runs, several times per request; sniffio's
        # answer comes from asyncio.current_task(), whose get_running_loop makes a getpid()
        # system call on Python 3.11 (about 4% of this worker's CPU). This thread only ever
        # runs this asyncio loop, so say so once, through sniffio's documented override.
        sniffio.thread_local.name = "asyncio"

    run_service(name, setup)
