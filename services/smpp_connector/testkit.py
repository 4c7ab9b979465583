"""Test plumbing of the SMPP connector tests and the bench: the shared SMSC test kit
(:mod:`services.smsc.testkit`) with the SMPP simulator and SMPP connection defaults."""

from __future__ import annotations

import functools
from typing import Any

from ..smsc import testkit
from ..smsc.testkit import Running
from ..smsc_simulator import SmscSimulator
from .connector import SmppConnector

SYSTEM_ID = "switch"
PASSWORD = "s3cr3tpw"
DEFAULTS = {"system_id": SYSTEM_ID, "password": PASSWORD, "enquire_link_s": 30, "window": 10}

__all__ = ["PASSWORD", "SYSTEM_ID", "Running", "channels_yaml", "running_connector"]


def channels_yaml(name: str, port: int, channels: list[dict[str, Any]], **connection: Any) -> str:
    """A channels file with `channels` (smpp, on connection `name`) and the connection itself."""
    return testkit.channels_yaml("smpp", name, port, channels, list_key="smpp_connections", **{**DEFAULTS, **connection})


#: A simulator on an ephemeral port and a connector bound to it (see
#: :func:`services.smsc.testkit.running_connector`; `connection` takes smpp_connections keys).
running_connector = functools.partial(testkit.running_connector, SmppConnector, SmscSimulator,
                                      account=(SYSTEM_ID, PASSWORD), defaults=DEFAULTS, list_key="smpp_connections")
