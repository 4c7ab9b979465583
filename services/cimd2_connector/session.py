"""One CIMD2 session on :class:`services.smsc.session.FramedSession`: the packets.

- 01 login with `username` (010) and `password` (011). A `window` above 1 is asked for with
  019; when the SMSC refuses windowing (900:104 or 105) the login is made again without it.
  The window is granted when the login response names its size in 019 (at most what was
  asked); an SMSC that answers without 019 may simply ignore the parameter, so the session
  stays stop-and-wait (one request outstanding), as Kannel and every SMSC without windowing
  expect.
- Our requests take odd packet numbers 001..255 (then 001 again), skipping numbers still
  outstanding; answers (+50, or NACK 99) carry the request's number and are matched by it.
- 40 alive as keep-alive after `keepalive_s` of silence; the SMSC's 40 is answered with 90.
- 20 (MO) and 23 (status report) go to ``on_deliver``, whose answer is a `900` error code,
  or None for a plain response (when it failed: 900:10, temporary congestion, "try later").
  Other requests get 98 with 900:1; an unreadable packet gets NACK 99.
- A 98 general error from the SMSC closes the session (as Kannel does): what was waiting is
  requeued and the link logs in again.
"""

from __future__ import annotations

from ..protocols import cimd2
from ..smsc.session import LOGIN_TIMEOUT_S, Closed, FramedSession, LoginRefused
from ..smsc.window import Window

#: The 900 code that asks the SMSC to deliver again later (temporary congestion).
TRY_LATER = 10
#: Login errors that mean "no windowing for you" (invalid window size, windowing disabled).
NO_WINDOWING = frozenset({"104", "105"})
_DELIVERIES = (cimd2.OP_DELIVER_MESSAGE, cimd2.OP_DELIVER_STATUS_REPORT)
_NUMBERS = 128  # odd numbers 1..255


class Cimd2Session(FramedSession):
    protocol = "CIMD2"

    def __init__(self, connection, role, on_deliver=None):
        super().__init__(connection, role, on_deliver)
        self.window = Window(1)
        self._numbers = cimd2.PacketNumbers(odd=True)

    def new_parser(self):
        return cimd2.packet_reader()

    def next_number(self) -> int:
        """The next odd packet number no outstanding request uses."""
        for _ in range(_NUMBERS):
            number = self._numbers.next()
            if not self.key_in_use(number):
                return number
        raise RuntimeError("every packet number is outstanding")  # the window leaves some free

    def send(self, packet: cimd2.Packet) -> None:
        self.write(cimd2.encode_packet(packet))

    async def _login(self, window: int | None) -> cimd2.Packet:
        c = self.connection
        packet = cimd2.login(self.next_number(), c.username, c.password, window)
        return await self.request(packet.number, cimd2.encode_packet(packet), LOGIN_TIMEOUT_S)

    async def login(self) -> None:
        wanted = min(self.connection.window, _NUMBERS - 8)
        answer = await self._login(wanted if wanted > 1 else None)
        if wanted > 1 and answer.error_code in NO_WINDOWING:
            answer = await self._login(None)
            wanted = 1
        if answer.opcode != cimd2.OP_LOGIN + cimd2.RESPONSE or answer.error_code is not None:
            code = answer.error_code or f"opcode {answer.opcode:02d}"
            meaning = cimd2.ERRORS.get(int(code), "") if code.isdigit() else ""
            raise LoginRefused(f"login refused: cimd2_{code}" + (f" ({meaning})" if meaning else ""))
        granted = answer.get(cimd2.P_WINDOW) or "1"
        self.window.size = max(1, min(wanted, int(granted) if granted.isdigit() else 1))

    def keepalive(self):
        packet = cimd2.alive(self.next_number())
        return packet.number, cimd2.encode_packet(packet)

    def logout(self):
        packet = cimd2.logout(self.next_number())
        return packet.number, cimd2.encode_packet(packet)

    def encode_submit(self, part):
        to, sender, params, status_report = part
        packet = cimd2.submit(self.next_number(), to, sender, params, status_report=status_report)
        return packet.number, cimd2.encode_packet(packet)

    def response_key(self, packet: cimd2.Packet):
        if packet.opcode == cimd2.OP_GENERAL_ERROR:
            raise Closed(f"general error from the SMSC: 900:{packet.error_code} {packet.get(cimd2.P_ERROR_TEXT) or ''}".rstrip())
        return packet.number if packet.is_response else None

    def on_request(self, packet: cimd2.Packet) -> None:
        if packet.opcode in _DELIVERIES:
            self.deliver(packet)
        elif packet.opcode == cimd2.OP_ALIVE:
            self.send(cimd2.response(packet))
        else:
            self.send(cimd2.general_error(packet.number, 1, "unexpected operation"))

    def malformed(self, error: cimd2.Cimd2Error) -> None:
        if error.number is not None:
            self.send(cimd2.nack(error.number))

    def encode_answer(self, packet: cimd2.Packet, error: int | None) -> bytes:
        if error is None:
            error = TRY_LATER
        return cimd2.encode_packet(cimd2.response(packet, error=error or None))
