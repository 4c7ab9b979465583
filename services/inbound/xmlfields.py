"""Read fields out of a SOAP/XML request body with XPath (`from_xpath`, `text_xpath`).

The body comes from the internet, so it is parsed with expat directly and any DTD is
refused outright: no internal or external entities, hence no entity-expansion bombs and no
external fetches. Namespace prefixes are dropped from element names and from the paths, so
`//source` and `//com:moRequest/source` both work on a SOAP envelope the way courier's
xmlquery lets them. Paths are ElementTree's XPath subset (`//a`, `/a/b`, `a[@k='v']`, `a[2]`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.parsers import expat


class XmlError(ValueError):
    """The body is not XML we accept; `str(error)` is the reason given to the provider."""


_PREFIX = re.compile(r"[A-Za-z_][\w.-]*:(?=[A-Za-z_*])")
_TEXT_STEP = re.compile(r"/text\(\)$")


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _refuse_dtd(*_args) -> None:
    raise XmlError("unable to parse request XML: DTDs and entities are not accepted")


def parse(body: bytes) -> ET.Element:
    """The document as an element tree under an unnamed document node (so that absolute paths
    like `/Envelope/Body` resolve from it)."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.StartElementHandler = lambda name, attrs: builder.start(_local(name), {_local(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda name: builder.end(_local(name))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise XmlError(f"unable to parse request XML: {exc}") from None
    document = ET.Element("")
    document.append(builder.close())
    return document


def find_text(document: ET.Element, xpath: str) -> str | None:
    """The text inside the first node `xpath` selects, or None when it selects nothing."""
    path = _TEXT_STEP.sub("", _PREFIX.sub("", xpath.strip()))
    if path.startswith("/"):
        path = "." + path
    try:
        node = document.find(path)
    except (SyntaxError, KeyError, ValueError, TypeError):
        return None
    return None if node is None else "".join(node.itertext())
