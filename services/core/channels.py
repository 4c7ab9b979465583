"""The channels file (CONTRACT section 6): load, interpolate, validate, look up.

A broken file must stop a process before it touches the broker, with one line per problem
naming the path (`channels.yaml: channels[2].config.send_url: required for type external`).
Pydantic does the shape checks; the cross-checks (duplicate uuids, undefined SMSC
connections or ones of another protocol, per-aggregator required keys) are plain code below.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .redact import is_secret_key, register_secret

AGGREGATORS = ("twilio", "vonage", "infobip", "africastalking", "kannel", "generic")
#: The SMSC protocols: a channel of one of these types names a connection of that protocol.
SMSC_PROTOCOLS = ("smpp", "ucp", "cimd2")
# Config keys each aggregator cannot work without (REST_ADAPTERS.md, section 9).
REST_REQUIRED: dict[str, tuple[str, ...]] = {
    "twilio": ("account_sid", "auth_token"),
    "vonage": ("api_key", "api_secret"),
    "infobip": (),
    "africastalking": ("username", "api_key"),
    "kannel": ("base_url", "username", "password"),
    "generic": ("send_url",),
}
# `config.auth` of a generic rest channel: type -> the keys it needs (REST_ADAPTERS.md 9.7).
GENERIC_AUTH_KEYS: dict[str, tuple[str, ...]] = {
    "basic": ("username", "password"),
    "bearer": ("token",),
    "header": ("name", "value"),
    "query": ("name", "value"),
}
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def generic_auth_problem(auth: Any) -> str | None:
    """Why `auth` is not a valid generic `config.auth`, or None when it is (or is absent)."""
    if auth is None:
        return None
    if not isinstance(auth, dict):
        return "must be a mapping with a type (basic, bearer, header or query)"
    kind = auth.get("type")
    if kind not in GENERIC_AUTH_KEYS:
        return f"type must be one of basic, bearer, header, query, got {kind!r}"
    missing = [key for key in GENERIC_AUTH_KEYS[kind] if auth.get(key) in (None, "")]
    if missing:
        return f"{', '.join(missing)} required for auth type {kind}"
    return None


class ChannelsError(Exception):
    """Every problem found in a channels file, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class ExternalConfig(BaseModel):
    """`config` of an external (RapidPro "External API") channel; see CONTRACT section 7."""

    model_config = ConfigDict(extra="forbid", title="ExternalConfig")

    send_url: str
    method: Literal["GET", "POST", "PUT"] = "POST"
    content_type: str = "urlencoded"
    body: str | None = None
    max_length: int = Field(160, gt=0)
    encoding: Literal["default", "smart"] = "default"
    mt_response_check: str = ""
    send_authorization: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    use_national: bool = False
    mo_from_field: str | None = None
    mo_text_field: str | None = None
    mo_date_field: str | None = None
    from_xpath: str | None = None
    text_xpath: str | None = None
    mo_response: str | None = None
    mo_response_content_type: str | None = None
    receive_secret: str | None = None
    dedupe_window_s: int = Field(0, ge=0)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value):
        return value.upper() if isinstance(value, str) else value


class ChannelBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uuid: Annotated[str, Field(pattern=_UUID)]
    name: str = ""
    id: int | None = None
    address: str = ""
    country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")] | None = None
    schemes: list[str] = Field(default_factory=lambda: ["tel"])
    tps: float = Field(0, ge=0)

    @field_validator("uuid")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("address", mode="before")
    @classmethod
    def _address_str(cls, value):
        return "" if value is None else str(value)

    @field_validator("country")
    @classmethod
    def _upper_country(cls, value):
        return value.upper() if value else value

    @property
    def receive_secret(self) -> str | None:
        config = getattr(self, "config", None)
        if isinstance(config, dict):
            return config.get("receive_secret")
        return getattr(config, "receive_secret", None)


class ExternalChannel(ChannelBase):
    model_config = ConfigDict(extra="forbid", title="ExternalChannel")
    type: Literal["external"]
    config: ExternalConfig


class RestChannel(ChannelBase):
    model_config = ConfigDict(extra="forbid", title="RestChannel")
    type: Literal["rest"]
    aggregator: Literal["twilio", "vonage", "infobip", "africastalking", "kannel", "generic"]
    config: dict[str, Any] = Field(default_factory=dict)


class SmppChannel(ChannelBase):
    model_config = ConfigDict(extra="forbid", title="SmppChannel")
    type: Literal["smpp"]
    connection: str
    config: dict[str, Any] = Field(default_factory=dict)


