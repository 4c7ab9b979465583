"""REST aggregator adapters (REST_ADAPTERS.md, contract section 9): one module per provider.

`ADAPTERS` maps each aggregator name of the channels file to its `RestAdapter`: the sender
(`services/outbound/sender.py`) runs `build`/`interpret`, and the inbound edge serves its
`callbacks` on `/c/<aggregator>/{channel_uuid}/<action>`.
"""

from __future__ import annotations

from . import africastalking, generic, infobip, kannel, twilio, vonage
from .base import RestAdapter

ADAPTERS: dict[str, RestAdapter] = {
    module.AGGREGATOR: module.ADAPTER for module in (twilio, vonage, infobip, africastalking, kannel, generic)
}

__all__ = ["ADAPTERS", "RestAdapter"]
