"""The bundled SMSC simulator: SMPP 3.4 (:mod:`.simulator`), UCP/EMI (:mod:`.ucp`) and
CIMD2 (:mod:`.cimd2`) over TCP, sharing faults, records, receipts and the HTTP control
interface (:mod:`.base`, :mod:`.control`)."""

from .base import Faults, NoReceiverError, SimulatorBase
from .cimd2 import Cimd2Simulator
from .simulator import SmscSimulator
from .ucp import UcpSimulator

__all__ = ["Cimd2Simulator", "Faults", "NoReceiverError", "SimulatorBase", "SmscSimulator", "UcpSimulator"]
