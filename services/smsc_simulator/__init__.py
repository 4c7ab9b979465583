"""The bundled SMSC simulator (SMPP 3.4 over TCP); see :mod:`.simulator`."""

from .simulator import Faults, NoReceiverError, SmscSimulator

__all__ = ["Faults", "NoReceiverError", "SmscSimulator"]
