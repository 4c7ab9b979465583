"""One UCP/EMI session on :class:`services.smsc.session.FramedSession`: the frames.

- OT 60 login (OAdC = `username`, PWD IRA-hex) when a username or password is set; an SMSC
  that authenticates by IP address gets no login. A NACK raises LoginRefused.
- Results are matched to our operations by (TRN, OT); TRNs are taken free from 00..99, so at
  most 99 submits are outstanding (one TRN stays for the keep-alive).
- OT 31 alert as keep-alive after `keepalive_s` of silence; the SMSC's OT 31 is answered.
- OT 52 (MO) and OT 53 (notification) go to ``on_deliver``, whose answer is the EC of a NACK
  or "" for an ACK (None, when it failed: NACK 04, "try later"). Other operations get NACK
  03, a malformed operation NACK 01 (checksum) or 02 (syntax).
"""

from __future__ import annotations

from ..protocols import ucp
from ..smsc.session import LOGIN_TIMEOUT_S, FramedSession, LoginRefused
from ..smsc.window import Window

#: The EC of the NACK that asks the SMSC to deliver again later (UCP has no "temporary"
#: code; 04 "operation not allowed" is what the bundled simulator also uses for throttling).
EC_TRY_LATER = "04"
_DELIVERIES = (ucp.OT_MO, ucp.OT_NOTIFICATION)


class UcpSession(FramedSession):
    protocol = "UCP"

    def __init__(self, connection, role, on_deliver=None):
        super().__init__(connection, role, on_deliver)
        self.window = Window(min(connection.window, ucp.MAX_TRN))
        self._trn = -1

    def new_parser(self):
        return ucp.frame_reader()

    def next_trn(self, ot: int) -> int:
        """The next TRN no outstanding operation uses."""
        for _ in range(ucp.MAX_TRN + 1):
            self._trn = (self._trn + 1) % (ucp.MAX_TRN + 1)
            if not self.key_in_use((self._trn, ucp.OT_SUBMIT)) and not self.key_in_use((self._trn, ucp.OT_ALERT)):
                return self._trn
        raise RuntimeError("every TRN is outstanding")  # the window leaves one free

    def send(self, frame: ucp.Frame) -> None:
        self.write(ucp.encode_frame(frame))

    async def login(self) -> None:
        c = self.connection
        if not (c.username or c.password):
            return  # authenticated by IP address
        frame = ucp.login(self.next_trn(ucp.OT_LOGIN), c.username, c.password)
        answer = await self.request((frame.trn, ucp.OT_LOGIN), ucp.encode_frame(frame), LOGIN_TIMEOUT_S)
        result = ucp.parse_result(answer)
        if not result.ok:
            raise LoginRefused(f"login refused: ucp_{result.ec} ({ucp.ERRORS.get(result.ec, 'unknown error')})")

    def keepalive(self):
        frame = ucp.alert(self.next_trn(ucp.OT_ALERT), self.connection.username or "0")
        return (frame.trn, ucp.OT_ALERT), ucp.encode_frame(frame)

    def encode_submit(self, part):
        to, sender, fields, notify = part
        frame = ucp.submit(self.next_trn(ucp.OT_SUBMIT), to, sender, fields, notify=notify)
        return (frame.trn, ucp.OT_SUBMIT), ucp.encode_frame(frame)

    def response_key(self, frame: ucp.Frame):
        return (frame.trn, frame.ot) if frame.is_result else None

    def on_request(self, frame: ucp.Frame) -> None:
        if frame.ot in _DELIVERIES:
            self.deliver(frame)
        elif frame.ot == ucp.OT_ALERT:
            self.send(ucp.ack(frame))
        else:
            self.send(ucp.nack(frame, ucp.EC_NOT_SUPPORTED))

    def malformed(self, error: ucp.UcpError) -> None:
        if error.kind == "O" and error.trn is not None and error.ot is not None:
            self.send(ucp.nack(error, error.ec))

    def encode_answer(self, frame: ucp.Frame, ec: str | None) -> bytes:
        if ec is None:
            ec = EC_TRY_LATER
        return ucp.encode_frame(ucp.nack(frame, ec) if ec else ucp.ack(frame))
