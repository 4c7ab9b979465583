"""Test plumbing of the CIMD2 connector: the shared SMSC test kit with the CIMD2 simulator."""

from __future__ import annotations

import functools

from ..smsc import testkit
from ..smsc_simulator import Cimd2Simulator
from .connector import Cimd2Connector

USERNAME = "switch"
PASSWORD = "s3cr3tpw"
DEFAULTS = {"username": USERNAME, "password": PASSWORD, "keepalive_s": 30}

#: A CIMD2 simulator on an ephemeral port and a connector logged in to it (see
#: :func:`services.smsc.testkit.running_connector`; `connection` takes smsc_connections keys).
running_connector = functools.partial(testkit.running_connector, Cimd2Connector, Cimd2Simulator,
                                      account=(USERNAME, PASSWORD), defaults=DEFAULTS)
