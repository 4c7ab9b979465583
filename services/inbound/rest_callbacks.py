"""The callback routes of the REST aggregators: `/c/<aggregator>/{uuid}/receive|status`.

Each aggregator's module (`services/providers/<name>.py`) parses its provider's
callbacks into plain results (`Incoming`, `Report`, `Ignored`, `Rejected`); this module turns
those into what the edge publishes and answers, the same way for all of them
(REST_ADAPTERS.md 9.1): InboundMessages with `transport` `rest.<aggregator>`, StatusUpdates
correlated to the SendRequest through the Redis `ext:` record (else the `id` our callback URL
carried, else only the provider's id), `Ignored` for unmapped statuses, 400/403 with a reason.
`services/inbound/<aggregator>.py` are one-line modules that register the routes.
"""

from __future__ import annotations

import logging
from datetime import UTC
from urllib.parse import parse_qsl

import orjson

from ..core.models import InboundMessage, StatusError, StatusUpdate, now_iso
from ..providers import ADAPTERS
from ..providers.base import CallbackRequest, Ignored, Incoming, Rejected, Report, RestAdapter
from .common import Answer, Call, RequestError, json_answer, parse_body, status_ids
from .external import STATUS_LETTERS, external_actions, urn_of
from .routes import Action, CallbackRoutes

log = logging.getLogger(__name__)

CORRELATION_UNAVAILABLE = "correlation store unavailable, try again later"
_FORM = "application/x-www-form-urlencoded"


async def callback_request(call: Call) -> CallbackRequest:
    """The request as an adapter's parser sees it (see CallbackRequest)."""
    params = await call.params()
    content_type = call.content_type
    form: dict[str, list[str]] = {}
    if content_type == _FORM and call.body:
        for key, value in parse_qsl(call.body.decode("utf-8", "replace"), keep_blank_values=True):
            form.setdefault(key, []).append(value)
    elif content_type == "multipart/form-data":
        form = {key: [value] for key, value in (await parse_body(content_type, call.header(b"content-type") or "", call.body)).items()}
    body_json = None
    if call.body and (content_type == "application/json" or content_type.endswith("+json")):
        body_json = orjson.loads(call.body)  # params() already refused a body that is not JSON
    query = call.query_string.decode("utf-8", "replace")
    url = call.edge.public_base + call.path + (f"?{query}" if query else "")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in call.headers}
    return CallbackRequest(
        params=params, query=call.query(), form=form, json=body_json, headers=headers, url=url, method=call.method
    )


def ignored(call: Call, reason: str) -> Answer:
    """Courier's answer to a callback it understood but does not act on."""
    return json_answer("Ignored", [{"type": "info", "channel_uuid": call.channel.uuid, "info": reason}])


async def publish_messages(call: Call, adapter: RestAdapter, incoming: list[Incoming]) -> Answer:
    channel = call.channel
    data = []
    for item in incoming:
        urn, path = urn_of(channel, item.sender)
        received_on = _iso(item.received_on) if item.received_on else now_iso()
        message = InboundMessage(
            channel_uuid=channel.uuid, urn=urn, from_=path, text=item.text, attachments=list(item.attachments),
            received_on=received_on, external_id=item.external_id, transport=adapter.transport,
        )  # fmt: skip
        await call.publish_message(message)
        call.msg_id = message.uuid
        data.append({"type": "msg", "channel_uuid": channel.uuid, "msg_uuid": message.uuid, "text": item.text,
                     "urn": urn, "received_on": received_on, "external_id": item.external_id})  # fmt: skip
    if adapter.receive_answer is not None:
        body, content_type = adapter.receive_answer
        return Answer(200, body, content_type)
    return json_answer("Message Accepted", data)


