"""REST connector send tables (REST_ADAPTERS.md 9): each adapter through the shared sender.

A SendRequest published to `sms.transport` `rest.<aggregator>`, a real HTTP server on
127.0.0.1 playing the provider, and what landed in RabbitMQ: the status sequence on
`sms.status` (schema-checked), one ChannelLog per send without secrets, and the `ext:`
correlation record in Redis for the provider's id.
"""

from __future__ import annotations

import orjson
import pytest

from services.providers import ADAPTERS

from .harness import ExpectedRequest as Req
from .harness import Reply, SendCase, check_case, run_send_cases

TO = "+250788123123"
THROTTLED_THEN_OK = [("errored", "connection_throttled"), ("wired", None)]
RETRIED_OUT = [("errored", "connection_failed"), ("errored", "connection_failed"), ("failed", "connection_failed")]


def msg(text: str = "Hello world", **fields) -> dict:
    return {"id": 77, "to": TO, "text": text, **fields}


def twilio(**config) -> dict:
    return {"type": "rest", "aggregator": "twilio", "address": "+15005550006",
            "config": {"account_sid": "AC0123", "auth_token": "tw-token-123", "base_url": "{provider}", **config}}  # fmt: skip


def twilio_error(status: int, code: int, message: str) -> Reply:
    return Reply(status, orjson.dumps({"code": code, "message": message, "status": status}), {"Content-Type": "application/json"})


def json_reply(status: int, body) -> Reply:
    return Reply(status, orjson.dumps(body), {"Content-Type": "application/json"})


TW_PATH = "/2010-04-01/Accounts/AC0123/Messages.json"
VONAGE = {"type": "rest", "aggregator": "vonage", "address": "Switchboard",
          "config": {"api_key": "k3y", "api_secret": "vn-secret-456", "base_url": "{provider}"}}  # fmt: skip
INFOBIP = {"type": "rest", "aggregator": "infobip", "address": "InfoSMS",
           "config": {"api_key": "ib-key-789", "base_url": "{provider}"}}  # fmt: skip
AT = {"type": "rest", "aggregator": "africastalking", "address": "SWITCHBD",
      "config": {"username": "sandbox", "api_key": "at-key-321", "base_url": "{provider}"}}  # fmt: skip
KANNEL = {"type": "rest", "aggregator": "kannel", "address": "1234",
          "config": {"base_url": "{provider}", "username": "sb", "password": "kn-pass-654"}}  # fmt: skip
GENERIC = {"type": "rest", "aggregator": "generic", "address": "+15005550006",
           "config": {"send_url": "{provider}/send", "content_type": "json", "auth": {"type": "bearer", "token": "gn-token-987"},
                      "id_path": "data.0.id", "error_match": '"ok":false', "error_code_path": "error"}}  # fmt: skip


def vonage_reply(status: str, text: str = "", message_id: str = "0A0000001") -> Reply:
    item = {"to": "250788123123", "message-id": message_id, "status": "0"} if status == "0" else {"status": status, "error-text": text}
    return json_reply(200, {"message-count": "1", "messages": [item]})


def infobip_reply(group: int, name: str, message_id: str = "ib-1") -> Reply:
    status = {"groupId": group, "groupName": name.split("_")[0], "id": 7, "name": name, "description": name.lower()}
    return json_reply(200, {"bulkId": "b", "messages": [{"to": "250788123123", "messageId": message_id, "status": status}]})


