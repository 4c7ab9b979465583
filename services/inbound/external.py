"""`/c/ex/{uuid}/<action>`: RapidPro's External API channel (courier's `EX` handler, CONTRACT 7).

`receive` publishes an InboundMessage, `sent|delivered|failed` a StatusUpdate and `stopped` a
`stop_contact` ChannelEvent. `external_actions(transport)` builds the same actions for another
transport, so that the REST `generic` aggregator (whose callbacks "behave exactly as section
7's routes") can serve them under `/c/generic/` with `transport` `rest.generic`.
"""

from __future__ import annotations

from ..core.models import ChannelEvent, InboundMessage, StatusUpdate, now_iso
from ..core.urns import UrnError, sender_urn
from . import xmlfields
from .common import Answer, Call, RequestError, first_param, json_answer, option, parse_date, status_ids
from .routes import Action, CallbackRoutes

NO_SENDER = "must have one of 'sender' or 'from' set"
STATUS_LETTERS = {"sent": "S", "delivered": "D", "failed": "F"}


def external_actions(transport: str) -> dict[str, Action]:
    async def receive(call: Call) -> Answer:
        return await receive_message(call, transport)

    def status_action(status: str):
        async def status_callback(call: Call) -> Answer:
            return await receive_status(call, status, transport)

        return status_callback

    actions = {"receive": Action(receive, "msg_receive"), "stopped": Action(receive_stop, "event_receive")}
    for status in STATUS_LETTERS:
        actions[status] = Action(status_action(status), "msg_status")
    return actions


def urn_of(channel, sender: str) -> tuple[str, str]:
    scheme = channel.schemes[0] if channel.schemes else "tel"
    try:
        return sender_urn(sender, country=channel.country, scheme=scheme)
    except UrnError as exc:
        raise RequestError(str(exc)) from None


async def receive_message(call: Call, transport: str) -> Answer:
    channel = call.channel
    from_xpath, text_xpath = option(channel, "from_xpath"), option(channel, "text_xpath")
    date = ""
    if from_xpath and text_xpath:
        sender, text = _xml_fields(call.body, from_xpath, text_xpath)
    else:
        params = await call.params()
        sender = first_param(params, option(channel, "mo_from_field"), "from", "sender")
        text = first_param(params, option(channel, "mo_text_field"), "text")
        date = first_param(params, option(channel, "mo_date_field"), "date", "time")
    if not sender:
        raise RequestError(NO_SENDER)
    received_on = parse_date(date) if date else now_iso()
    urn, path = urn_of(channel, sender)
    message = InboundMessage(
        channel_uuid=channel.uuid, urn=urn, from_=path, text=text, received_on=received_on, transport=transport
    )
    msg_uuid = message.uuid
    window = option(channel, "dedupe_window_s", 0)
    if window:
        dedupe = call.edge.dedupe
        key = dedupe.key(channel.uuid, urn, text)
        msg_uuid = await dedupe.publish_once(key, message.uuid, int(window), lambda: call.publish_message(message))
    else:
        await call.publish_message(message)
    call.msg_id = msg_uuid

    literal = option(channel, "mo_response")
    if literal:
        content_type = option(channel, "mo_response_content_type") or "text/plain; charset=utf-8"
        return Answer(200, literal.encode(), content_type)
    return json_answer(
        "Message Accepted",
        [
            {
                "type": "msg",
                "channel_uuid": channel.uuid,
                "msg_uuid": msg_uuid,
                "text": text,
                "urn": urn,
                "received_on": received_on,
            }
        ],
    )


def _xml_fields(body: bytes, from_xpath: str, text_xpath: str) -> tuple[str, str]:
    try:
        document = xmlfields.parse(body)
    except xmlfields.XmlError as exc:
        raise RequestError(str(exc)) from None
    sender, text = xmlfields.find_text(document, from_xpath), xmlfields.find_text(document, text_xpath)
    if sender is None or text is None:
        raise RequestError(f"missing from at: {from_xpath} or text at: {text_xpath} node")
    return sender, text


async def receive_status(call: Call, status: str, transport: str) -> Answer:
    params = await call.params()
    raw_id, raw_uuid = params.get("id", ""), params.get("uuid", "")
    if not raw_id.strip() and not raw_uuid.strip():
        raise RequestError("parameters id or uuid should not be empty")
    msg_id, msg_uuid = status_ids(raw_id, raw_uuid)
    update = StatusUpdate(id=msg_id, uuid=msg_uuid, channel_uuid=call.channel.uuid, status=status, transport=transport)
    call.msg_id = msg_id if msg_id is not None else msg_uuid
    await call.publish_status(update)
    return json_answer(
        "Status Update Accepted",
        [{"type": "status", "channel_uuid": call.channel.uuid, "status": STATUS_LETTERS[status]}],
    )


async def receive_stop(call: Call) -> Answer:
    channel = call.channel
    params = await call.params()
    sender = first_param(params, option(channel, "mo_from_field"), "from", "sender")
    if not sender:
        raise RequestError("field 'from' required")
    urn, _ = urn_of(channel, sender)
    event = ChannelEvent(channel_uuid=channel.uuid, event_type="stop_contact", urn=urn)
    await call.publish_event(event)
    return json_answer(
        "Event Accepted",
        [
            {
                "type": "event",
                "channel_uuid": channel.uuid,
                "event_type": "stop_contact",
                "urn": urn,
                "received_on": event.occurred_on,
            }
        ],
    )


ROUTES = CallbackRoutes(
    slug="ex",
    serves=lambda channel: channel.type == "external",
    actions=external_actions("external"),
)
