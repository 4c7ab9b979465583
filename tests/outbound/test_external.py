"""The external connector's send table (CONTRACT section 7, after courier's EX handler tests).

Every case goes through the real broker and a real HTTP server on 127.0.0.1: a SendRequest
published to `sms.transport` `external`, the requests the provider saw, the statuses on
`sms.status` (schema-checked by the Tap) and one ChannelLog per send on `sms.logs`.
"""

from __future__ import annotations

import os

import pytest

from services.providers.external import ExternalAdapter

from .harness import ExpectedRequest as Req
from .harness import Reply, SendCase, check_case, run_send_cases

os.environ.setdefault("EX_TEST_TOKEN", "Token S3cr3t-ABCDEF")
os.environ.setdefault("EX_TEST_KEY", "k3y-9f8e7d")

TO = "+250788383383"
URLENC = {"Content-Type": "application/x-www-form-urlencoded"}
XML = {"Content-Type": "text/xml; charset=utf-8"}
JSON_AUTH = {"Content-Type": "application/json", "Authorization": "Token ABCDEF", "foo": "bar"}
GET_URL = "{provider}/send?to={{to}}&text={{text}}&from={{from}}{{quick_replies}}"
FORM_BODY = "to={{to}}&text={{text}}&from={{from}}{{quick_replies}}"
JSON_BODY = '{ "to":{{to}}, "text":{{text}}, "from":{{from}}, "quick_replies":{{quick_replies}} }'
XML_BODY = "<msg><to>{{to}}</to><text>{{text}}</text><from>{{from}}</from><quick_replies>{{quick_replies}}</quick_replies></msg>"
LONG = "This is a long message that will be longer than 30....... characters"
RETRIED_TWICE = [("errored", "connection_failed"), ("errored", "connection_failed"), ("failed", "connection_failed")]


def ch(config: dict, **fields) -> dict:
    return {"type": "external", "address": "2020", "country": "US", **fields, "config": {"send_url": "{provider}/send", **config}}


def msg(text: str = "Simple Message", **fields) -> dict:
    return {"id": 10, "to": TO, "text": text, **fields}


def q(text: str, to: str = TO, **extra) -> dict:
    return {"to": [to], "text": [text], "from": ["2020"], **{k: v for k, v in extra.items()}}


GET = ch({"send_url": GET_URL, "method": "GET"})
POST = ch({"body": FORM_BODY, "method": "POST"})
JSON = ch({"body": JSON_BODY, "content_type": "json", "headers": {"Authorization": "Token ABCDEF", "foo": "bar"}})
XML_PUT = ch({"body": XML_BODY, "content_type": "xml", "method": "PUT"})

