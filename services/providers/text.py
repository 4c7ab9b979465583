"""Message text as HTTP transports send it: attachments appended, split into parts, smart encoding.

These follow courier's EX handler (CONTRACT section 7) and are shared by every HTTP adapter
(REST_ADAPTERS.md 9.1 "Text"), so they are plain functions with no I/O.
"""

from __future__ import annotations

from ..protocols.gsm import is_gsm7

#: Characters a phone cannot show in GSM 03.38 with the GSM character that stands in for them:
#: courier's `gsm7.ReplaceSubstitutions` table (accents missing from the default alphabet,
#: what word processors put in for quotes and dashes, non-breaking space, tab), plus the
#: ellipsis, the em dash and the thin and narrow no-break spaces, which editors insert as often.
GSM7_SUBSTITUTIONS: dict[str, str] = {
    "á": "a", "ê": "e", "ã": "a", "â": "a", "ç": "c", "í": "i", "î": "i",
    "ú": "u", "û": "u", "õ": "o", "ô": "o", "ó": "o",
    "Á": "A", "Â": "A", "Ã": "A", "À": "A", "Ç": "C", "È": "E", "Ê": "E",
    "Í": "I", "Î": "I", "Ì": "I", "Ó": "O", "Ô": "O", "Ò": "O", "Õ": "O",
    "Ú": "U", "Ù": "U", "Û": "U",
    "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
    "\xa0": " ", "\t": " ",
    "\u2014": "-", "\u2026": "...", "\u2009": " ", "\u202f": " ",
}  # fmt: skip
_SUBSTITUTION_TABLE = str.maketrans(GSM7_SUBSTITUTIONS)


def attachment_url(attachment: str) -> str:
    """`image/jpeg:https://x/a.jpg` -> `https://x/a.jpg` (courier's SplitAttachment: the part
    after the first colon; an attachment without a colon is all URL)."""
    kind, sep, url = attachment.partition(":")
    return url if sep else kind


def text_with_attachments(text: str, attachments: list[str]) -> str:
    """The text with each attachment's URL appended as `\\n<url>` (courier's GetTextAndAttachments)."""
    if not attachments:
        return text
    return text + "".join("\n" + attachment_url(a) for a in attachments)


def split_text(text: str, max_bytes: int) -> list[str]:
    """Split `text` into parts of at most `max_bytes` UTF-8 bytes.

    Each part is cut at the last space that fits (a space right after the limit counts, as it
    is trimmed away), or hard at the limit when there is none, never inside a UTF-8 character;
    parts are trimmed and empty ones dropped. Text that fits is returned untouched.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    if len(text.encode("utf-8")) <= max_bytes:
        return [text]
    parts: list[str] = []
    rest = text
    while rest:
        if len(rest.encode("utf-8")) <= max_bytes:
            parts.append(rest.strip())
            break
        fit = _chars_fitting(rest, max_bytes)
        cut = rest.rfind(" ", 0, fit + 1)  # a space at index `fit` ends this part exactly at the limit
        if cut <= 0:
            cut = fit
        parts.append(rest[:cut].strip())
        rest = rest[cut:]
    return [p for p in parts if p]


def _chars_fitting(text: str, max_bytes: int) -> int:
    """How many leading characters of `text` fit in `max_bytes` UTF-8 bytes (at least one, so
    that a limit smaller than one character still makes progress)."""
    used = 0
    for index, char in enumerate(text):
        size = 1 if char < "\x80" else len(char.encode("utf-8"))
        if used + size > max_bytes:
            return max(index, 1)
        used += size
    return len(text)


def smart_encode(text: str) -> str:
    """courier's `encoding: smart`: substitute look-alikes so the text fits GSM 03.38, but only
    when the substituted text is then all GSM; otherwise the text goes out unchanged (the
    provider will send it as UCS-2 anyway, so the original characters are better)."""
    replaced = text.translate(_SUBSTITUTION_TABLE)
    return replaced if is_gsm7(replaced) else text
