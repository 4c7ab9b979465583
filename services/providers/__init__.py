"""What Switchboard knows about each provider, in both directions, with no I/O.

One module per provider (REST_ADAPTERS.md, CONTRACT sections 7, 9 and 10): the requests we
send it, what its answers mean, and how its callbacks read; each with its table of cases
beside it (`<name>_test.py`). The outbound workers send what these modules build, the inbound
edge answers what they parse, and neither has to import the other.

`ADAPTERS` maps each aggregator name of the channels file to its `RestAdapter`.
"""

from __future__ import annotations

from . import africastalking, generic, infobip, kannel, twilio, vonage
from .base import RestAdapter

ADAPTERS: dict[str, RestAdapter] = {
    module.AGGREGATOR: module.ADAPTER for module in (twilio, vonage, infobip, africastalking, kannel, generic)
}

__all__ = ["ADAPTERS", "RestAdapter"]
