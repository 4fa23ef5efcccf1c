"""The decision API for dialers (docs/sip.md): ``POST /v1/decide`` and ``POST /v1/decide/batch``.

A predictive dialer that places its calls itself (FreeSWITCH, a cloud dialer) asks here instead of over
FastAGI or SIP. ``/v1/decide`` is a call about to be placed: decided exactly as FastAGI's ``check`` decides
(``Gateway.check``: the attempt counted, the decision audited, an ALLOW answered only once its record is
durable, monitor mode, metrics), with ``source = "dialer"`` and the dialer's name as the audit record's
channel. ``/v1/decide/batch`` is a dialer filling its hopper: the same decisions, none counted or audited
(no call is placed yet), as ``GET /api/check``; the call itself is asked again with ``/v1/decide``.

Each dialer has its own token (``[web] dialer_tokens_file``), separate from the admin token: a dialer can
ask for decisions and nothing else, and the admin token opens no dialer route. 401 without a bearer token,
403 with a wrong one or when no dialer token is configured, as the admin routes answer.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.audit.record import Source
from gateway.web import params
from gateway.web.api import Handler, read_body
from gateway.web.auth import Access

if TYPE_CHECKING:
    from gateway.service import Gateway, Outcome

MAX_BATCH = 1000
DIALER_KEY: web.AppKey[Dialers] = web.AppKey("dialers")


@dataclass(frozen=True, slots=True)
class DecideBody:
    number: str
    campaign: str
    caller_id: str | None = None


class Dialers:
    """The dialers' tokens, by name."""

    def __init__(self, gateway: Gateway, tokens: Sequence[tuple[str, str]]) -> None:
        self.gateway = gateway
        self.tokens = tuple((name, token.encode("utf-8")) for name, token in tokens)

    def authorize(self, header: str | None) -> tuple[Access, str]:
        """(access, the dialer's name). Every token is compared, in constant time: no timing tells which
        token a guess came close to."""
        if not self.tokens:
            return Access.DISABLED, ""
        scheme, _, given = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return Access.MISSING, ""
        raw = given.strip().encode("utf-8")
        found = ""
        for name, token in self.tokens:
            if hmac.compare_digest(raw, token) and not found:
                found = name
        return (Access.GRANTED, found) if found else (Access.WRONG, "")


_MESSAGES = {
    Access.MISSING: (401, "dialer route: send 'Authorization: Bearer <dialer token>'"),
    Access.WRONG: (403, "dialer route: the token is not a dialer token"),
    Access.DISABLED: (403, "dialer routes are disabled: set [web] dialer_tokens_file in the config"),
}


def decide_body(body: Any, where: str = "") -> DecideBody:
    if not isinstance(body, dict):
        raise params.BadRequest(f"{where or 'body'} must be a JSON object {{\"number\", \"campaign\", \"caller_id\"?}}")
    params.only(body, ("number", "campaign", "caller_id"), "field")
    num = params.number(body.get("number"), f"{where}number")
    camp = params.campaign(body.get("campaign"), f"{where}campaign")
    assert num is not None and camp is not None
    return DecideBody(num, camp, params.number(body.get("caller_id"), f"{where}caller_id", required=False))


def batch_body(raw: bytes) -> list[DecideBody]:
    body = params.json_object(raw)
    params.only(body, ("calls",), "field")
    calls = body.get("calls")
    if not isinstance(calls, list) or not calls:
        raise params.BadRequest("calls must be a non-empty list of {\"number\", \"campaign\", \"caller_id\"?}",
                                "calls")
    if len(calls) > MAX_BATCH:
        raise params.BadRequest(f"at most {MAX_BATCH} calls a batch (got {len(calls)})", "calls")
    return [decide_body(c, f"calls[{i}].") for i, c in enumerate(calls)]


def _answer(outcome: Outcome, *, decision_id: bool) -> dict[str, Any]:
    out = outcome.decision.as_json()
    if decision_id:
        out["decision_id"] = outcome.decision_id
    return out


DialerHandler = Callable[[web.Request, str], Awaitable[web.Response]]


def dialer(handler: DialerHandler) -> Handler:
    """Wrap a handler so that it runs only with a dialer's token (given the dialer's name)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        access, name = request.app[DIALER_KEY].authorize(request.headers.get("Authorization"))
        if access is not Access.GRANTED:
            status, message = _MESSAGES[access]
            headers = {"WWW-Authenticate": 'Bearer realm="dnc-gateway dialer"'} if status == 401 else None
            return web.json_response({"error": message}, status=status, headers=headers)
        return await handler(request, name)

    guarded.__name__ = handler.__name__
    return guarded


async def decide(request: web.Request, name: str) -> web.Response:
    """``POST /v1/decide``: one call about to be placed; counted and audited (the ``check --json`` object and
    its ``decision_id``)."""
    d = request.app[DIALER_KEY]
    body = decide_body(params.json_object(await read_body(request)))
    outcome = await d.gateway.check(body.number, body.campaign, body.caller_id, channel=f"dialer/{name}",
                                    source=Source.DIALER)
    return web.json_response(_answer(outcome, decision_id=True))


async def decide_batch(request: web.Request, name: str) -> web.Response:
    """``POST /v1/decide/batch``: a hopper's numbers, decided without counting or auditing (in order)."""
    d = request.app[DIALER_KEY]
    calls = batch_body(await read_body(request))
    results = []
    for c in calls:
        # Source "api", as GET /api/check: a dry run, off the live page (it shows calls) and out of the audit.
        outcome = await d.gateway.check(c.number, c.campaign, c.caller_id, source=Source.API, record=False)
        results.append(_answer(outcome, decision_id=False))
    return web.json_response({"count": len(results), "results": results})


def register(app: web.Application, gateway: Gateway, tokens: Sequence[tuple[str, str]]) -> None:
    """Add the dialer routes to the web application."""
    app[DIALER_KEY] = Dialers(gateway, tokens)
    app.router.add_post("/v1/decide", dialer(decide))
    app.router.add_post("/v1/decide/batch", dialer(decide_batch))