def at_reply(code: int, status: str, message_id: str = "ATXid_1") -> Reply:
    recipient = {"statusCode": code, "number": TO, "status": status, "cost": "KES 0.8", "messageId": message_id}
    return json_reply(201, {"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [recipient]}})


TABLES: dict[str, list[SendCase]] = {
    "twilio": [
        SendCase("twilio success", twilio(), msg(), [json_reply(201, {"sid": "SM1", "status": "queued"})],
                 [Req("POST", TW_PATH, headers={"Accept": "application/json"},
                      form={"To": [TO], "From": ["+15005550006"], "Body": ["Hello world"],
                            "StatusCallback": ["http://localhost:8080/c/twilio/{uuid}/status?id=77"]})],
                 expected_external_id="SM1", secrets=["tw-token-123"]),
        SendCase("twilio unicode", twilio(), msg("Muraho 👋"), [json_reply(201, {"sid": "SM2"})], expected_external_id="SM2"),
        SendCase("twilio long in two parts", twilio(max_length=20), msg("one two three four five six seven eight"),
                 [json_reply(201, {"sid": "SM3a"}), json_reply(201, {"sid": "SM3b"})], expected_external_id="SM3a"),
        SendCase("twilio invalid number", twilio(), msg(), [twilio_error(400, 21211, "The 'To' number is not valid.")],
                 expected_statuses=[("failed", "twilio_21211")]),
        SendCase("twilio throttled then accepted", twilio(), msg(), [twilio_error(429, 20429, "Too Many Requests"),
                 json_reply(201, {"sid": "SM4"})], expected_statuses=THROTTLED_THEN_OK, expected_external_id="SM4"),
        SendCase("twilio 5xx retried out", twilio(), msg(), [Reply(503, "down")], expected_statuses=RETRIED_OUT),
    ],  # fmt: skip
    "vonage": [
        SendCase("vonage success", VONAGE, msg(), [vonage_reply("0")], expected_external_id="0A0000001", secrets=["vn-secret-456"]),
        SendCase("vonage bad credentials", VONAGE, msg(), [vonage_reply("4", "Bad Credentials")], expected_statuses=[("failed", "vonage_4")]),
        SendCase("vonage throttled then accepted", VONAGE, msg(), [vonage_reply("1", "Throttled"), vonage_reply("0", message_id="0A2")],
                 expected_statuses=THROTTLED_THEN_OK, expected_external_id="0A2"),
    ],  # fmt: skip
    "infobip": [
        SendCase("infobip success", INFOBIP, msg(), [infobip_reply(1, "PENDING_ACCEPTED")],
                 [Req("POST", "/sms/2/text/advanced", headers={"Authorization": "App ib-key-789"})],
                 expected_external_id="ib-1", secrets=["ib-key-789"]),
        SendCase("infobip no credits", INFOBIP, msg(), [infobip_reply(5, "REJECTED_NOT_ENOUGH_CREDITS")],
                 expected_statuses=[("failed", "infobip_REJECTED_NOT_ENOUGH_CREDITS")]),
        SendCase("infobip throttled then accepted", INFOBIP, msg(),
                 [json_reply(429, {"requestError": {"serviceException": {"messageId": "TOO_MANY_REQUESTS", "text": "slow"}}}),
                  infobip_reply(1, "PENDING_ENROUTE", "ib-2")], expected_statuses=THROTTLED_THEN_OK, expected_external_id="ib-2"),
    ],  # fmt: skip
    "africastalking": [
        SendCase("at success", AT, msg(), [at_reply(101, "Success")],
                 [Req("POST", "/version1/messaging", headers={"apiKey": "at-key-321"},
                      form={"username": ["sandbox"], "to": [TO], "message": ["Hello world"], "from": ["SWITCHBD"]})],
                 expected_external_id="ATXid_1", secrets=["at-key-321"]),
        SendCase("at invalid number", AT, msg(), [at_reply(403, "InvalidPhoneNumber", "None")],
                 expected_statuses=[("failed", "africastalking_403")]),
        SendCase("at throttled then accepted", AT, msg(), [Reply(429, "Too many requests"), at_reply(102, "Queued", "ATXid_2")],
                 expected_statuses=THROTTLED_THEN_OK, expected_external_id="ATXid_2"),
    ],  # fmt: skip
    "kannel": [
        SendCase("kannel success", KANNEL, msg(), [Reply(202, "0: Accepted for delivery")],
                 [Req("GET", "/cgi-bin/sendsms", query={"username": ["sb"], "password": ["kn-pass-654"], "from": ["1234"],
                      "to": [TO], "text": ["Hello world"], "dlr-mask": ["27"],
                      "dlr-url": ["http://localhost:8080/c/kannel/{uuid}/status?id=77&status=%d"]})],
                 expected_external_id=None, secrets=["kn-pass-654"]),
        SendCase("kannel not routable", KANNEL, msg(), [Reply(403, "Not routable. Do not try again.")],
                 expected_statuses=[("failed", "response_status")]),
        SendCase("kannel temporal failure then accepted", KANNEL, msg(),
                 [Reply(503, "Temporal failure, try again later."), Reply(202, "3: Queued for later delivery")],
                 expected_statuses=[("errored", "connection_failed"), ("wired", None)]),
    ],  # fmt: skip
    "generic": [
        SendCase("generic success", GENERIC, msg(), [json_reply(200, {"ok": True, "data": [{"id": "g-1"}]})],
                 [Req("POST", "/send", headers={"Authorization": "Bearer gn-token-987", "Content-Type": "application/json"})],
                 expected_external_id="g-1", secrets=["gn-token-987"]),
        SendCase("generic error body", GENERIC, msg(), [Reply(200, '{"ok":false,"error":"NO_CREDIT"}')],
                 expected_statuses=[("failed", "generic_NO_CREDIT")]),
        SendCase("generic throttled then accepted", GENERIC, msg(), [Reply(429, "slow"), json_reply(200, {"data": [{"id": 42}]})],
                 expected_statuses=THROTTLED_THEN_OK, expected_external_id="42"),
    ],  # fmt: skip
}


def _with_uuid(case: SendCase, channel_uuid: str) -> SendCase:
    """Expected requests name the channel uuid, known only once the table runs."""
    if not case.expected_requests:
        return case
    requests = []
    for req in case.expected_requests:
        form = {k: [v.replace("{uuid}", channel_uuid) for v in vs] for k, vs in req.form.items()} if req.form else None
        query = {k: [v.replace("{uuid}", channel_uuid) for v in vs] for k, vs in req.query.items()} if req.query else None
        requests.append(Req(req.method, req.path, query, req.headers, req.body, form, req.json))
    return SendCase(case.label, case.channel, case.request, case.responses, requests, case.expected_statuses,
                    case.expected_external_id, case.secrets)  # fmt: skip


@pytest.mark.parametrize("aggregator", list(TABLES))
async def test_send_table(aggregator, redis_client, settings):
    cases = TABLES[aggregator]
    results = await run_send_cases(cases, [ADAPTERS[aggregator]], f"rest.{aggregator}")
    for case in cases:
        result = results[case.label]
        check_case(_with_uuid(case, result.channel_uuid), result)
        for status in result.statuses:
            assert status.body["transport"] == f"rest.{aggregator}", case.label
        if case.expected_external_id:
            stored = await redis_client.get(settings.name(f"ext:{result.channel_uuid}:{case.expected_external_id}"))
            assert stored is not None and orjson.loads(stored) == {"id": 77, "uuid": None}, case.label
