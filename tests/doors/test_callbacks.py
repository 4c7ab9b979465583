"""Front doors end to end: RapidPro's requests in, through the router, the SMPP connector and
the SMSC simulator (SMPP over TCP), and the callbacks RapidPro expects back, over real HTTP
to a mock courier (CONTRACT section 10)."""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import Tap

from .rig import ADDRESS, ADDRESS_2, EX_CHANNEL, EX_TOKEN, KN_CHANNEL
from .test_kannel_door import courier as kn_request
from .test_kannel_door import go_encode

ROOT = Path(__file__).resolve().parents[2]
UCS2_LONG = "Muraho! Привет 👋🏽 — " + "ünïcödé ☺ " * 12 + "fin ✓"


async def sendsms(http, rig, text: str, msg_id, **extra):
    answer = await http.get("/cgi-bin/sendsms?" + go_encode(kn_request(rig, text, msg_id=msg_id, **extra)).decode())
    assert (answer.status_code, answer.text) == (202, "0: Accepted for delivery")


async def wait_dlrs(rig, msg_id, expected: list[int], timeout: float = 15.0) -> None:
    assert await rig.courier.wait(lambda: len(rig.dlrs(msg_id)) >= len(expected), timeout), rig.dlrs(msg_id)
    await asyncio.sleep(0.3)  # nothing more may come
    assert rig.dlrs(msg_id) == expected


async def test_sendsms_then_dlr_gets_in_order_8_then_1(rig, http):
    await sendsms(http, rig, "Hello from RapidPro", 101)
    await wait_dlrs(rig, 101, [8, 1])
    targets = [r.target for r in rig.courier.answered(lambda r: r.query.get("id") == "101")]
    assert targets == [f"/c/kn/{KN_CHANNEL}/status?id=101&status=8", f"/c/kn/{KN_CHANNEL}/status?id=101&status=1"]
    assert {r.method for r in rig.courier.requests if r.query.get("id") == "101"} == {"GET"}
    delivered = [m for m in rig.sim.messages if m.get("text") == "Hello from RapidPro"] if hasattr(rig.sim, "messages") else []
    assert len(delivered) == 1


async def test_failure_receipt_gives_2_and_rejected_submit_gives_16(rig, http):
    rig.sim.set_faults(receipt_rules={"+25078555": "UNDELIV"}, error_by_prefix={"+25078666": "ESME_RINVDSTADR"})
    try:
        await sendsms(http, rig, "Will not arrive", 102, to="+250785550001")
        await sendsms(http, rig, "Refused at submit", 103, to="+250786660001")
        await wait_dlrs(rig, 102, [8, 2])
        await wait_dlrs(rig, 103, [16])
    finally:
        rig.sim.set_faults(clear=True)


async def test_dlr_mask_filters_types_and_escapes_are_filled(rig, http):
    url = f"{rig.courier.base}/c/kn/{KN_CHANNEL}/status?uuid=%I&status=%d&to=%P&from=%p&ext=%F&n=%n&pct=%%&keep=%Z"
    params = kn_request(rig, "Masked", msg_id=0, mask="1")
    params["dlr-url"] = url
    assert (await http.get("/cgi-bin/sendsms?" + go_encode(params).decode())).status_code == 202
    assert await rig.courier.wait(lambda: rig.courier.answered(lambda r: r.query.get("to") == "+250788383383" and "n" in r.query))
    await asyncio.sleep(0.3)
    (report,) = rig.courier.answered(lambda r: "n" in r.query)
    query = report.query
    assert query["status"] == "1" and query["from"] == "2020" and query["n"] == "rapidpro" and query["pct"] == "%"
    assert re.fullmatch(r"[0-9a-f-]{36}", query["uuid"]) and query["ext"]
    assert report.target.endswith("&keep=%Z")  # an unknown escape stays as it is


async def test_mo_reaches_courier_as_kannel_post_with_ucs2_multipart_readable(rig):
    results = await rig.sim.inject_mo("+250788000111", ADDRESS, UCS2_LONG, coding="ucs2")
    assert len(results) > 1 and set(results) == {0}
    assert await rig.courier.wait(lambda: rig.courier.answered(lambda r: r.path.endswith("/receive")))
    (post,) = rig.courier.answered(lambda r: r.path == f"/c/kn/{KN_CHANNEL}/receive")
    assert post.method == "POST"
    query = post.query
    assert query["message"] == UCS2_LONG and query["sender"] == "+250788000111" and query["to"] == ADDRESS
    assert query["backend"] == f"smpp.{rig.connection}" and query["ts"].isdigit() and abs(int(query["ts"]) - time.time()) < 60
    assert re.fullmatch(r"[0-9a-f-]{36}", query["id"])


async def test_courier_503_for_a_while_then_200_everything_once_and_in_order(rig, http):
    until = time.monotonic() + 2.0

    def answer(request):
        if request.path.endswith("/status") and time.monotonic() < until:
            return 503, "courier is restarting"
        return 200, "ok"

    rig.courier.answer = answer
    try:
        ids = [201, 202, 203]
        for msg_id in ids:
            await sendsms(http, rig, f"During an outage {msg_id}", msg_id)
        for msg_id in ids:
            await wait_dlrs(rig, msg_id, [8, 1], timeout=20)
        refused = [r for r in rig.courier.requests if r.status == 503 and r.query.get("id") in {"201", "202", "203"}]
        assert refused, "the outage was not exercised"
        assert all(r.query["status"] == "8" for r in refused)  # a 1 never went before its 8 was answered
    finally:
        rig.courier.answer = lambda request: (200, "ok")


