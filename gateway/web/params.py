"""Validation of API input: query strings and JSON bodies -> typed values, or a ``BadRequest`` that says why.

Pure functions (no aiohttp): the message goes back verbatim in a 400 JSON body,
so it names the parameter and what would be accepted. A number that is
well-formed but not a valid number in the numbering plan is *not* a bad request
for ``/api/check``: the decision says ``invalid_number``, exactly as
``dnc-gateway check`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_NUMBER_LEN = 32
_NUMBER = re.compile(r"\+?[0-9 .()/\-]+")
_CAMPAIGN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_LIST = _CAMPAIGN


class BadRequest(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


@dataclass(frozen=True, slots=True)
class CheckQuery:
    number: str
    campaign: str
    at: datetime | None = None
    caller_id: str | None = None


@dataclass(frozen=True, slots=True)
class NumberBody:
    number: str
    at: datetime | None = None
    campaign: str | None = None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    number: str | None = None
    campaign: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000


def only(params: Mapping[str, Any], allowed: tuple[str, ...], where: str = "parameter") -> None:
    """Refuse unknown keys: a typo (``campain=``) must not silently widen a query or skip a check."""
    for key in params:
        if key not in allowed:
            raise BadRequest(f"unknown {where} {key!r} (expected {', '.join(allowed)})", key)


def number(value: object, field: str = "number", *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing {field}: give the number as dialled, e.g. 0612345678 or +33612345678", field)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string, e.g. \"0612345678\"", field)
    text = value.strip()
    if len(text) > MAX_NUMBER_LEN:
        raise BadRequest(f"{field} is too long ({len(text)} characters, at most {MAX_NUMBER_LEN})", field)
    if not _NUMBER.fullmatch(text) or not any(c.isdigit() for c in text):
        raise BadRequest(f"{field} is not a phone number: only digits, a leading +, spaces and . - ( ) / "
                         "are accepted", field)
    return text


def campaign(value: object, field: str = "campaign", *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing {field}: the campaign name from the config", field)
        return None
    if not isinstance(value, str) or not _CAMPAIGN.fullmatch(value):
        raise BadRequest(f"{field} is not a campaign name (letters, digits, _ . -, at most 64, "
                         "starting with a letter or digit)", field)
    return value


MIN_YEAR, MAX_YEAR = 1971, 9998  # what every conversion of a time on the call path can hold


def timestamp(value: object, field: str) -> datetime | None:
    """ISO-8601 with a UTC offset; a naive time is refused because the rules depend on the callee's zone."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be an ISO-8601 string, e.g. 2026-03-10T11:30:00+01:00", field)
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{field} {value!r} is not an ISO-8601 date and time "
                         "(e.g. 2026-03-10T11:30:00+01:00)", field) from None
    if at.tzinfo is None:
        raise BadRequest(f"{field} {value!r} has no UTC offset: add one (e.g. +01:00 or Z)", field)
    # The rules read the time in the callee's zone and as a UNIX time: a year at the edge of what datetime
    # holds ("0001-01-01T00:00:00+01:00") would overflow there, deep in the call path.
    try:
        at.astimezone(UTC).timestamp()
    except (OverflowError, ValueError, OSError):
        raise BadRequest(f"{field} {value!r} is out of range", field) from None
    if not MIN_YEAR <= at.year <= MAX_YEAR:
        raise BadRequest(f"{field} {value!r} is out of range (years {MIN_YEAR} to {MAX_YEAR})", field)
    return at


def check_query(q: Mapping[str, str]) -> CheckQuery:
    only(q, ("number", "campaign", "at", "caller_id"))
    num = number(q.get("number"))
    camp = campaign(q.get("campaign"))
    assert num is not None and camp is not None
    caller = number(q.get("caller_id"), "caller_id", required=False)
    return CheckQuery(num, camp, timestamp(q.get("at"), "at"), caller)


def json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise BadRequest("empty body: send a JSON object, e.g. {\"number\": \"0612345678\"}")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"body must be a JSON object, got {type(body).__name__}")
    return body