CASES = [
    SendCase(
        "brief example: json default body, byte for byte",
        {"type": "external", "id": 346, "address": "+5582999489287", "config": {"send_url": "{provider}/send", "content_type": "json"}},
        {"id": 1241244, "uuid": "0191e180-7d60-7000-aded-7d8b151cbd5b", "text": "Love is patient. Love is kind.",
         "to": "+250788123123", "attachments": [], "quick_replies": [], "session_status": "", "high_priority": False,
         "created_on": "2026-11-24T10:00:00Z", "expires_on": None},
        expected_requests=[Req("POST", "/send", {}, {"Content-Type": "application/json"},
            b'{"id": 1241244, "text": "Love is patient. Love is kind.", "to": "+250788123123", "to_no_plus": "250788123123", '
            b'"from": "+5582999489287", "from_no_plus": "5582999489287", "channel": 346}')],
    ),
    SendCase("GET plain", GET, msg(), expected_requests=[Req("GET", "/send", q("Simple Message"), URLENC, b"")]),
    SendCase("GET unicode", GET, msg("☺"), expected_requests=[Req("GET", "/send", q("☺"))]),
    SendCase("GET attachment", GET, msg("My pic!", attachments=["image/jpeg:https://foo.bar/image.jpg"]),
             expected_requests=[Req("GET", "/send", q("My pic!\nhttps://foo.bar/image.jpg"))]),
    SendCase("GET attachment only", GET, msg("", attachments=["image/jpeg:https://foo.bar/image.jpg"]),
             expected_requests=[Req("GET", "/send", q("\nhttps://foo.bar/image.jpg"))]),
    SendCase("GET quick replies", GET, msg("Pick one", quick_replies=["Yes & no", "No"]),
             expected_requests=[Req("GET", "/send", q("Pick one", quick_reply=["Yes & no", "No"]))]),
    SendCase("GET long text in three parts, quick reply on the last",
             ch({"send_url": GET_URL, "method": "GET", "max_length": "30"}), msg(LONG, quick_replies=["One"]),
             responses=[Reply(200, "0: Accepted for delivery")] * 3,
             expected_requests=[Req("GET", "/send", q("This is a long message that")),
                                Req("GET", "/send", q("will be longer than 30.......")),
                                Req("GET", "/send", q("characters", quick_reply=["One"]))]),
    SendCase("GET smart encoding", ch({"send_url": GET_URL, "method": "GET", "encoding": "smart"}),
             msg("Fancy “Smart” Quotes – café… ok"),
             expected_requests=[Req("GET", "/send", q('Fancy "Smart" Quotes - café... ok'))]),
    SendCase("GET smart encoding keeps text that cannot be GSM", ch({"send_url": GET_URL, "method": "GET", "encoding": "smart"}),
             msg("☺ “Smart”"), expected_requests=[Req("GET", "/send", q("☺ “Smart”"))]),
    SendCase("GET national number", ch({"send_url": GET_URL, "method": "GET", "use_national": True}, country="RW"),
             msg(to="tel:+250788383383"), expected_requests=[Req("GET", "/send", q("Simple Message", to="788383383"))]),
    SendCase("GET every variable, query-escaped",
             ch({"send_url": "{provider}/send?id={{id}}&uuid={{uuid}}&ch={{channel}}&to={{to_no_plus}}&from={{from_no_plus}}"
                              "&s={{session_status}}&u={{unknown}}", "method": "GET"}, id=77, address="+2020"),
             msg(id="a b/1", uuid="0191e180-7d60-7000-aded-7d8b151cbd5b", session_status="W"),
             expected_requests=[Req("GET", "/send", {"id": ["a b/1"], "uuid": ["0191e180-7d60-7000-aded-7d8b151cbd5b"], "ch": ["77"],
                                                      "to": ["250788383383"], "from": ["2020"], "s": ["W"], "u": ["{{unknown}}"]})]),
    SendCase("GET external URN", GET, msg(to="ext:abc+1"), expected_requests=[Req("GET", "/send", q("Simple Message", to="abc+1"))]),
    SendCase("POST urlencoded template", POST, msg("Simple Message", quick_replies=["One"]),
             expected_requests=[Req("POST", "/send", {}, URLENC, form=q("Simple Message", quick_reply=["One"]))]),
    SendCase("POST urlencoded default body", ch({}, id=5), msg("Hi there"),
             expected_requests=[Req("POST", "/send", {}, URLENC,
                                    b"id=10&text=Hi+there&to=%2B250788383383&to_no_plus=250788383383&from=2020&from_no_plus=2020&channel=5")]),
    SendCase("POST custom content type, raw values",
             ch({"body": "to={{to_no_plus}}&text={{text}}&from={{from_no_plus}}{{quick_replies}}",
                 "content_type": "application/x-www-form-urlencoded; charset=utf-8"}), msg(quick_replies=["A b"]),
             expected_requests=[Req("POST", "/send", {}, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                                    b"to=250788383383&text=Simple Message&from=2020&quick_reply=A+b")]),
    SendCase("JSON template with headers", JSON, msg(),
             expected_requests=[Req("POST", "/send", {}, JSON_AUTH,
                                    '{ "to":"+250788383383", "text":"Simple Message", "from":"2020", "quick_replies":[] }')]),
    SendCase("JSON unicode and quotes", JSON, msg('☺ "hi!" <b>'),
             expected_requests=[Req(body='{ "to":"+250788383383", "text":"☺ \\"hi!\\" \\u003cb\\u003e", "from":"2020", "quick_replies":[] }')]),
    SendCase("JSON quick replies", JSON, msg("Some message", quick_replies=["One", "Two", "Three"]),
             expected_requests=[Req(body='{ "to":"+250788383383", "text":"Some message", "from":"2020", "quick_replies":["One","Two","Three"] }')]),
    SendCase("JSON quoted variables lose their quotes",
             ch({"body": """{ "to":"{{to}}", "text":"{{text}}", "from":'{{from}}', "quick_replies":"{{quick_replies}}" }""",
                 "content_type": "json"}), msg("My pic!", attachments=["image/jpeg:https://foo.bar/image.jpg"]),
             expected_requests=[Req(body='{ "to":"+250788383383", "text":"My pic!\\nhttps://foo.bar/image.jpg", "from":"2020", "quick_replies":[] }')]),
    SendCase("JSON numbers stay numbers, strings stay strings",
             ch({"body": '{"id": {{id}}, "channel": {{channel}}, "session": {{session_status}}}', "content_type": "json"}, id=12),
             msg(id="abc-1", session_status="W"),
             expected_requests=[Req(body='{"id": "abc-1", "channel": 12, "session": "W"}')]),
    SendCase("JSON long text in three parts",
             ch({"body": JSON_BODY, "content_type": "json", "max_length": 30}), msg(LONG, quick_replies=["One", "Two"]),
             expected_requests=[Req(body='{ "to":"+250788383383", "text":"This is a long message that", "from":"2020", "quick_replies":[] }'),
                                Req(body='{ "to":"+250788383383", "text":"will be longer than 30.......", "from":"2020", "quick_replies":[] }'),
                                Req(body='{ "to":"+250788383383", "text":"characters", "from":"2020", "quick_replies":["One","Two"] }')]),
    SendCase("XML PUT with quick replies", XML_PUT, msg("Some message", quick_replies=["One", "Two & 3"]),
             expected_requests=[Req("PUT", "/send", {}, XML, "<msg><to>+250788383383</to><text>Some message</text><from>2020</from>"
                                    "<quick_replies><item>One</item><item>Two &amp; 3</item></quick_replies></msg>")]),
    SendCase("XML attachment and escaping", XML_PUT, msg("a<b> & 'c'", attachments=["image/jpeg:https://foo.bar/image.jpg"]),
             expected_requests=[Req(body="<msg><to>+250788383383</to><text>a&lt;b&gt; &amp; &#39;c&#39;&#xA;https://foo.bar/image.jpg</text>"
                                    "<from>2020</from><quick_replies></quick_replies></msg>")]),
    SendCase("XML response check found", ch({"body": XML_BODY, "content_type": "xml", "mt_response_check": "<return>0</return>"}),
             msg(), responses=[Reply(200, "<return>0</return>")]),
    SendCase("XML response check missing", ch({"body": XML_BODY, "content_type": "xml", "mt_response_check": "<return>0</return>"}),
             msg(), responses=[Reply(200, "<return>1</return>")], expected_statuses=[("failed", "response_content")]),
    SendCase("send_authorization and a secret query value never logged",
             ch({"send_url": "{provider}/send?key=${EX_TEST_KEY}", "content_type": "json", "send_authorization": "${EX_TEST_TOKEN}",
                 "headers": {"X-Extra": "1"}}, id=346, address="+5582999489287"), msg(),
             expected_requests=[Req("POST", "/send", {"key": ["k3y-9f8e7d"]},
                                    {"Authorization": "Token S3cr3t-ABCDEF", "X-Extra": "1", "Content-Type": "application/json"})],
             secrets=["S3cr3t-ABCDEF", "k3y-9f8e7d"]),
    SendCase("headers override send_authorization",
             ch({"send_authorization": "Token one", "headers": {"Authorization": "Token two"}}), msg(),
             expected_requests=[Req(headers={"Authorization": "Token two"})], secrets=["Token one", "Token two"]),
    SendCase("UTF-8 split never cuts a character", ch({"send_url": GET_URL, "method": "GET", "max_length": 10}), msg("ééééé ééé"),
             expected_requests=[Req(query=q("ééééé")), Req(query=q("ééé"))]),
    SendCase("401 fails", POST, msg(), responses=[Reply(401, "1: Unknown channel")], expected_statuses=[("failed", "response_status")]),
    SendCase("a redirect is not followed", POST, msg(), responses=[Reply(302, "", {"Location": "http://example.com/"})],
             expected_statuses=[("failed", "response_status")]),
    SendCase("429 is throttled, then wired", POST, msg(), responses=[Reply(429, "slow down"), Reply(200, "ok")],
             expected_requests=[Req("POST"), Req("POST")],
             expected_statuses=[("errored", "connection_throttled"), ("wired", None)]),
    SendCase("500 retried until the delays run out", POST, msg(), responses=[Reply(500, "boom")],
             expected_requests=[Req("POST")] * 3, expected_statuses=RETRIED_TWICE),
    SendCase("timeout, then wired", POST, msg(), responses=[Reply(200, "late", delay=3), Reply(200, "ok")],
             expected_statuses=[("errored", "connection_failed"), ("wired", None)]),
    SendCase("refused connection", ch({"send_url": "{refused}/send"}), msg(), expected_statuses=RETRIED_TWICE),
    SendCase("second part fails: the rest is not sent", ch({"send_url": GET_URL, "method": "GET", "max_length": 30}), msg(LONG),
             responses=[Reply(200), Reply(400, "bad")], expected_requests=[Req("GET"), Req("GET")],
             expected_statuses=[("failed", "response_status")]),
    SendCase("not an http URL", ch({"send_url": "ftp://127.0.0.1/send"}), msg(), expected_statuses=[("failed", "channel_config")]),
]  # fmt: skip


@pytest.fixture(scope="module")
async def results(amqp):
    return await run_send_cases(CASES, [ExternalAdapter()], "external")


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
async def test_send(case: SendCase, results):
    check_case(case, results[case.label])