async def test_courier_400_not_a_possible_number_is_dead_lettered_not_retried(rig, amqp, settings):
    dead = await Tap.open(amqp, settings, "sms.dead", "callback.#")
    sender = "+250788000999"

    def answer(request):
        if request.query.get("sender") == sender:
            return 400, '{"message":"Error","data":[{"type":"error","error":"not a possible number"}]}'
        return 200, "ok"

    rig.courier.answer = answer
    try:
        await rig.sim.inject_mo(sender, ADDRESS, "hello")
        (letter,) = await dead.wait(1, timeout=15)
        assert letter.routing_key == "callback.rapidpro-kn"
        assert letter.headers["x-error"].startswith("HTTP 400: ") and "not a possible number" in letter.headers["x-error"]
        assert letter.body["url"].startswith(rig.courier.base) and letter.body["kind"] == "mo"
        await asyncio.sleep(1.5)  # longer than the first retry delays
        assert len([r for r in rig.courier.requests if r.query.get("sender") == sender]) == 1
        # Once courier takes it, the operator replays it and it goes out again, on its own.
        rig.courier.answer = lambda request: (200, "ok")
        replay = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.cli", "dead", "replay", "--id",
                                                      f"cb:rapidpro-kn:{letter.body['about']}:mo:dead", cwd=ROOT)  # fmt: skip
        assert await replay.wait() == 0
        assert await rig.courier.wait(lambda: len(rig.courier.answered(lambda r: r.query.get("sender") == sender)) == 1)
    finally:
        rig.courier.answer = lambda request: (200, "ok")
        await dead.close()


# ------------------------------------------------------------------ the External door


@pytest.mark.parametrize("body", ["form", "json"])
async def test_external_door_send_then_sent_and_delivered_with_the_id_as_sent(rig, http, body):
    ref = "4521" if body == "form" else str(uuid.uuid4())
    fields = {"id": ref, "text": f"EX {body} message", "to": "+250788383383", "from": ADDRESS, "channel": "12"}
    headers = {"Authorization": f"Token {EX_TOKEN}"}
    if body == "form":
        answer = await http.post("/ex/rapidpro-ex/send", data=fields, headers=headers)
    else:
        answer = await http.post("/ex/rapidpro-ex/send", json={**fields, "id": None, "uuid": ref}, headers=headers)
    assert answer.status_code == 200 and answer.json() == {"status": "accepted", "id": ref}

    def calls():
        return rig.courier.answered(lambda r: r.path.startswith(f"/c/ex/{EX_CHANNEL}/") and r.form.get("id") == ref)

    assert await rig.courier.wait(lambda: len(calls()) >= 2)
    await asyncio.sleep(0.3)
    assert [r.path.rsplit("/", 1)[1] for r in calls()] == ["sent", "delivered"]
    for request in calls():
        assert request.method == "POST" and request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert request.form == ({"id": ref} if body == "form" else {"id": ref, "uuid": ref})


async def test_external_door_json_number_id_and_refusals(rig, http):
    headers = {"Authorization": f"Bearer {EX_TOKEN}"}
    ok = await http.post("/ex/rapidpro-ex/send", json={"id": 98765, "text": "n", "to": "+250788383383"}, headers=headers)
    assert ok.json() == {"status": "accepted", "id": 98765}
    query = await http.get("/ex/rapidpro-ex/send", params={"id": "7", "text": "q", "to": "+250788383383", "token": EX_TOKEN})
    assert query.json() == {"status": "accepted", "id": "7"}
    assert (await http.post("/ex/rapidpro-ex/send", data={"id": "1", "text": "x", "to": "+250788383383"})).status_code == 401
    wrong = await http.post("/ex/rapidpro-ex/send", data={"id": "1", "text": "x", "to": "1"}, headers={"Authorization": "Token nope"})
    assert wrong.status_code == 401
    missing = await http.post("/ex/rapidpro-ex/send", data={"text": "x", "to": "+250788383383"}, headers=headers)
    assert (missing.status_code, missing.json()["error"]) == (400, "parameters id or uuid should not be empty")
    no_to = await http.post("/ex/rapidpro-ex/send", data={"id": "1", "text": "x"}, headers=headers)
    assert (no_to.status_code, no_to.json()["error"]) == (400, "field 'to' required")
    bad_to = await http.post("/ex/rapidpro-ex/send", data={"id": "1", "text": "x", "to": "12"}, headers=headers)
    assert bad_to.status_code == 400 and "not a phone number" in bad_to.json()["error"]
    bad_json = await http.post("/ex/rapidpro-ex/send", content=b"{nope", headers={**headers, "Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert (await http.post("/ex/no-such-door/send", data={}, headers=headers)).status_code == 404
    assert (await http.post("/ex/rapidpro-kn/send", data={}, headers=headers)).status_code == 404


async def test_external_door_mo_goes_to_receive(rig):
    await rig.sim.inject_mo("+250788000222", ADDRESS_2, "Bonjour 👋")
    assert await rig.courier.wait(lambda: rig.courier.answered(lambda r: r.path == f"/c/ex/{EX_CHANNEL}/receive"))
    (post,) = rig.courier.answered(lambda r: r.path == f"/c/ex/{EX_CHANNEL}/receive")
    form = post.form
    assert form["from"] == "+250788000222" and form["text"] == "Bonjour 👋"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", form["date"])
