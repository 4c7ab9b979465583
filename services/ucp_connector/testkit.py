"""Test plumbing of the UCP connector: the shared SMSC test kit with the UCP simulator."""

from __future__ import annotations

import functools

from ..smsc import testkit
from ..smsc_simulator import UcpSimulator
from .connector import UcpConnector

USERNAME = "switch"
PASSWORD = "s3cr3tpw"
DEFAULTS = {"username": USERNAME, "password": PASSWORD, "keepalive_s": 30, "window": 10}

#: A UCP simulator on an ephemeral port and a connector logged in to it (see
#: :func:`services.smsc.testkit.running_connector`; `connection` takes smsc_connections keys).
running_connector = functools.partial(testkit.running_connector, UcpConnector, UcpSimulator,
                                      account=(USERNAME, PASSWORD), defaults=DEFAULTS)
