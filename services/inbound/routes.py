"""The callback route registry: `/c/<slug>/<channel_uuid>/<action>` -> an action.

How a channel type plugs in: write one module in `services/inbound/` that defines

    ROUTES = CallbackRoutes(
        slug="twilio",                                   # -> /c/twilio/{uuid}/<action>
        serves=lambda ch: ch.type == "rest" and ch.aggregator == "twilio",
        actions={"receive": Action(receive, "msg_receive"), "status": Action(status, "msg_status")},
    )

where each action is `async def action(call: Call) -> Answer`. It reads `await
call.params()` (or `call.body`), raises `RequestError(reason)` for bad input, publishes with
`call.publish_message` / `publish_status` / `publish_event` (they return after the broker
confirmed, or raise BrokerUnavailable -> 503), sets `call.msg_id` for the ChannelLog, and
returns `json_answer(...)`. `discover()` finds the module by its `ROUTES`; nothing else changes.
The dispatcher (app.py) does the rest for every module alike: 404 for unknown slugs and
actions, 405 for methods other than GET and POST, `channel not found` / `channel type wrong`,
the receive secret (401), the 64 KiB body limit (413), the error envelope, metrics and one
ChannelLog per request.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .common import Answer, Call

LogType = Literal["msg_receive", "msg_status", "event_receive"]


@dataclass(frozen=True)
class Action:
    handler: Callable[[Call], Awaitable[Answer]]
    log_type: LogType


@dataclass(frozen=True)
class CallbackRoutes:
    """The callback routes of one channel type."""

    slug: str
    serves: Callable[[object], bool]  # does this channel belong to these routes?
    actions: Mapping[str, Action]


def discover(package: str = __package__) -> dict[str, CallbackRoutes]:
    """Every `ROUTES` defined by a module of `package`, by slug."""
    found: dict[str, CallbackRoutes] = {}
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        if info.name.endswith("_test") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        routes = getattr(module, "ROUTES", None)
        if isinstance(routes, CallbackRoutes):
            if routes.slug in found:
                raise RuntimeError(f"two modules claim /c/{routes.slug}/: {found[routes.slug]} and {module.__name__}")
            found[routes.slug] = routes
    return found
