"""The bundled SMSC simulator: SMPP 3.4 (:mod:`.simulator`), UCP/EMI (:mod:`.ucp`) and
CIMD2 (:mod:`.cimd2`) over TCP, sharing faults, records, receipts and the HTTP control
interface (:mod:`.base`, :mod:`.control`)."""

from .base import Faults, NoReceiverError
from .simulator import SmscSimulator

__all__ = ["Faults", "NoReceiverError", "SmscSimulator"]
