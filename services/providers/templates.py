"""`{{variable}}` templates for send URLs and bodies, escaped for where they stand.

CONTRACT section 7 (after courier's EX handler): values are query-escaped in URLs and
urlencoded bodies, JSON values in JSON bodies (an integer stays a number), XML-escaped in XML
bodies and inserted raw for any other content type. As in courier, a variable written in
quotes (`"{{text}}"` or `'{{text}}'`) loses its quotes, so `{"text": "{{text}}"}` is valid
JSON too. Substitution is one pass, so text that itself contains `{{...}}` is never expanded.

The escapers copy Go's (`url.QueryEscape`, `json.Marshal`, `xml.EscapeText`) so that a
provider sees the bytes courier would have sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import quote_plus

import orjson

Place = Literal["url", "urlencoded", "json", "xml", "raw"]

#: content type names of the channels file -> the Content-Type header; anything else is literal
CONTENT_TYPES: dict[str, str] = {
    "urlencoded": "application/x-www-form-urlencoded",
    "json": "application/json",
    "xml": "text/xml; charset=utf-8",
}

_VARIABLE_RE = re.compile(r'"\{\{(\w+)\}\}"|\'\{\{(\w+)\}\}\'|\{\{(\w+)\}\}')
# Go's json.Marshal escapes these so that JSON can be embedded in HTML; we match it byte for byte.
_JSON_HTML_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_XML_ESCAPES = str.maketrans(
    {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\t": "&#x9;", "\n": "&#xA;", "\r": "&#xD;"}
)
# Characters XML 1.0 cannot carry at all; Go's xml.EscapeText writes U+FFFD instead.
_XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def content_type_header(content_type: str) -> str:
    """`json` -> `application/json`; a literal MIME type is used as it is."""
    return CONTENT_TYPES.get(content_type, content_type)


def body_place(content_type: str) -> Place:
    """How values are escaped in a body of this content type."""
    if content_type in ("urlencoded", "json", "xml"):
        return content_type  # type: ignore[return-value]
    return "raw"


def query_escape(value: str) -> str:
    """Go's url.QueryEscape: space as `+`, everything but `A-Za-z0-9-_.~` percent-encoded."""
    return quote_plus(value, safe="")


def json_value(value: object) -> str:
    """A JSON value as Go's json.Marshal writes it (integers stay numbers)."""
    return orjson.dumps(value).decode().translate(_JSON_HTML_ESCAPES)


def xml_escape(value: str) -> str:
    """Go's xml.EscapeText."""
    return _XML_INVALID_RE.sub("\ufffd", value).translate(_XML_ESCAPES)


def escape(value: object, place: Place) -> str:
    """`value` escaped for `place`. None is empty; booleans are not numbers."""
    if place == "json":
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return json_value("" if value is None else str(value))
    text = "" if value is None else str(value)
    if place in ("url", "urlencoded"):
        return query_escape(text)
    if place == "xml":
        return xml_escape(text)
    return text


def quick_replies(replies: Sequence[str], place: Place) -> str:
    """`{{quick_replies}}`: a JSON array in JSON bodies, `<item>..</item>` per reply in XML
    bodies, `&quick_reply=<query-escaped>` per reply anywhere else."""
    if place == "json":
        return json_value(list(replies))
    if place == "xml":
        return "".join(f"<item>{xml_escape(r)}</item>" for r in replies)
    return "".join(f"&quick_reply={query_escape(r)}" for r in replies)


def render(template: str, values: Mapping[str, object], place: Place, replies: Sequence[str] = ()) -> str:
    """Replace every known `{{name}}` of `template` by its value escaped for `place`;
    `{{quick_replies}}` renders `replies`. Unknown names are left as they are."""

    def substitute(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name == "quick_replies":
            return quick_replies(replies, place)
        if name not in values:
            return match.group(0)
        return escape(values[name], place)

    return _VARIABLE_RE.sub(substitute, template)
