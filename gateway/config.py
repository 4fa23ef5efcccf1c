"""One TOML file -> typed, validated configuration.

Every error names the file, the line, the table and the key, because the person
reading it is an operator at a console, not a developer with a traceback.
Relative paths are resolved against ``gateway.data_dir`` (default: the config
file's folder).
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, TypeVar, overload
from zoneinfo import ZoneInfo

import phonenumbers

# The values the config builds live below it (gateway/values/): the policy, the registry and the state store read
# them without importing the config. Re-exported here under their old names.
from gateway.values.campaign import (
    AUTO_JURISDICTION,
    PACK_COUNTRIES,
    Campaign,
    Category,
    Mode,
    Regime,
    Sector,
    UndatedConsent,
    UndatedRelationship,
    Unsupported,
)
from gateway.values.gateway_section import GatewaySection as GatewaySection
from gateway.values.gateway_section import LogLevel as LogLevel
from gateway.values.gateway_section import StaleAction as StaleAction
from gateway.values.gateway_section import StateFailure as StateFailure
from gateway.values.lists import ListFormat, ListKind, ListSpec

DEMO_CONFIG = Path(__file__).parent / "demo" / "demo.toml"

E = TypeVar("E", bound=enum.StrEnum)

# How the Redis state backend bounds its calls (see RedisSettings); the URL's ?socket_timeout= and
# ?socket_connect_timeout= win over the two timeouts.
STATE_KEYS = ("state_connect_timeout", "state_op_timeout", "state_retry_interval", "state_failures_to_open",
              "state_max_connections", "state_warm_connections")


class Answer(enum.StrEnum):
    MSET = "mset"  # the verdict variables in one EXEC MSet round trip
    SET_VARIABLE = "set_variable"  # one SET VARIABLE round trip per variable


class ConfigError(Exception):
    """A config that does not validate: every problem found, each naming the file, line, table and key."""

    def __init__(self, *errors: str) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class AgiSection:
    """``[agi]``: the FastAGI server Asterisk asks before every outbound call."""

    # One line per key for the configuration reference (gateway/configdoc.py); a key missing here is
    # listed without one.
    KEY_DOCS: ClassVar[Mapping[str, str]] = {
        "listen": "Address and port of the FastAGI server (`serve --agi-listen` wins).",
        "allow": "Networks allowed to connect; anyone else is cut off at once.",
        "max_sessions": ("Sessions at once; past it a session is answered `FAILURE` (the dialplan fails over, then "
                         "closed)."),
        "max_sessions_per_peer": ("Sessions at once from one address (0: `max_sessions`), so that one PBX cannot take "
                                  "every session from the others."),
        "read_timeout": "Seconds for the whole environment block, and for each reply.",
        "header_limit": "Bytes of environment block accepted.",
        "drain_timeout": "Seconds SIGTERM waits for the calls in flight.",
        "answer": "How the verdict is written back: the four variables in one `EXEC MSet`, or one `SET VARIABLE` each.",
    }

    listen: HostPort = HostPort("127.0.0.1", 4573)
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    max_sessions: int = 2000
    # Sessions in flight from one address (0: max_sessions): with several PBXs (or a wide [agi] allow), one
    # host that opens connections and sends nothing cannot take every session from the others.
    max_sessions_per_peer: int = 0
    read_timeout: float = 2.0  # seconds for the whole env block and each reply
    header_limit: int = 16384  # bytes of env block
    drain_timeout: float = 10.0
    # How the verdict is written back: one SET VARIABLE round trip per variable (what the recorded sessions
    # show), or all of them in one "EXEC MSet" round trip (fewer system calls: about 40 % more calls/s).
    answer: Answer = Answer.MSET


@dataclass(frozen=True, slots=True)
class WebSection:
    """``[web]``: the supervisor page, the JSON API, `/metrics` and `/healthz`."""

    # One line per key for the configuration reference (gateway/configdoc.py); a key missing here is
    # listed without one.
    KEY_DOCS: ClassVar[Mapping[str, str]] = {
        "listen": "Address and port of the web server (`serve --web-listen` wins).",
        "admin_token": ("Bearer token of the admin routes; empty: they are closed. `DNC_GATEWAY_ADMIN_TOKEN` wins over "
                        "it."),
        "admin_token_file": "Or read the admin token from this file.",
        "dialer_tokens_file": ("File of the dialers' bearer tokens for `POST /v1/decide`, one `NAME TOKEN` a line "
                               "(16 characters or more); such a token opens nothing else."),
    }
    # Filled from dialer_tokens_file, not a key of its own (gateway/configdoc.py leaves it out).
    NOT_KEYS: ClassVar[frozenset[str]] = frozenset({"dialer_tokens"})

    listen: HostPort = HostPort("127.0.0.1", 8080)
    admin_token: str = ""
    dialer_tokens: tuple[tuple[str, str], ...] = ()  # (name, token): POST /v1/decide's bearers (docs/sip.md)


class SipCallerId(enum.StrEnum):
    HEADERS = "headers"  # P-Asserted-Identity, else the From user: what the proxy presents to the carrier
    CAMPAIGN = "campaign"  # the campaign's caller_id (the proxy sets the presented number after the gateway)


@dataclass(frozen=True, slots=True)
class SipSection:
    """``[sip]``: the SIP redirect server (docs/sip.md); absent: not started."""

    # One line per key for the configuration reference (gateway/configdoc.py); a key missing here is
    # listed without one.
    KEY_DOCS: ClassVar[Mapping[str, str]] = {
        "listen": "Address and port of the redirect server, UDP and TCP.",
        "route": ("Required: the carrier, `sip:carrier@HOST:PORT`: a 302's Contact, its user replaced by the dialled "
                  "number."),
        "allow": "Networks whose requests are answered; anything else is dropped (a TCP connection refused).",
        "campaigns": ("The campaign of an INVITE without `X-DNC-Campaign`, by source network (`{\"10.0.0.0/8\" = "
                      "\"prospect\"}`; the most specific match wins)."),
        "caller_id": ("The caller ID the caller-ID rule judges: the request's headers (P-Asserted-Identity, else "
                      "From), or the campaign's `caller_id`."),
        "max_connections": "TCP connections at once.",
        "read_timeout": "Seconds for the rest of a TCP message once its first byte came.",
        "idle_timeout": "Seconds a TCP connection may stay silent between messages.",
        "decision_timeout": "Seconds an INVITE may wait for its decision before it is answered 503.",
        "max_transactions": "Server transactions remembered at once (each lives about 32 s).",
        "max_message": "Bytes of one SIP message.",
        "drain_timeout": "Seconds SIGTERM waits for the decisions in flight.",
    }

    listen: HostPort = HostPort("127.0.0.1", 5060)  # UDP and TCP
    route: str = ""  # "sip:carrier@HOST:PORT": the 302's Contact, its user replaced by the dialled number
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    # The campaign of an INVITE without X-DNC-Campaign, by source network (the most specific match wins).
    campaigns: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = ()
    caller_id: SipCallerId = SipCallerId.HEADERS  # the caller ID the caller-ID rule judges
    max_connections: int = 1000  # TCP connections at once
    read_timeout: float = 2.0  # seconds for the rest of a message once its first byte came (TCP)
    idle_timeout: float = 120.0  # seconds a TCP connection may stay silent between messages
    decision_timeout: float = 2.0  # seconds an INVITE may wait for its decision before it is answered 503
    max_transactions: int = 200_000
    max_message: int = 65535  # bytes
    drain_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class AmiSection:
    """``[ami]``: the AMI watcher, which confirms attempts and catches calls that reached the trunk undecided."""

    # One line per key for the configuration reference (gateway/configdoc.py); a key missing here is
    # listed without one.
    KEY_DOCS: ClassVar[Mapping[str, str]] = {
        "host": "Asterisk's manager interface host.",
        "port": "Asterisk's manager interface port.",
        "username": "AMI user (`manager.conf`: `read = call,dialplan`; `write = call` only for `hangup_bypass`).",
        "secret": "AMI secret.",
        "secret_file": "Or read the AMI secret from this file.",
        "ping_interval": "Seconds between two Pings.",
        "ping_timeout": "Seconds an unanswered Ping waits before the connection is closed and reopened.",
        "reconnect_max": "Longest reconnection delay, in seconds (jittered backoff).",
        "trunk_prefix": "Channel name prefix of the outbound legs (`DestChannel`).",
        "hangup_bypass": "Hang up a call that reached the trunk with no decision (needs `write = call`).",
        "decision_grace": "Seconds a decision covers a dial to the same number.",
    }

    host: str = "127.0.0.1"
    port: int = 5038
    username: str = ""
    secret: str = ""
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_max: float = 30.0
    trunk_prefix: str = "PJSIP/trunk"  # channels whose name starts with this are outbound legs
    hangup_bypass: bool = False  # actively hang up a call that reached the trunk with no decision
    decision_grace: float = 30.0  # seconds a decision covers a DialBegin to the same number


@dataclass(frozen=True, slots=True)
class AuditSection:
    """``[audit]``: how the audit trail (``[gateway] audit``) is written and kept."""

    # One line per key for the configuration reference (gateway/configdoc.py); a key missing here is
    # listed without one.
    KEY_DOCS: ClassVar[Mapping[str, str]] = {
        "durable_allow": "An ALLOW is answered only once its audit record is on disk.",
        "retention_days": "Days records are kept; must cover the longest consent lifetime plus `consent_proof_years`.",
        "group_commit_ms": ("Optional extra wait after a group's first record, in ms; 0: commit as soon as the writer "
                            "is free."),
        "max_queue": "Records waiting to be written; past it a call is refused `audit_unavailable`.",
        "commit_timeout": ("Seconds an ALLOW waits for its record's commit before it is refused `audit_unavailable`, "
                           "and a commit may be stuck before `/healthz` says 503; 0: no deadline."),
    }

    durable_allow: bool = True  # an ALLOW is answered only once its record is on disk
    retention_days: int = 1830  # five years, the longest record-keeping duty of RULES.md
    # Extra wait after a group's first record, at most this many ms. 0: none, commit as soon as the writer is
    # free (leader/follower: records that arrive during a commit form the next group). Before issue 16: 2.
    group_commit_ms: float = 0.0
    max_queue: int = 100_000
    # Seconds an ALLOW waits for its record's commit before it is answered BLOCK audit_unavailable (a stalled or
    # full disk), and how long a commit may be stuck before /healthz says 503. 0: no deadline (before issue 23).
    commit_timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class Config:
    gateway: GatewaySection = field(default_factory=GatewaySection)
    agi: AgiSection = field(default_factory=AgiSection)
    web: WebSection = field(default_factory=WebSection)
    ami: AmiSection | None = None
    audit: AuditSection = field(default_factory=AuditSection)
    lists: Mapping[str, ListSpec] = field(default_factory=dict)
    campaigns: Mapping[str, Campaign] = field(default_factory=dict)
    path: Path | None = None
    sip: SipSection | None = None


def longest_consent_days(campaigns: Iterable[Campaign]) -> int:
    """The longest consent lifetime of the campaigns (0: one has none; 365 without campaigns)."""
    ages = [c.consent_max_age_days for c in campaigns] or [Campaign("").consent_max_age_days]
    return 0 if 0 in ages else max(ages)


def proof_days(years: int, campaigns: Iterable[Campaign]) -> int:
    """Days the audit keeps a decision so that it outlives the consent it rested on by ``years`` (leap days in)."""
    return longest_consent_days(campaigns) + years * 366


def _defaults(cls: type) -> dict[str, Any]:
    """A section's defaults, from its dataclass: each default is written once, in the class."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def toml_error(text: str, source: str, e: tomllib.TOMLDecodeError) -> str:
    """tomllib's error worded for the operator: a key set twice names the key, its table and both lines."""
    message = str(e)
    at = _TOML_AT.search(message)
    if at is None:
        return f"{source}: invalid TOML: {message}"
    lineno, what = int(at.group(1)), message[:at.start()]
    lines = text.splitlines()
    table, table_line = "", 0
    for i in range(min(lineno, len(lines)) - 1, -1, -1):
        if (h := _HEADER.match(lines[i])) is not None:
            table, table_line = re.sub(r"\s*\.\s*", ".", h.group(1)), i + 1
            break
    where = f"in [{table}]" if table else "at the top level (before any [table])"
    twice = re.fullmatch(r"Cannot declare \((.*)\) twice", what)
    if twice is not None:  # [lists.a] ... [lists.a]
        name = ".".join(part.strip().strip("'\"") for part in twice.group(1).split(",") if part.strip())
        return (f"{source}:{lineno}: table [{name}] is declared twice (first at line {_line_of(text, name, None)}): "
                "merge the two into one")
    key = _KEY.match(lines[lineno - 1]) if 0 < lineno <= len(lines) else None
    if what == "Cannot overwrite a value" and key is not None:
        name = key.group(1)
        earlier = next((i + 1 for i in range(table_line, lineno - 1)
                        if (k := _KEY.match(lines[i])) is not None and k.group(1) == name), None)
        already = f" (first at line {earlier})" if earlier else ""
        return f"{source}:{lineno}: {name} is set twice {where}{already}: a key may appear once in a table"
    return f"{source}:{lineno}: invalid TOML {where}: {what}"