class UcpChannel(ChannelBase):
    model_config = ConfigDict(extra="forbid", title="UcpChannel")
    type: Literal["ucp"]
    connection: str
    config: dict[str, Any] = Field(default_factory=dict)


class Cimd2Channel(ChannelBase):
    model_config = ConfigDict(extra="forbid", title="Cimd2Channel")
    type: Literal["cimd2"]
    connection: str
    config: dict[str, Any] = Field(default_factory=dict)


Channel = Annotated[ExternalChannel | RestChannel | SmppChannel | UcpChannel | Cimd2Channel, Field(discriminator="type")]
SmscChannel = SmppChannel | UcpChannel | Cimd2Channel


def tls_keys_need_tls(connection):
    """`tls_ca` or `tls_verify: false` without `tls: true` is a mistake, not a no-op."""
    if not connection.tls and (connection.tls_ca is not None or not connection.tls_verify):
        raise ValueError("tls_ca and tls_verify apply only with tls: true")
    return connection


class SmppConnection(BaseModel):
    model_config = ConfigDict(extra="forbid", title="SmppConnection")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    protocol: Literal["smpp"] = "smpp"
    host: str
    port: int = Field(2775, gt=0, lt=65536)
    system_id: str
    password: str = ""
    system_type: str = ""
    bind: Literal["transceiver", "transmitter+receiver"] = "transceiver"
    source_ton: int | None = None
    source_npi: int | None = None
    dest_ton: int = 1
    dest_npi: int = 1
    window: int = Field(10, gt=0, le=1000)
    tps: float = Field(0, ge=0)
    enquire_link_s: float = Field(30, gt=0)
    reconnect_s: list[float] = Field(default_factory=lambda: [1, 2, 5, 10], min_length=1)
    submit_timeout_s: float = Field(10, gt=0)
    default_coding: Literal["gsm7", "latin1", "ucs2"] = "gsm7"
    long_messages: Literal["udh", "sar", "payload"] = "udh"
    registered_delivery: int = Field(1, ge=0, le=255)
    dlr_id_format: Literal["auto", "same", "hex", "dec"] = "auto"
    simulator: bool = False
    # Issue 13: how many copies may hold a login at once (the rest wait as standbys), and TLS.
    binds: int = Field(1, ge=1, le=64)
    tls: bool = False
    tls_ca: str | None = None
    tls_verify: bool = True

    @model_validator(mode="after")
    def _tls_keys_need_tls(self):
        return tls_keys_need_tls(self)


class _SmscLink(BaseModel):
    """The keys UCP and CIMD2 connections share (CONTRACT section 11)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    host: str
    port: int = Field(gt=0, lt=65536)
    username: str = ""
    password: str = ""
    tps: float = Field(0, ge=0)
    keepalive_s: float = Field(30, gt=0)
    reconnect_s: list[float] = Field(default_factory=lambda: [1, 2, 5, 10], min_length=1)
    submit_timeout_s: float = Field(10, gt=0)
    registered_delivery: bool = True
    simulator: bool = False
    # Issue 13: how many copies may hold a login at once (the rest wait as standbys), and TLS.
    binds: int = Field(1, ge=1, le=64)
    tls: bool = False
    tls_ca: str | None = None
    tls_verify: bool = True

    @model_validator(mode="after")
    def _tls_keys_need_tls(self):
        return tls_keys_need_tls(self)


class UcpConnection(_SmscLink):
    """A UCP/EMI account: `username` is the OAdC of the OT 60 login, `window` the TRNs
    outstanding at once (TRNs are two digits, so at most 100)."""

    model_config = ConfigDict(extra="forbid", title="UcpConnection")
    protocol: Literal["ucp"]
    window: int = Field(10, gt=0, le=100)


class Cimd2Connection(_SmscLink):
    """A CIMD2 account: `username` and `password` are parameters 010 and 011 of the login;
    `window` above 1 is asked for at login (019) and used only when the SMSC grants it."""

    model_config = ConfigDict(extra="forbid", title="Cimd2Connection")
    protocol: Literal["cimd2"]
    window: int = Field(1, gt=0, le=128)


def _protocol_of(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("protocol", "smpp")
    return getattr(value, "protocol", "smpp")


SmscConnection = Annotated[
    Annotated[SmppConnection, Tag("smpp")] | Annotated[UcpConnection, Tag("ucp")] | Annotated[Cimd2Connection, Tag("cimd2")],
    Discriminator(_protocol_of),
]
AnyConnection = SmppConnection | UcpConnection | Cimd2Connection


class KannelDoorMo(BaseModel):
    """Where a Kannel door posts inbound messages: `url` with Kannel's escapes (CONTRACT section 10)."""

    model_config = ConfigDict(extra="forbid", title="KannelDoorMo")

    url: str
    channels: list[str] | None = None  # absent = [the door's channel]; [] = none


class FrontDoorBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    channel: Annotated[str, Field(pattern=_UUID)]

    @field_validator("channel")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class KannelDoor(FrontDoorBase):
    """Kannel's smsbox `sendsms` for courier's KN channel type (CONTRACT section 10)."""

    model_config = ConfigDict(extra="forbid", title="KannelDoor")

    kind: Literal["kannel"]
    username: Annotated[str, Field(min_length=1)]
    password: Annotated[str, Field(min_length=1)]
    smsc: dict[str, Annotated[str, Field(pattern=_UUID)]] = Field(default_factory=dict)
    allow_ips: list[str] = Field(default_factory=list)
    max_parts: int = Field(10, gt=0, le=255)
    mo: KannelDoorMo | None = None

    def fed_channels(self) -> list[str]:
        """The channels whose inbound messages go to `mo.url`."""
        if self.mo is None:
            return []
        return [self.channel] if self.mo.channels is None else [c.lower() for c in self.mo.channels]


class ExternalDoor(FrontDoorBase):
    """An SMS provider's end of courier's EX channel type (CONTRACT section 10)."""

    model_config = ConfigDict(extra="forbid", title="ExternalDoor")

    kind: Literal["external"]
    token: Annotated[str, Field(min_length=1)]
    callback_base: str
    mo_channels: list[str] | None = None  # absent = [the door's channel]; [] = none

    def fed_channels(self) -> list[str]:
        """The channels whose inbound messages go to `<callback_base>/receive`."""
        return [self.channel] if self.mo_channels is None else [c.lower() for c in self.mo_channels]


FrontDoor = Annotated[KannelDoor | ExternalDoor, Field(discriminator="kind")]


class ChannelsFile(BaseModel):
    """The whole file; `schemas/channels.json` is generated from this model."""

    model_config = ConfigDict(extra="forbid", title="ChannelsFile")

    channels: list[Channel]
    smpp_connections: list[SmppConnection] = Field(default_factory=list)
    smsc_connections: list[SmscConnection] = Field(default_factory=list)


    front_doors: list[FrontDoor] = Field(default_factory=list)


_FILE_ADAPTER = TypeAdapter(ChannelsFile)


@dataclass
class Registry:
    """A validated channels file with the lookups the workers need."""

    source: str
    channels: dict[str, ExternalChannel | RestChannel | SmppChannel | UcpChannel | Cimd2Channel]
    connections: dict[str, AnyConnection]
    secrets: set[str] = field(default_factory=set)
    doors: dict[str, KannelDoor | ExternalDoor] = field(default_factory=dict)

    def get(self, channel_uuid: str):
        return self.channels.get(channel_uuid.lower())

    def for_connection(self, name: str) -> list[SmscChannel]:
        return [c for c in self.channels.values() if c.type in SMSC_PROTOCOLS and c.connection == name]

    def transports(self) -> list[str]:
        """The transport keys of every SMSC connection (`smpp.<name>`, `ucp.<name>` ...)."""
        return [f"{c.protocol}.{c.name}" for c in self.connections.values()]

    def rest_channels(self, aggregator: str | None = None) -> list[RestChannel]:
        return [
            c
            for c in self.channels.values()
            if isinstance(c, RestChannel) and (aggregator is None or c.aggregator == aggregator)
        ]


