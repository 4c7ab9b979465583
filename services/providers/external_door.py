"""courier's EX handler, seen from the SMS provider's side (CONTRACT section 10, "External door").

Courier POSTs RapidPro's default form body (`id`, `text`, `to`, `to_no_plus`, `from`,
`from_no_plus`, `channel`) or whatever the operator templated (a JSON object with the same
keys, or `uuid` instead of `id`), and expects `<callback_base>/sent|delivered|failed` with the
`id` it sent, and `<callback_base>/receive` for incoming messages. Pure functions only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

#: status -> the callback action (`errored` and `queued` call nothing)
ACTIONS = {"wired": "sent", "sent": "sent", "delivered": "delivered", "failed": "failed"}


@dataclass(frozen=True)
class ExSend:
    """One send request from courier. `ref` is the id (or else the uuid) exactly as sent:
    a JSON number stays a number in our answer."""

    ref: Any
    to: str
    text: str
    sender: str = ""


def read_send(params: Mapping[str, Any]) -> ExSend | str:
    """The request, or the reason it is refused (400)."""
    ref = params.get("id")
    if ref is None or (isinstance(ref, str) and not ref.strip()):
        ref = params.get("uuid")
    if ref is None or (isinstance(ref, str) and not ref.strip()) or isinstance(ref, bool | list | dict):
        return "parameters id or uuid should not be empty"
    to = params.get("to")
    if not isinstance(to, str) or not to.strip():
        return "field 'to' required"
    text = params.get("text", "")
    if not isinstance(text, str):
        return "field 'text' must be a string"
    if not text:
        return "field 'text' required"
    sender = params.get("from", "")
    return ExSend(ref=ref, to=to.strip(), text=text, sender=sender if isinstance(sender, str) else str(sender))


def ref_text(ref: Any) -> str:
    """The id as courier will read it back from a form."""
    return ref if isinstance(ref, str) else str(ref)


def status_form(ref: str) -> dict[str, str]:
    """The form of a status callback: `id` exactly as sent, plus `uuid` when it is a UUID."""
    form = {"id": ref}
    if _UUID.match(ref.strip()):
        form["uuid"] = ref
    return form


def status_action(status: str, done: frozenset[str]) -> str | None:
    """The callback a status becomes, or None (not a callback, or that one was made)."""
    action = ACTIONS.get(status)
    if action is None or action in done:
        return None
    return action


def receive_form(sender: str, text: str, received_on: str) -> dict[str, str]:
    """`<callback_base>/receive`: courier's EX receive parameters (`date` is RFC 3339)."""
    return {"from": sender, "text": text, "date": received_on}