def _line_of(text: str, table: str, key: str | None) -> int:
    """Best-effort line number of ``key`` in ``[table]`` (tomllib does not keep positions)."""
    lines = text.splitlines()
    start = 0
    if table:
        pat = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in table.split(".")) + r"\s*\]")
        for i, line in enumerate(lines):
            if pat.match(line):
                start = i
                break
        else:
            return 0
    if key is None:
        return start + 1
    kpat = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for i in range(start + (1 if table else 0), len(lines)):
        if table and lines[i].lstrip().startswith("["):
            break
        if kpat.match(lines[i]):
            return i + 1
    # A key of the top level, or of a table, may be a table of its own: [key] or [key.name] or [table.key].
    hpat = re.compile(r"^\s*\[\[?\s*" + (re.escape(table) + r"\s*\.\s*" if table else "") + re.escape(key)
                      + r"\s*[.\]]")
    for i, line in enumerate(lines):
        if hpat.match(line):
            return i + 1
    return start + 1


class _Reader:
    """Reads values and collects every error (``config check`` lists them all): a bad value is reported and
    replaced by its default, so that validation goes on to the end of the file."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.errors: list[str] = []

    def error(self, table: str, key: str | None, msg: str) -> None:
        line = _line_of(self.text, table, key)
        where = (f"[{table}] {key}" if table else key) if key else f"[{table}]"
        self.errors.append(f"{self.source}:{line}: {where}: {msg}")

    def table(self, data: Mapping[str, Any], table: str, allowed: set[str]) -> Mapping[str, Any]:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                what = "table" if isinstance(data[key], dict) else "key"
                self.error(table, key, f"unknown {what} ({hint}expected one of {', '.join(sorted(allowed))})")
        return data

    def get(self, data: Mapping[str, Any], table: str, key: str, typ: type | tuple[type, ...], default: Any) -> Any:
        if key not in data:
            return default
        value = data[key]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            self.error(table, key, f"expected {names}, got {type(value).__name__} {value!r}")
            return default
        return value

    @overload
    def choice(self, data: Mapping[str, Any], table: str, key: str, choices: type[E], default: E) -> E: ...

    @overload
    def choice(self, data: Mapping[str, Any], table: str, key: str, choices: type[E], default: None) -> E | None: ...

    def choice(self, data: Mapping[str, Any], table: str, key: str, choices: type[E], default: E | None) -> E | None:
        value = self.get(data, table, key, str, default)
        if value is None:
            return None
        try:
            return choices(value)
        except ValueError:
            self.error(table, key, f"{value!r} is not one of {', '.join(repr(c.value) for c in choices)}")
            return default

    def strings(self, data: Mapping[str, Any], table: str, key: str) -> tuple[str, ...]:
        value = self.get(data, table, key, list, [])
        if not all(isinstance(v, str) for v in value):
            self.error(table, key, "expected a list of strings")
            return ()
        return tuple(value)

    def hostport(self, data: Mapping[str, Any], table: str, key: str, default: HostPort) -> HostPort:
        value = self.get(data, table, key, str, None)
        if value is None:
            return default
        m = re.fullmatch(r"\[?([^\[\]]*?)\]?:(\d{1,5})", value)
        if not m or not 0 <= int(m.group(2)) < 65536:  # 0: any free port (tests)
            self.error(table, key, f"{value!r} is not HOST:PORT")
            return default
        return HostPort(m.group(1) or "0.0.0.0", int(m.group(2)))

    def positive(self, data: Mapping[str, Any], table: str, key: str, typ: type, default: Any) -> Any:
        value = self.get(data, table, key, typ, default)
        if value is not None and value <= 0:
            self.error(table, key, f"must be positive, got {value!r}")
            return default
        return value

    def non_negative(self, data: Mapping[str, Any], table: str, key: str, typ: type, default: Any) -> Any:
        value = self.get(data, table, key, typ, default)
        if value is not None and value < 0:
            self.error(table, key, f"must be 0 or more, got {value!r}")
            return default
        return value


_SWITCHES = tuple(f.name for f in fields(Campaign) if f.name.startswith("check_"))


def load(path: Path | None = None, *, data_dir: Path | None = None) -> Config:
    """Read and validate a config file (the embedded demo when ``path`` is None).

    ``path`` and ``data_dir`` are read from the working directory, once; paths inside the file from its
    ``data_dir`` (by default the file's own folder).
    """
    path = (path or DEMO_CONFIG).absolute()
    data_dir = data_dir.absolute() if data_dir is not None else None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config is not UTF-8") from None
    return parse(text, str(path), base=path.parent, data_dir=data_dir)


Resolve = Callable[[str], Path]  # a path written in the file -> where it is (``[gateway] data_dir`` applied)


def parse(text: str, source: str = "<config>", *, base: Path = Path("."), data_dir: Path | None = None) -> Config:
    """Validate a config's text, one table after the other (each its own function below), collecting every
    error; raise :class:`ConfigError` with all of them, or return the config."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(toml_error(text, source, e)) from None
    r = _Reader(text, source)
    r.table(raw, "", {"gateway", "agi", "web", "ami", "audit", "lists", "campaigns", "sip"})
    gateway, resolve = _gateway(r, raw, base, data_dir)
    agi = _agi(r, raw)
    web = _web(r, raw, resolve)
    ami = _ami(r, raw["ami"], resolve) if "ami" in raw else None
    audit = _audit(r, raw)
    raw_lists: dict[str, Any] = r.get(raw, "", "lists", dict, {})
    lists = _lists(r, raw_lists, resolve)
    campaigns = _campaigns(r, r.get(raw, "", "campaigns", dict, {}), lists, raw_lists)
    _proof_retention(r, gateway, audit, campaigns)
    sip = _sip(r, raw["sip"], campaigns) if "sip" in raw else None
    if r.errors:
        raise ConfigError(*r.errors)
    return Config(gateway, agi, web, ami, audit, lists, campaigns, Path(source) if source[:1] != "<" else None, sip)


def _gateway(r: _Reader, raw: Mapping[str, Any], base: Path, data_dir: Path | None) -> tuple[GatewaySection, Resolve]:
    """``[gateway]``, and how the other tables' paths are read (its ``data_dir``, unless ``--data-dir`` is given)."""
    g = r.table(raw.get("gateway", {}), "gateway", {
        "home_country", "professional", "state", "audit", "timezone", "outside_line", "data_dir",
        "stale_action", "state_failure", "alsace_moselle", "overseas_holidays", "unverified_state_rules", "log_level",
        "consent_proof_years", "unverified_state_rules_off",
        *STATE_KEYS})
    dd = data_dir or Path(os.path.expanduser(r.get(g, "gateway", "data_dir", str, str(base))))
    if not dd.is_absolute():
        dd = (base / dd).resolve()

    def resolve(p: str) -> Path:
        q = Path(os.path.expanduser(p))
        return q if q.is_absolute() else dd / q

    G = _defaults(GatewaySection)
    home = r.get(g, "gateway", "home_country", str, G["home_country"]).upper()
    if not re.fullmatch(r"[A-Z]{2}", home):
        r.error("gateway", "home_country", f"{home!r} is not a two-letter ISO region code")
        home = G["home_country"]
    state = r.get(g, "gateway", "state", str, G["state"])
    if not re.match(r"^(memory://|sqlite://|redis://|rediss://|redis\+sentinel://|redis\+cluster://)", state):
        r.error("gateway", "state", f"{state!r}: expected memory://, sqlite:///PATH, redis://HOST:PORT/DB, "
                "redis+sentinel://HOST:26379,HOST2:26379/SERVICE/DB or redis+cluster://HOST:PORT,HOST2:PORT/")
        state = G["state"]
    if state.startswith("sqlite://"):
        # sqlite:///abs/path.db is absolute; sqlite://rel/path.db is relative to data_dir.
        state = "sqlite://" + str(resolve(state.removeprefix("sqlite://")))
    audit = r.get(g, "gateway", "audit", str, "")
    tz = r.get(g, "gateway", "timezone", str, G["timezone"])
    try:
        ZoneInfo(tz)
    except Exception:
        r.error("gateway", "timezone", f"unknown time zone {tz!r}")
        tz = G["timezone"]
    max_connections = r.positive(g, "gateway", "state_max_connections", int, G["state_max_connections"])
    warm_connections = r.positive(g, "gateway", "state_warm_connections", int,
                                  min(G["state_warm_connections"], max_connections))
    if warm_connections > max_connections:
        r.error("gateway", "state_warm_connections",
                f"{warm_connections} is more than state_max_connections ({max_connections})")
        warm_connections = max_connections
    return GatewaySection(
        home_country=home,
        professional=r.get(g, "gateway", "professional", str, G["professional"]),
        state=state,
        audit=resolve(audit) if audit else None,
        timezone=tz,
        outside_line=r.strings(g, "gateway", "outside_line"),
        data_dir=dd,
        stale_action=r.choice(g, "gateway", "stale_action", StaleAction, G["stale_action"]),
        state_failure=r.choice(g, "gateway", "state_failure", StateFailure, G["state_failure"]),
        state_connect_timeout=r.positive(g, "gateway", "state_connect_timeout", float, G["state_connect_timeout"]),
        state_op_timeout=r.positive(g, "gateway", "state_op_timeout", float, G["state_op_timeout"]),
        state_retry_interval=r.positive(g, "gateway", "state_retry_interval", float, G["state_retry_interval"]),
        state_failures_to_open=r.positive(g, "gateway", "state_failures_to_open", int, G["state_failures_to_open"]),
        state_max_connections=max_connections,
        state_warm_connections=warm_connections,
        alsace_moselle=r.get(g, "gateway", "alsace_moselle", bool, G["alsace_moselle"]),
        overseas_holidays=r.get(g, "gateway", "overseas_holidays", bool, G["overseas_holidays"]),
        unverified_state_rules=tuple(v.upper() for v in r.strings(g, "gateway", "unverified_state_rules")),
        unverified_state_rules_off=tuple(v.upper() for v in r.strings(g, "gateway", "unverified_state_rules_off")),
        log_level=r.choice(g, "gateway", "log_level", LogLevel, G["log_level"]),
        consent_proof_years=r.positive(g, "gateway", "consent_proof_years", int, G["consent_proof_years"]),
    ), resolve


def _networks(r: _Reader, data: Mapping[str, Any], table: str, default: Iterable[object]) -> tuple[
        ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """An ``allow`` key: addresses or networks (an address is its /32 or /128)."""
    allow = []
    for net in r.strings(data, table, "allow") or tuple(map(str, default)):
        try:
            allow.append(ipaddress.ip_network(net, strict=False))
        except ValueError:
            r.error(table, "allow", f"{net!r} is not an address or network")
    return tuple(allow)


def _agi(r: _Reader, raw: Mapping[str, Any]) -> AgiSection:
    """``[agi]``: the FastAGI server."""
    a = r.table(raw.get("agi", {}), "agi", {"listen", "allow", "max_sessions", "max_sessions_per_peer",
                                            "read_timeout", "header_limit",
                                            "drain_timeout", "answer"})
    A = _defaults(AgiSection)
    allow = _networks(r, a, "agi", A["allow"])
    return AgiSection(
        listen=r.hostport(a, "agi", "listen", A["listen"]),
        allow=allow,
        max_sessions=r.positive(a, "agi", "max_sessions", int, A["max_sessions"]),
        max_sessions_per_peer=r.non_negative(a, "agi", "max_sessions_per_peer", int, A["max_sessions_per_peer"]),
        read_timeout=r.positive(a, "agi", "read_timeout", float, A["read_timeout"]),
        header_limit=r.positive(a, "agi", "header_limit", int, A["header_limit"]),
        drain_timeout=r.positive(a, "agi", "drain_timeout", float, A["drain_timeout"]),
        answer=r.choice(a, "agi", "answer", Answer, A["answer"]),
    )


def _web(r: _Reader, raw: Mapping[str, Any], resolve: Resolve) -> WebSection:
    """``[web]``: the web server and its tokens (``DNC_GATEWAY_ADMIN_TOKEN`` wins over the file's)."""
    w = r.table(raw.get("web", {}), "web", {"listen", "admin_token", "admin_token_file", "dialer_tokens_file"})
    token = r.get(w, "web", "admin_token", str, "")
    token_file = r.get(w, "web", "admin_token_file", str, "")
    if token_file:
        try:
            token = resolve(token_file).read_text().strip()
        except OSError as e:
            r.error("web", "admin_token_file", f"cannot read {token_file}: {e.strerror}")
    token = os.environ.get("DNC_GATEWAY_ADMIN_TOKEN", token)
    return WebSection(listen=r.hostport(w, "web", "listen", _defaults(WebSection)["listen"]), admin_token=token,
                      dialer_tokens=_dialer_tokens(r, w, resolve))


def _ami(r: _Reader, data: Any, resolve: Resolve) -> AmiSection:
    """``[ami]`` (present: the AMI watcher runs)."""
    m = r.table(data, "ami", {"host", "port", "username", "secret", "secret_file", "ping_interval",
                              "ping_timeout", "reconnect_max", "trunk_prefix", "hangup_bypass",
                              "decision_grace"})
    secret = r.get(m, "ami", "secret", str, "")
    if sf := r.get(m, "ami", "secret_file", str, ""):
        try:
            secret = resolve(sf).read_text().strip()
        except OSError as e:
            r.error("ami", "secret_file", f"cannot read {sf}: {e.strerror}")
    M = _defaults(AmiSection)
    return AmiSection(
        host=r.get(m, "ami", "host", str, M["host"]),
        port=r.positive(m, "ami", "port", int, M["port"]),
        username=r.get(m, "ami", "username", str, M["username"]),
        secret=secret,
        ping_interval=r.positive(m, "ami", "ping_interval", float, M["ping_interval"]),
        ping_timeout=r.positive(m, "ami", "ping_timeout", float, M["ping_timeout"]),
        reconnect_max=r.positive(m, "ami", "reconnect_max", float, M["reconnect_max"]),
        trunk_prefix=r.get(m, "ami", "trunk_prefix", str, M["trunk_prefix"]),
        hangup_bypass=r.get(m, "ami", "hangup_bypass", bool, M["hangup_bypass"]),
        decision_grace=r.positive(m, "ami", "decision_grace", float, M["decision_grace"]),
    )


def _audit(r: _Reader, raw: Mapping[str, Any]) -> AuditSection:
    """``[audit]``: how the audit trail is written and kept."""
    au = r.table(raw.get("audit", {}), "audit", {"durable_allow", "retention_days", "group_commit_ms", "max_queue",
                                                        "commit_timeout"})
    U = _defaults(AuditSection)
    return AuditSection(
        durable_allow=r.get(au, "audit", "durable_allow", bool, U["durable_allow"]),
        retention_days=r.positive(au, "audit", "retention_days", int, U["retention_days"]),
        group_commit_ms=r.non_negative(au, "audit", "group_commit_ms", float, U["group_commit_ms"]),
        max_queue=r.positive(au, "audit", "max_queue", int, U["max_queue"]),
        commit_timeout=r.non_negative(au, "audit", "commit_timeout", float, U["commit_timeout"]),
    )


def _lists(r: _Reader, raw_lists: Mapping[str, Any], resolve: Resolve) -> dict[str, ListSpec]:
    """Every ``[lists.NAME]``; a list without a valid kind is reported and left out."""
    lists: dict[str, ListSpec] = {}
    for name, spec in raw_lists.items():
        if not isinstance(spec, dict):
            r.error("lists", name, "expected a table")
            continue
        if (read := _list(r, name, spec, resolve)) is not None:
            lists[name] = read
    return lists


def _list(r: _Reader, name: str, spec: Mapping[str, Any], resolve: Resolve) -> ListSpec | None:
    """One ``[lists.NAME]`` (None: no valid kind, reported; the campaigns naming it are checked against the
    others)."""
    t = f"lists.{name}"
    L = _defaults(ListSpec)
    r.table(spec, t, {"kind", "path", "format", "as_of", "max_age_days", "max_bad_share", "min_bad_lines", "url",
                      "max_shrink", "fetch_timeout", "sha256", "poll_seconds", "deltas", "country"})
    if "kind" not in spec:
        r.error(t, None, "missing key 'kind'")
    kind = r.choice(spec, t, "kind", ListKind, None)
    path_s = r.get(spec, t, "path", str, "")
    url = r.get(spec, t, "url", str, "")
    if not path_s and not url:
        r.error(t, None, "needs 'path' (or 'url')")
    as_of = r.get(spec, t, "as_of", (str, date), None)
    if isinstance(as_of, str):
        try:
            as_of = date.fromisoformat(as_of)
        except ValueError:
            r.error(t, "as_of", f"{as_of!r} is not a date (YYYY-MM-DD)")
            as_of = None
    share = r.get(spec, t, "max_bad_share", float, L["max_bad_share"])
    if not 0 <= share <= 1:
        r.error(t, "max_bad_share", "must be between 0 and 1")
        share = L["max_bad_share"]
    shrink = r.get(spec, t, "max_shrink", float, L["max_shrink"])
    if shrink is not None and not 0 <= shrink <= 1:
        r.error(t, "max_shrink", "must be between 0 and 1 (a share of the numbers in service, 0.05 = 5 %)")
        shrink = L["max_shrink"]
    fmt = r.choice(spec, t, "format", ListFormat, L["format"])
    country = r.get(spec, t, "country", str, None)
    if country is not None:
        country = country.strip().upper()
        if country not in phonenumbers.SUPPORTED_REGIONS:
            hint = " (the United Kingdom's ISO code is \"GB\")" if country == "UK" else \
                " (e.g. \"US\", \"CA\", \"GB\", \"FR\")"
            r.error(t, "country", f"{country!r} is not an ISO 3166 country code with a numbering plan{hint}")
            country = None
    if kind is None:
        return None
    return ListSpec(
        name=name, kind=kind, path=resolve(path_s) if path_s else None, format=fmt, as_of=as_of,
        max_age_days=r.positive(spec, t, "max_age_days", int, L["max_age_days"]), max_bad_share=share,
        max_shrink=shrink, min_bad_lines=r.positive(spec, t, "min_bad_lines", int, L["min_bad_lines"]), url=url,
        sha256=r.get(spec, t, "sha256", str, L["sha256"]),
        poll_seconds=r.get(spec, t, "poll_seconds", float, L["poll_seconds"]),
        fetch_timeout=r.positive(spec, t, "fetch_timeout", float, L["fetch_timeout"]),
        deltas=str(resolve(d)) if (d := r.get(spec, t, "deltas", str, "")) else "", country=country)


def _campaigns(r: _Reader, raw_campaigns: Mapping[str, Any], lists: Mapping[str, ListSpec],
               raw_lists: Mapping[str, Any]) -> dict[str, Campaign]:
    """Every ``[campaigns.NAME]``, checked against the lists (``raw_lists``: a list with errors of its own is
    reported there, not again by the campaigns that name it)."""
    campaigns: dict[str, Campaign] = {}
    for name, spec in raw_campaigns.items():
        if not isinstance(spec, dict):
            r.error("campaigns", name, "expected a table")
            continue
        campaigns[name] = _campaign(r, name, spec, lists, raw_lists)
    return campaigns


def _campaign(r: _Reader, name: str, spec: Mapping[str, Any], lists: Mapping[str, ListSpec],
              raw_lists: Mapping[str, Any]) -> Campaign:
    """One ``[campaigns.NAME]``."""
    t = f"campaigns.{name}"
    C = _defaults(Campaign)
    r.table(spec, t, {"regime", "category", "sector", "mode", "lists", "customers", "consent", "caller_id",
                      "automated", "owned_caller_ids", "max_attempts", "window_days", "cooldown_days",
                      "check_hours", "check_holidays", "check_frequency", "check_cooldown", "check_caller_id",
                      "check_staleness", "consent_max_age_days", "undated_consent", "consent_lifts_cooldown",
                      "jurisdiction", "unsupported_country", "industry_hours", "inquiries",
                      "undated_relationship"})
    names = r.strings(spec, t, "lists")
    for ln in names:
        if ln not in lists:
            if ln not in raw_lists:  # a list with errors of its own is reported there
                r.error(t, "lists", f"no list named {ln!r} (defined: {', '.join(sorted(lists)) or 'none'})")
        elif lists[ln].kind in (ListKind.CONSENT, ListKind.CUSTOMERS, ListKind.INQUIRIES):
            r.error(t, "lists", f"{ln!r} is a {lists[ln].kind} list: name it in '{lists[ln].kind}'"
                    if lists[ln].kind is not ListKind.CUSTOMERS else
                    f"{ln!r} is a customers list: name it in 'customers' (or 'inquiries')")
    # An inquiries list may be of kind "inquiries" or, as before it existed, "customers".
    for key, wants in (("customers", (ListKind.CUSTOMERS,)), ("consent", (ListKind.CONSENT,)),
                       ("inquiries", (ListKind.INQUIRIES, ListKind.CUSTOMERS))):
        ln = r.get(spec, t, key, str, "")
        if ln and (ln not in lists or lists[ln].kind not in wants) and (ln in lists or ln not in raw_lists):
            r.error(t, key, f"no {wants[0]} list named {ln!r}")
    caller_id = r.get(spec, t, "caller_id", str, "")
    jurisdiction = r.get(spec, t, "jurisdiction", str, C["jurisdiction"])
    if jurisdiction.lower() == AUTO_JURISDICTION:
        jurisdiction = AUTO_JURISDICTION
    elif jurisdiction.upper() in PACK_COUNTRIES:
        jurisdiction = jurisdiction.upper()
    else:
        hint = " (the United Kingdom's ISO code is \"GB\")" if jurisdiction.upper() == "UK" else ""
        r.error(t, "jurisdiction", f"{jurisdiction!r} is not \"auto\" nor a country with a jurisdiction pack "
                                   f"({', '.join(repr(p) for p in PACK_COUNTRIES)}){hint}")
        jurisdiction = C["jurisdiction"]
    return Campaign(
        name=name,
        regime=r.choice(spec, t, "regime", Regime, C["regime"]),
        jurisdiction=jurisdiction,
        unsupported_country=r.choice(spec, t, "unsupported_country", Unsupported, C["unsupported_country"]),
        industry_hours=r.get(spec, t, "industry_hours", bool, C["industry_hours"]),
        inquiries=r.get(spec, t, "inquiries", str, C["inquiries"]),
        category=r.choice(spec, t, "category", Category, C["category"]),
        sector=r.choice(spec, t, "sector", Sector, C["sector"]),
        mode=r.choice(spec, t, "mode", Mode, C["mode"]),
        lists=names,
        customers=r.get(spec, t, "customers", str, C["customers"]),
        consent=r.get(spec, t, "consent", str, C["consent"]),
        caller_id=caller_id,
        automated=r.get(spec, t, "automated", bool, C["automated"]),
        owned_caller_ids=r.strings(spec, t, "owned_caller_ids"),
        # Absent: the law of the call's jurisdiction pack (France: 4 in 30 days, 60 days after a refusal).
        max_attempts=r.positive(spec, t, "max_attempts", int, C["max_attempts"]),
        window_days=r.positive(spec, t, "window_days", int, C["window_days"]),
        cooldown_days=r.positive(spec, t, "cooldown_days", int, C["cooldown_days"]),
        consent_max_age_days=r.non_negative(spec, t, "consent_max_age_days", int, C["consent_max_age_days"]),
        undated_consent=r.choice(spec, t, "undated_consent", UndatedConsent, C["undated_consent"]),
        undated_relationship=r.choice(spec, t, "undated_relationship", UndatedRelationship,
                                      C["undated_relationship"]),
        consent_lifts_cooldown=r.get(spec, t, "consent_lifts_cooldown", bool, C["consent_lifts_cooldown"]),
        **{k: r.get(spec, t, k, bool, C[k]) for k in _SWITCHES},
    )


def _proof_retention(r: _Reader, gateway: GatewaySection, audit: AuditSection,
                     campaigns: Mapping[str, Campaign]) -> None:
    """Across tables: an audit trail must keep a decision as long as the consent proof it is part of."""
    owed = proof_days(gateway.consent_proof_years, campaigns.values())
    if gateway.audit is not None and audit.retention_days < owed:
        r.error("audit", "retention_days", f"{audit.retention_days} days is shorter than the consent proof "
                f"owed: the longest consent lifetime plus [gateway] consent_proof_years = "
                f"{gateway.consent_proof_years} ({owed} days): the decisions a consent allowed are part of its proof")


_SIP_ROUTE = re.compile(r"sips?:(?:[^@;?\s]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?(?:;[^\s?]*)?")


def _sip(r: _Reader, data: Any, campaigns: Mapping[str, Campaign]) -> SipSection:
    """``[sip]``, read on its own: the SIP redirect server's keys."""
    if not isinstance(data, dict):
        r.error("", "sip", "expected a table")
        return SipSection()
    s = r.table(data, "sip", {"listen", "route", "allow", "campaigns", "caller_id", "max_connections", "read_timeout",
                              "idle_timeout", "decision_timeout", "max_transactions", "max_message", "drain_timeout"})
    S = _defaults(SipSection)
    route = r.get(s, "sip", "route", str, "")
    if not route:
        r.error("sip", None, "needs 'route' (the carrier: \"sip:carrier@HOST:PORT\")")
    elif not _SIP_ROUTE.fullmatch(route):
        r.error("sip", "route", f"{route!r} is not a sip: URI (\"sip:carrier@HOST:PORT\")")
        route = ""
    allow = _networks(r, s, "sip", S["allow"])
    defaults: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for net, name in r.get(s, "sip", "campaigns", dict, {}).items():
        try:
            network = ipaddress.ip_network(net, strict=False)
        except ValueError:
            r.error("sip", "campaigns", f"{net!r} is not an address or network")
            continue
        if not isinstance(name, str) or name not in campaigns:
            r.error("sip", "campaigns", f"{net}: no campaign named {name!r} "
                    f"(defined: {', '.join(sorted(campaigns)) or 'none'})")
            continue
        defaults.append((network, name))
    defaults.sort(key=lambda item: -item[0].prefixlen)  # the most specific network first
    return SipSection(
        listen=r.hostport(s, "sip", "listen", S["listen"]), route=route, allow=allow,
        campaigns=tuple(defaults), caller_id=r.choice(s, "sip", "caller_id", SipCallerId, S["caller_id"]),
        max_connections=r.positive(s, "sip", "max_connections", int, S["max_connections"]),
        read_timeout=r.positive(s, "sip", "read_timeout", float, S["read_timeout"]),
        idle_timeout=r.positive(s, "sip", "idle_timeout", float, S["idle_timeout"]),
        decision_timeout=r.positive(s, "sip", "decision_timeout", float, S["decision_timeout"]),
        max_transactions=r.positive(s, "sip", "max_transactions", int, S["max_transactions"]),
        max_message=r.positive(s, "sip", "max_message", int, S["max_message"]),
        drain_timeout=r.positive(s, "sip", "drain_timeout", float, S["drain_timeout"]))


def _dialer_tokens(r: _Reader, w: Mapping[str, Any], resolve: Any) -> tuple[tuple[str, str], ...]:
    """``[web] dialer_tokens_file``: one dialer a line, ``NAME TOKEN`` (or a bare token, named by its line);
    blank lines and ``#`` comments skipped. A dialer's token opens ``POST /v1/decide`` and nothing else."""
    path = r.get(w, "web", "dialer_tokens_file", str, "")
    if not path:
        return ()
    try:
        text = resolve(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        r.error("web", "dialer_tokens_file", f"cannot read {path}: {getattr(e, 'strerror', None) or e}")
        return ()
    tokens: list[tuple[str, str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) > 2 or len(parts[-1]) < 16:
            r.error("web", "dialer_tokens_file", f"{path}:{n}: expected 'NAME TOKEN' with a token of 16 "
                    "characters or more")
            continue
        tokens.append((parts[0] if len(parts) == 2 else f"dialer{n}", parts[-1]))
    return tuple(tokens)
