"""What a transport knows about its provider, and nothing more.

An HTTP transport (the external channel, each REST aggregator) is an `Adapter`: it turns a
SendRequest into one HTTP request per part (`build`) and a provider's answer into an
`Outcome` (`interpret`). Everything around that (de-duplication, the SSRF guard, TPS and
concurrency caps, the HTTP client, retries, statuses, channel logs, correlation records)
is shared and lives in `services/outbound/sender.py`, so a new aggregator is one module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx

from ..core.models import SendRequest
from ..core.settings import Settings


class ChannelConfigError(Exception):
    """The channel's configuration cannot produce a request: final, `failed` `channel_config`."""


@dataclass(frozen=True)
class OutgoingRequest:
    """One HTTP request to the provider (one per message part)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    """What one provider answer means for the message."""

    status: Literal["wired", "errored", "failed"]
    external_id: str | None = None
    code: str | None = None
    message: str = ""
    # Every provider id this answer names (a provider may answer one id per segment); each is
    # recorded for callback correlation. `external_id` is the one reported in `wired`.
    external_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendContext:
    """What an adapter may need besides the channel and the request."""

    settings: Settings

    def callback_url(self, aggregator: str, channel_uuid: str, action: str = "status") -> str:
        return f"{self.settings.public_base}/c/{aggregator}/{channel_uuid}/{action}"


class Adapter(Protocol):
    #: the `transport` of StatusUpdates and the `sms.transport` routing key: `external`, `rest.twilio`
    transport: str

    def build(self, channel, request: SendRequest, ctx: SendContext) -> list[OutgoingRequest]:
        """The HTTP requests for `request`, one per part, in order. Raise ChannelConfigError
        when the channel's config cannot make one."""
        ...

    def interpret(self, channel, response: httpx.Response) -> Outcome:
        """What the provider's answer means. Timeouts and connection errors never get here:
        the sender maps them to `errored` `connection_failed`."""
        ...


def shared_outcome(response: httpx.Response) -> Outcome | None:
    """The rules every adapter shares (REST_ADAPTERS.md 9.1) for answers that are not 2xx:
    5xx -> errored connection_failed, 429 -> errored connection_throttled, other non-2xx ->
    failed response_status. Returns None for a 2xx, which the adapter judges itself."""
    code = response.status_code
    if 200 <= code < 300:
        return None
    if code == 429:
        return Outcome("errored", code="connection_throttled", message=f"HTTP {code}")
    if code >= 500:
        return Outcome("errored", code="connection_failed", message=f"HTTP {code}")
    return Outcome("failed", code="response_status", message=f"HTTP {code}")