def _iso(stamp) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def correlate(call: Call, external_id: str | None, msg_id: str | None) -> tuple[int | str | None, str | None]:
    """(id, uuid) of the SendRequest a report is about: the `ext:` record written when the
    provider accepted it, else the `id` our callback URL carried, else (None, None)."""
    if external_id:
        runtime = call.edge.runtime
        try:
            stored = await runtime.redis.get(runtime.key(f"ext:{call.channel.uuid}:{external_id}"))
        except Exception as exc:  # redis.RedisError, OSError: the provider retries later
            log.warning("correlation lookup failed", extra={"channel": call.channel.uuid, "error": str(exc)})
            raise RequestError(CORRELATION_UNAVAILABLE, 503) from None
        if stored:
            try:
                record = orjson.loads(stored)
                return record.get("id"), record.get("uuid")
            except (orjson.JSONDecodeError, AttributeError):
                log.warning("unreadable correlation record", extra={"channel": call.channel.uuid})
    if msg_id and msg_id.strip():
        return status_ids(msg_id, "")
    return None, None


async def publish_reports(call: Call, adapter: RestAdapter, reports: list[Report]) -> Answer:
    channel = call.channel
    data = []
    for report in reports:
        msg_id, msg_uuid = await correlate(call, report.external_id, report.msg_id)
        error = StatusError(code=report.error_code, message=report.error_message) if report.error_code else None
        update = StatusUpdate(
            id=msg_id, uuid=msg_uuid, channel_uuid=channel.uuid, status=report.status,
            external_id=report.external_id, transport=adapter.transport, error=error,
        )  # fmt: skip
        await call.publish_status(update)
        call.msg_id = msg_id if msg_id is not None else msg_uuid
        data.append({"type": "status", "channel_uuid": channel.uuid, "status": STATUS_LETTERS[report.status],
                     "external_id": report.external_id})  # fmt: skip
    return json_answer("Status Update Accepted", data)


def parsed_action(adapter: RestAdapter, action: str):
    """The edge action of one parser: parse, then publish and answer, or refuse."""
    parser = adapter.callbacks[action]

    async def handle(call: Call) -> Answer:
        result = parser(call.channel, await callback_request(call))
        if isinstance(result, Rejected):
            raise RequestError(result.reason, result.status)
        if isinstance(result, Ignored):
            return ignored(call, result.reason)
        if not result:
            return ignored(call, "nothing to publish")
        if isinstance(result[0], Incoming):
            return await publish_messages(call, adapter, result)
        return await publish_reports(call, adapter, result)

    return handle


def generic_status(status: str, transport: str):
    """`/c/generic/{uuid}/sent|delivered|failed`: section 7's status route, which also takes
    the provider's `external_id` (correlated through Redis) instead of `id`/`uuid`."""

    async def handle(call: Call) -> Answer:
        params = await call.params()
        raw_id, raw_uuid, external_id = params.get("id", ""), params.get("uuid", ""), params.get("external_id", "").strip()
        if raw_id.strip() or raw_uuid.strip():
            msg_id, msg_uuid = status_ids(raw_id, raw_uuid)
        elif external_id:
            msg_id, msg_uuid = await correlate(call, external_id, None)
        else:
            raise RequestError("parameters id, uuid or external_id should not be empty")
        update = StatusUpdate(
            id=msg_id, uuid=msg_uuid, channel_uuid=call.channel.uuid, status=status,
            external_id=external_id or None, transport=transport,
        )  # fmt: skip
        await call.publish_status(update)
        call.msg_id = msg_id if msg_id is not None else msg_uuid
        return json_answer(
            "Status Update Accepted", [{"type": "status", "channel_uuid": call.channel.uuid, "status": STATUS_LETTERS[status]}]
        )

    return handle


def rest_routes(aggregator: str) -> CallbackRoutes:
    """The routes of one aggregator, for its `services/inbound/<aggregator>.py` module."""
    adapter = ADAPTERS[aggregator]
    if aggregator == "generic":
        actions = external_actions(adapter.transport)
        for status in STATUS_LETTERS:
            actions[status] = Action(generic_status(status, adapter.transport), "msg_status")
    else:
        log_types = {"receive": "msg_receive", "status": "msg_status"}
        actions = {name: Action(parsed_action(adapter, name), log_types[name]) for name in adapter.callbacks}
    return CallbackRoutes(
        slug=aggregator,
        serves=lambda channel: channel.type == "rest" and channel.aggregator == aggregator,
        actions=actions,
    )
