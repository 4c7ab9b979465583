"""Random requests against the real app and broker: no answer is a 5xx other than 503, every
answer on `/c/` is the JSON envelope (or the channel's literal `mo_response`), and the edge
keeps working afterwards."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from .conftest import CHANNELS, REST_UUID, SOAP_RESPONSE, UNKNOWN_UUID

NAMES = ["from", "sender", "text", "date", "time", "id", "uuid", "secret", "from_number", "messageText", "timestamp"]
# Mostly well-formed requests, so that the parsers (not only the routing) get the random input.
CHANNEL_IDS = [spec["uuid"] for spec in CHANNELS.values()] * 3 + [REST_UUID, UNKNOWN_UUID, "x", ""]
ACTIONS = ["receive"] * 6 + ["sent", "delivered", "failed", "stopped", "receive/", "nope", ""]
CONTENT_TYPES = [
    None, "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "multipart/form-data",
    "application/json", "text/xml", "text/plain", "application/json; charset=latin-1",
]
DATES = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.sampled_from(["2017-06-23T12:30:00Z", "2017-13-45T99:99:99Z", "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"]),
    st.text(max_size=30),
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\+?[0-9 ()-]{0,20}", fullmatch=True),
    st.sampled_from(["+250788383383", "0788383383", "2349067554729", "10000", "MTN"]),
    st.integers().map(str),
    DATES,
)
PARAMS = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=10)), VALUES, max_size=6)
SENDERS = st.fixed_dictionaries({"from": st.sampled_from(["+250788383383", "0788383383", "2349067554729", "10000"])})
QUERIES = st.one_of(PARAMS, st.builds(lambda a, b: {**a, **b}, PARAMS, SENDERS))


def _body(draw_kind: str, params: dict, raw: bytes) -> bytes:
    if draw_kind == "form":
        from urllib.parse import urlencode

        return urlencode(params).encode()
    if draw_kind == "json":
        return orjson.dumps(params)
    if draw_kind == "json-odd":
        return orjson.dumps([params, 1, None])
    if draw_kind == "multipart":
        parts = b"".join(
            b'--xyz\r\nContent-Disposition: form-data; name="' + k.encode() + b'"\r\n\r\n' + v.encode() + b"\r\n"
            for k, v in params.items()
        )
        return parts + b"--xyz--\r\n"
    if draw_kind == "xml":
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in params.items() if k.isidentifier())
        return f"<m><source>{params.get('from', '')}</source><content>{inner}</content></m>".encode(errors="replace")
    return raw


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET"] * 4 + ["POST"] * 6 + ["PUT", "DELETE", "HEAD"]),
    channel=st.sampled_from(CHANNEL_IDS),
    action=st.sampled_from(ACTIONS),
    query=QUERIES,
    body_params=PARAMS,
    body_kind=st.sampled_from(["form", "json", "json-odd", "multipart", "xml", "raw", "none"]),
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(CONTENT_TYPES),
    headers=st.dictionaries(
        st.sampled_from(["X-Switchboard-Secret", "Authorization", "Content-Length-Ignored"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
        max_size=2,
    ),
)
async def test_random_requests_never_5xx(client, method, channel, action, query, body_params, body_kind, raw,
                                         content_type, headers):
    request_headers = dict(headers)
    if content_type:
        request_headers["Content-Type"] = content_type
    body = b"" if body_kind == "none" or method in ("GET", "HEAD") else _body(body_kind, body_params, raw)
    response = await client.request(method, f"/c/ex/{channel}/{action}", params=query, content=body, headers=request_headers)
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500 or response.status_code == 503, response.text
    if method != "HEAD":
        if response.status_code == 200 and response.text == SOAP_RESPONSE:
            return
        envelope = response.json()
        assert set(envelope) == {"message", "data"}
        if response.status_code >= 400:
            assert envelope["message"] == "Error" and envelope["data"][0]["error"]


async def test_edge_still_answers_after_the_fuzzing(client):
    answer = await client.post(f"/c/ex/{CHANNELS['us']['uuid']}/receive", data={"from": "+250788383383", "text": "ok"})
    assert answer.status_code == 200
