"""Channels-file checks of rest channels (REST_ADAPTERS.md 9.2-9.7): one line per problem."""

from __future__ import annotations

import pytest

from services.core.channels import ChannelsError, parse_channels
from services.core.redact import MASK, redact

U1 = "8a9cbe5f-2d2b-4a6e-9c65-0c8c3c5b1f11"


def rest(aggregator: str, config: str) -> str:
    return f"channels:\n  - uuid: {U1}\n    type: rest\n    aggregator: {aggregator}\n    config: {config}\n"


BAD = [
    ("vonage without secret", rest("vonage", "{api_key: k}"), "channels[0].config.api_secret: required for aggregator vonage"),
    ("africastalking without key", rest("africastalking", "{username: sandbox}"), "channels[0].config.api_key: required for aggregator africastalking"),
    ("kannel without base_url", rest("kannel", "{username: u, password: p}"), "channels[0].config.base_url: required for aggregator kannel"),
    ("infobip without credentials", rest("infobip", "{username: u}"), "channels[0].config.api_key: required for aggregator infobip (or username and password)"),
    ("generic without send_url", rest("generic", "{method: GET}"), "channels[0].config.send_url: required for aggregator generic"),
    (
        "generic with unknown auth type",
        rest("generic", "{send_url: 'http://x', auth: {type: oauth}}"),
        "channels[0].config.auth: type must be one of basic, bearer, header, query, got 'oauth'",
    ),
    (
        "generic header auth without value",
        rest("generic", "{send_url: 'http://x', auth: {type: header, name: X-Key}}"),
        "channels[0].config.auth: value required for auth type header",
    ),
    (
        "generic auth not a mapping",
        rest("generic", "{send_url: 'http://x', auth: bearer}"),
        "channels[0].config.auth: must be a mapping with a type (basic, bearer, header or query)",
    ),
    ("unknown aggregator", rest("sinch", "{}"), "channels[0].aggregator: input should be"),
]


@pytest.mark.parametrize("label,text,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_rest_channels_are_reported_by_path(label, text, expected):
    with pytest.raises(ChannelsError) as info:
        parse_channels(text, "channels.yaml")
    assert any(expected in line for line in info.value.problems), info.value.problems


@pytest.mark.parametrize(
    "auth,secret",
    [
        ("{type: header, name: X-Key, value: hdr-secret-1}", "hdr-secret-1"),
        ("{type: query, name: key, value: qry-secret-2}", "qry-secret-2"),
        ("{type: bearer, token: brr-secret-3}", "brr-secret-3"),
        ("{type: basic, username: u, password: bsc-secret-4}", "bsc-secret-4"),
    ],
)
def test_generic_auth_secrets_are_masked(auth, secret):
    parse_channels(rest("generic", f"{{send_url: 'http://x', auth: {auth}}}"))
    assert redact(f"GET http://x?key={secret}") == f"GET http://x?key={MASK}"


def test_valid_rest_channels_load():
    registry = parse_channels(
        rest("twilio", "{account_sid: AC1, auth_token: tok-1234}")
        + f"  - uuid: {U1[:-1]}2\n    type: rest\n    aggregator: infobip\n    config: {{api_key: ib-key-9}}\n"
    )
    assert [c.aggregator for c in registry.rest_channels()] == ["twilio", "infobip"]