def number_body(raw: bytes) -> NumberBody:
    body = json_object(raw)
    only(body, ("number", "at", "campaign"), "field")
    num = number(body.get("number"))
    assert num is not None
    return NumberBody(num, timestamp(body.get("at"), "at"), campaign(body.get("campaign"), required=False))


@dataclass(frozen=True, slots=True)
class ConsentBody:
    """``POST /api/consents``: a consent and its proof."""

    number: str
    source: str
    evidence: str = ""
    wording_version: str = ""
    channel: str = ""
    at: datetime | None = None  # when it was collected (default: now)


MAX_TEXT = 500  # characters of a proof field: a reference or a hash, not the document itself


def _text(body: Mapping[str, Any], field: str, *, required: bool = False) -> str:
    value = body.get(field, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadRequest(f"{field} must be a string of at most {MAX_TEXT} characters", field)
    if required and not value.strip():
        raise BadRequest(f"{field} is required: where the consent was collected (web form, call, shop, partner, …)",
                         field)
    return value.strip()


def consent_body(raw: bytes) -> ConsentBody:
    body = json_object(raw)
    only(body, ("number", "source", "evidence", "wording_version", "channel", "at"), "field")
    num = number(body.get("number"))
    assert num is not None
    return ConsentBody(num, _text(body, "source", required=True), _text(body, "evidence"),
                       _text(body, "wording_version"), _text(body, "channel"), timestamp(body.get("at"), "at"))


def accept_body(raw: bytes, known: frozenset[str]) -> str:
    """``{"list": NAME}``: the list whose held-back version the operator accepts."""
    body = json_object(raw)
    only(body, ("list",), "field")
    name = body.get("list")
    if not isinstance(name, str) or not _LIST.fullmatch(name):
        raise BadRequest("list must be a list name", "list")
    if name not in known:
        raise BadRequest(f"no list named {name!r} (configured: {', '.join(sorted(known)) or 'none'})", "list")
    return name


def reload_body(raw: bytes, known: frozenset[str]) -> list[str] | None:
    """Optional ``{"lists": [names]}``; no body reloads every list."""
    if not raw.strip():
        return None
    body = json_object(raw)
    only(body, ("lists",), "field")
    names = body.get("lists")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) and _LIST.fullmatch(n) for n in names):
        raise BadRequest("lists must be a list of list names", "lists")
    for n in names:
        if n not in known:
            raise BadRequest(f"no list named {n!r} (configured: {', '.join(sorted(known)) or 'none'})", "lists")
    return list(names) or None


@dataclass(frozen=True, slots=True)
class ProofQuery:
    number: str
    since: datetime | None = None
    until: datetime | None = None
    format: str = "json"


PROOF_FORMATS = ("json", "html")


def proof_query(q: Mapping[str, str]) -> ProofQuery:
    only(q, ("number", "since", "until", "format"))
    num = number(q.get("number"))
    assert num is not None
    since = timestamp(q.get("since"), "since")
    until = timestamp(q.get("until"), "until")
    if since and until and until <= since:
        raise BadRequest("until is not after since", "until")
    fmt = q.get("format") or "json"
    if fmt not in PROOF_FORMATS:
        raise BadRequest(f"format must be one of {', '.join(PROOF_FORMATS)} (a PDF: dnc-gateway proof --format pdf)",
                         "format")
    return ProofQuery(num, since, until, fmt)


def audit_query(q: Mapping[str, str], max_limit: int = 10_000) -> AuditQuery:
    only(q, ("number", "campaign", "since", "until", "limit"))
    since = timestamp(q.get("since"), "since")
    until = timestamp(q.get("until"), "until")
    if since and until and until < since:
        raise BadRequest("until is before since", "until")
    limit = 1000
    if (raw := q.get("limit")) not in (None, ""):
        assert raw is not None
        if not (raw.isdigit() and raw.isascii()) or not 1 <= int(raw) <= max_limit:
            raise BadRequest(f"limit must be a whole number from 1 to {max_limit}", "limit")
        limit = int(raw)
    return AuditQuery(number(q.get("number"), required=False), campaign(q.get("campaign"), required=False),
                      since, until, limit)