def transport_key(channel) -> str:
    """The `sms.transport` routing key of a channel (CONTRACT section 4)."""
    if channel.type == "external":
        return "external"
    if channel.type == "rest":
        return f"rest.{channel.aggregator}"
    return f"{channel.type}.{channel.connection}"


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("external", "rest", *SMSC_PROTOCOLS) and out.endswith("]") and out.startswith(("channels", "smsc_")):
            continue  # pydantic inserts the discriminator's tag into the location
        elif part in ("kannel", "external") and out.endswith("]") and out.startswith("front_doors"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _interpolate(value: Any, path: str, problems: list[str], secrets: set[str], secret_ctx: bool = False):
    """Replace `${VAR}` (and `${VAR:-default}`) from the environment, recursively.

    Every interpolated value is a secret, and so is every value under a secret-named key.
    """
    if isinstance(value, dict):
        return {
            k: _interpolate(v, f"{path}.{k}" if path else str(k), problems, secrets, is_secret_key(str(k)))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", problems, secrets, secret_ctx) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            secrets.add(os.environ[name])
            return os.environ[name]
        if default is not None:
            secrets.add(default)
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""

    result = _VAR_RE.sub(replace, value)
    if secret_ctx:
        secrets.add(result)
    return result


def _friendly(err: dict, doc: dict) -> str:
    loc = err["loc"]
    kind = err["type"]
    if kind == "missing":
        owner = _channel_type(doc, loc)
        suffix = f" for type {owner}" if owner and len(loc) > 2 else ""
        return f"required{suffix}"
    if kind == "union_tag_invalid" and loc and loc[0] == "smsc_connections":
        return f"unknown protocol {err.get('input', {}).get('protocol')!r} (expected smpp, ucp or cimd2)"


    if kind in ("union_tag_invalid", "union_tag_not_found") and loc and loc[0] == "front_doors":
        return "kind must be kannel or external"
    if kind == "union_tag_invalid":
        return f"unknown type {err.get('input', {}).get('type')!r} (expected external, rest, smpp, ucp or cimd2)"
    if kind == "union_tag_not_found":
        return "type is required (external, rest, smpp, ucp or cimd2)"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "uuid":
        return f"not a valid uuid: {err.get('input')!r}"
    if kind == "literal_error":
        return f"{err['msg'].lower()}, got {err.get('input')!r}"
    return err["msg"][0].lower() + err["msg"][1:]


def _channel_type(doc: dict, loc: tuple) -> str | None:
    if len(loc) >= 2 and loc[0] == "channels" and isinstance(loc[1], int):
        try:
            return doc["channels"][loc[1]].get("type")
        except (KeyError, IndexError, TypeError, AttributeError):
            return None
    return None


def parse_channels(text: str, source: str = "channels.yaml") -> Registry:
    """Validate the YAML text of a channels file; raise ChannelsError listing every problem."""
    try:
        return _parse_channels(text, source)
    except RecursionError:
        # PyYAML, the interpolation and the validation all walk nested values recursively:
        # a few thousand `[` exhaust Python's stack. One line, as for any broken file.
        raise ChannelsError([f"{Path(source).name}: file: nested too deeply"]) from None


def _parse_channels(text: str, source: str) -> Registry:
    label = Path(source).name
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "file"
        raise ChannelsError([f"{label}: {where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(doc, dict):
        raise ChannelsError([f"{label}: the file must be a mapping with a 'channels' list"])

    problems: list[str] = []
    secrets: set[str] = set()
    doc = _interpolate(doc, "", problems, secrets)
    parsed: ChannelsFile | None = None
    try:
        parsed = _FILE_ADAPTER.validate_python(doc)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(f"{_path(err['loc'])}: {_friendly(err, doc)}")

    if parsed is not None:
        seen: dict[str, int] = {}
        protocols: dict[str, str] = {}
        listed = [("smpp_connections", parsed.smpp_connections), ("smsc_connections", parsed.smsc_connections)]
        for key, conns in listed:
            for i, conn in enumerate(conns):
                if conn.name in protocols:
                    problems.append(f"{key}[{i}].name: duplicate connection {conn.name!r}")
                protocols.setdefault(conn.name, conn.protocol)
        for i, channel in enumerate(parsed.channels):
            if channel.uuid in seen:
                problems.append(f"channels[{i}].uuid: duplicate of channels[{seen[channel.uuid]}] ({channel.uuid})")
            else:
                seen[channel.uuid] = i
            if channel.type in SMSC_PROTOCOLS:
                protocol = protocols.get(channel.connection)
                if protocol is None:
                    problems.append(f"channels[{i}].connection: undefined {channel.type.upper()} connection {channel.connection!r}")
                elif protocol != channel.type:
                    problems.append(f"channels[{i}].connection: {channel.connection!r} is a {protocol} connection, not {channel.type}")
            if isinstance(channel, RestChannel):
                for key in REST_REQUIRED[channel.aggregator]:
                    if channel.config.get(key) in (None, ""):
                        problems.append(f"channels[{i}].config.{key}: required for aggregator {channel.aggregator}")
                if channel.aggregator == "infobip" and not (
                    channel.config.get("api_key") or (channel.config.get("username") and channel.config.get("password"))
                ):
                    problems.append(f"channels[{i}].config.api_key: required for aggregator infobip (or username and password)")
                if channel.aggregator == "generic":
                    auth = channel.config.get("auth")
                    problem = generic_auth_problem(auth)
                    if problem:
                        problems.append(f"channels[{i}].config.auth: {problem}")
                    elif isinstance(auth, dict):
                        # `password` and `token` are secret by name; a header or query `value` too.
                        secrets.update(str(auth[k]) for k in ("password", "token", "value") if auth.get(k))

    if parsed is not None:
        problems += _door_problems(parsed)
    if problems:
        raise ChannelsError([f"{label}: {p}" for p in problems])
    assert parsed is not None
    for secret in secrets:
        register_secret(secret)
    connections = [*parsed.smpp_connections, *parsed.smsc_connections]
    for conn in connections:
        register_secret(conn.password)
    return Registry(
        source=source,
        channels={c.uuid: c for c in parsed.channels},
        connections={c.name: c for c in connections},
        secrets=secrets,
        doors={d.name: d for d in parsed.front_doors},
    )


def _door_problems(parsed: ChannelsFile) -> list[str]:
    """Front doors (CONTRACT section 10): unique names and Kannel usernames, known channels,
    valid CIDRs and http(s) callback URLs."""
    import ipaddress
    from urllib.parse import urlsplit

    problems: list[str] = []
    known = {c.uuid for c in parsed.channels}
    names: set[str] = set()
    usernames: set[str] = set()
    for i, door in enumerate(parsed.front_doors):
        where = f"front_doors[{i}]"
        if door.name in names:
            problems.append(f"{where}.name: duplicate front door {door.name!r}")
        names.add(door.name)
        refs = [("channel", door.channel)]
        if isinstance(door, KannelDoor):
            if door.username in usernames:
                problems.append(f"{where}.username: another kannel door has username {door.username!r}")
            usernames.add(door.username)
            refs += [(f"smsc.{key}", value.lower()) for key, value in door.smsc.items()]
            refs += [(f"mo.channels[{j}]", c.lower()) for j, c in enumerate((door.mo.channels or []) if door.mo else [])]
            for j, cidr in enumerate(door.allow_ips):
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    problems.append(f"{where}.allow_ips[{j}]: not an IP network: {cidr!r}")
            urls = [("mo.url", door.mo.url)] if door.mo else []
        else:
            refs += [(f"mo_channels[{j}]", c.lower()) for j, c in enumerate(door.mo_channels or [])]
            urls = [("callback_base", door.callback_base)]
        for path, uuid in refs:
            if uuid not in known:
                problems.append(f"{where}.{path}: no channel {uuid} in this file")
        for path, url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(f"{where}.{path}: not an http(s) URL: {url!r}")
    return problems


def load_channels(path: str | os.PathLike) -> Registry:
    """Read and validate a channels file from disk."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChannelsError([f"{p.name}: file not found ({p})"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChannelsError([f"{p.name}: cannot read ({exc})"]) from None
    return parse_channels(text, str(p))


def door_urls(door, public_base: str) -> dict[str, str]:
    """What `switchboard channels list` prints for a front door: the `send_url` to paste into
    RapidPro and what the door calls back."""
    base = public_base.rstrip("/")
    if door.kind == "kannel":
        urls = {"send_url": f"{base}/cgi-bin/sendsms", "dlr": "each message's dlr-url (as RapidPro sends it)"}
        if door.mo is not None:
            urls["mo"] = door.mo.url + f"  (from {', '.join(door.fed_channels()) or 'no channel'})"
        return urls
    callback = door.callback_base.rstrip("/")
    return {
        "send_url": f"{base}/ex/{door.name}/send",
        "status": f"{callback}/sent|delivered|failed",
        "mo": f"{callback}/receive  (from {', '.join(door.fed_channels()) or 'no channel'})",
    }


def receive_urls(channel, public_base: str) -> dict[str, str]:
    """The URLs a provider calls for this channel (shown by `switchboard channels list`)."""
    base = public_base.rstrip("/")
    if channel.type == "external":
        root = f"{base}/c/ex/{channel.uuid}"
        return {a: f"{root}/{a}" for a in ("receive", "sent", "delivered", "failed", "stopped")}
    if channel.type == "rest":
        root = f"{base}/c/{channel.aggregator}/{channel.uuid}"
        if channel.aggregator == "generic":
            return {a: f"{root}/{a}" for a in ("receive", "sent", "delivered", "failed", "stopped")}
        urls = {"receive": f"{root}/receive", "status": f"{root}/status"}
        if channel.aggregator == "kannel":
            urls["kannel get-url"] = f"{root}/receive?sender=%p&to=%P&message=%b&ts=%T&id=%I"
        return urls
    return {}
