"""Secret redaction for logs, channel logs and error messages (CONTRACT section 8).

The channels loader registers every secret it sees (config keys that are secret by name and
every `${VAR}` value); everything that leaves a process as text passes through `redact`.
"""

from __future__ import annotations

import re

MASK = "**********"
SECRET_KEYS = frozenset(
    {
        "password",
        "auth_token",
        "api_secret",
        "api_key",
        "token",
        "send_authorization",
        "receive_secret",
        "secret",
        "authorization",
    }
)
_AUTH_HEADER_RE = re.compile(r"(?im)^(authorization|x-switchboard-secret|apikey)(\s*:\s*)(.+)$")
_URL_PASSWORD_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@/\s]+)(@)")
_secrets: set[str] = set()
_SUBSTRING_TESTS = 16  # with more registered secrets one regex pass beats a `in` test per secret
_pattern: re.Pattern[str] | None = None


def register_secret(value: object) -> None:
    """Remember a secret value; short values (under 4 characters) would mask too much text."""
    global _pattern
    if not isinstance(value, str) or len(value) < 4 or value in _secrets:
        return
    _secrets.add(value)
    ordered = sorted(_secrets, key=len, reverse=True)
    _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def is_secret_key(key: str) -> bool:
    return key.lower().replace("-", "_") in SECRET_KEYS


def redact(text: str) -> str:
    """Mask every registered secret, `Authorization`-style header lines and URL passwords.

    Runs on every channel log and log line: each regex runs only when a plain substring
    test says it could match (most text holds no secret at all)."""
    if not text:
        return text
    if _pattern is not None and (len(_secrets) > _SUBSTRING_TESTS or any(s in text for s in _secrets)):
        text = _pattern.sub(MASK, text)
    lowered = text.lower()
    if "authorization" in lowered or "x-switchboard-secret" in lowered or "apikey" in lowered:
        text = _AUTH_HEADER_RE.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    if "@" in text and "://" in text:
        text = _URL_PASSWORD_RE.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return text


def redact_mapping(data: dict) -> dict:
    """A copy of `data` with secret keys masked, recursively (for headers and configs)."""
    out = {}
    for key, value in data.items():
        if is_secret_key(str(key)):
            out[key] = MASK
        elif isinstance(value, dict):
            out[key] = redact_mapping(value)
        elif isinstance(value, str):
            out[key] = redact(value)
        else:
            out[key] = value
    return out
