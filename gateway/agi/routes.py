"""What each FastAGI script name does: ``check``, ``dryrun``, ``refusal``, ``optout``, ``consent`` (DESIGN §4).

``consent`` records that the callee consented (asked to be called back, accepted on an inbound call):
``AGI(agi://gw/consent,${NUMBER},SOURCE,EVIDENCE)`` (or the query string's ``number``, ``source``, ``evidence``,
``wording_version``, ``channel``). Its proof (source, evidence reference, wording version, channel, the Asterisk
channel and uniqueid) goes to the side store and the consent to the state store: in force at once, on every
gateway sharing it. ``refusal`` ends consent, and the side store records it came "call" and on which channel.

``dryrun`` takes the same arguments and sets the same variables as ``check``, and decides exactly as it does
(with the number's history), but counts no attempt: its audit records say ``source = dry_run``. It is what
``dnc-gateway replay`` asks by default, so a replay against a production gateway neither fills the state
store with attempts nor makes the real calls that follow ``frequency_cap``.

A route does no I/O of its own. It says which channel variables it needs read
back (:attr:`Handler.reads`, often none), then turns the request and those
values into a value the server drives (:attr:`Handler.run`): the variables to set when the Gateway
answered at once; for ``check`` and ``dryrun`` the :class:`~gateway.callcheck.CallCheck` still waiting
(a remote state store, a durable audit record), which the server finishes through the Gateway and turns into
variables with :attr:`Handler.sets`; for the other routes a coroutine. The server does the ``GET VARIABLE`` /
``SET VARIABLE`` round trips with callbacks, without a coroutine waiting on each reply.

Where the values come from, first found wins:

- number: ``agi_arg_1``, the query string's ``number``, the channel variable ``DNC_NUMBER``;
- campaign: ``agi_arg_2``, ``campaign``, ``DNC_CAMPAIGN``;
- presented caller ID: ``agi_arg_3``, ``caller_id``, ``DNC_CALLER_ID``; else the campaign's configured one.
  Not ``CALLERID(num)``: on an agent's outbound channel that is the agent's extension, not what the trunk
  presents, and reading it would make the caller-ID rule block every call.

Channel variables are read back only when the number is not in the arguments or the query string, so
the usual ``AGI(agi://gw/check,${EXTEN},spring)`` costs no extra round trip.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, cast

from gateway.agi.protocol import AgiRequest, Sets
from gateway.audit.record import Source
from gateway.callcheck import CallCheck
from gateway.numbers import Number
from gateway.policy.decision import Verdict
from gateway.registry.sidestore import EntryOrigin
from gateway.service import Gateway, Outcome, ProofUnavailable
from gateway.state.model import StateUnavailable

log = logging.getLogger(__name__)

# Dialplan variables (DESIGN §7: stable names).
DNC_VERDICT = "DNC_VERDICT"
DNC_REASON = "DNC_REASON"
DNC_DECISION_ID = "DNC_DECISION_ID"
DNC_WOULD_BLOCK = "DNC_WOULD_BLOCK"
DNC_RESULT = "DNC_RESULT"  # refusal / optout / consent: OK, INVALID, or ERROR (consent not recorded)
# Channel variables read back when the arguments are absent.
DNC_NUMBER = "DNC_NUMBER"
DNC_CAMPAIGN = "DNC_CAMPAIGN"
DNC_CALLER_ID = "DNC_CALLER_ID"

UNKNOWN_ROUTE = "unknown_route"  # DNC_REASON when the script name is not a route: the call is refused

Values = Mapping[str, str | None]  # channel variables read back: None when unset
__all__ = ["ROUTES", "UNKNOWN", "Handler", "Ran", "Route", "Sets", "Values", "check_sets", "route_for"]


class Route(enum.StrEnum):
    CHECK = "check"
    DRYRUN = "dryrun"  # check's decision, audited as a dry run, no attempt counted
    REFUSAL = "refusal"
    OPTOUT = "optout"
    CONSENT = "consent"


class Result(enum.StrEnum):
    OK = "OK"
    INVALID = "INVALID"
    ERROR = "ERROR"  # consent: its proof or the state store could not record it, nothing is in force


# What a route's ``run`` returns: its variables at once, a check the server finishes (then :attr:`Handler.sets`),
# or a coroutine the server runs in a task.
Ran = Sets | CallCheck | Coroutine[Any, Any, Sets]


@dataclass(frozen=True, slots=True)
class Handler:
    name: str
    reads: Callable[[AgiRequest], tuple[str, ...]]
    run: Callable[[AgiRequest, Values, Gateway], Ran]
    sets: Callable[[Outcome], Sets]  # the variables of a check's Outcome (when ``run`` returned a CallCheck)


def _pick(req: AgiRequest, values: Values, arg: int, key: str, variable: str) -> str | None:
    return req.arg(arg) or req.query.get(key) or values.get(variable) or None


def _has_number(req: AgiRequest) -> bool:
    return bool(req.arg(1) or req.query.get("number"))


def check_reads(req: AgiRequest) -> tuple[str, ...]:
    return () if _has_number(req) else (DNC_NUMBER, DNC_CAMPAIGN, DNC_CALLER_ID)


def check(req: AgiRequest, values: Values, gateway: Gateway) -> Sets | CallCheck:
    """The verdict's variables, at once when the Gateway needs no waiting (see ``Gateway.check_now``)."""
    return _decide(req, values, gateway, Source.AGI, count=True)


def dryrun(req: AgiRequest, values: Values, gateway: Gateway) -> Sets | CallCheck:
    """:func:`check`'s decision and variables; audited as a dry run, and no attempt counted."""
    return _decide(req, values, gateway, Source.DRY_RUN, count=False)


def _decide(req: AgiRequest, values: Values, gateway: Gateway, source: Source, *, count: bool) -> Sets | CallCheck:
    res = gateway.check_now(
        _pick(req, values, 1, "number", DNC_NUMBER) or "", _pick(req, values, 2, "campaign", DNC_CAMPAIGN) or "",
        _pick(req, values, 3, "caller_id", DNC_CALLER_ID), channel=req.channel, uniqueid=req.uniqueid,
        source=source, count=count)
    return check_sets(res) if res.__class__ is Outcome else cast(CallCheck, res)


def check_sets(outcome: Outcome) -> Sets:
    d = outcome.decision
    # DNC_VERDICT goes last: a session cut short never leaves a verdict without its reason and id.
    return ((DNC_REASON, str(d.reason) if d.reason is not None else ""),
            (DNC_DECISION_ID, outcome.decision_id),
            (DNC_WOULD_BLOCK, "1" if d.would_block else "0"),
            (DNC_VERDICT, str(d.verdict)))


def number_reads(req: AgiRequest) -> tuple[str, ...]:
    return () if _has_number(req) else (DNC_NUMBER,)


async def _record(what: str, record: Callable[[str], Coroutine[Any, Any, Number]], req: AgiRequest,
                  values: Values) -> Sets:
    try:
        n = await record(_pick(req, values, 1, "number", DNC_NUMBER) or "")
    except StateUnavailable as e:  # not on disk: never answer OK for it (the dialplan can retry or say so)
        log.error("%s not recorded: %s", what, e)
        return ((DNC_RESULT, str(Result.ERROR)),)
    if n.key:
        log.info("%s recorded for %s", what, n.masked)
    else:
        log.warning("%s: not a valid number, nothing recorded", what)
    return ((DNC_RESULT, str(Result.OK if n.key else Result.INVALID)),)


async def refusal(req: AgiRequest, values: Values, gateway: Gateway) -> Sets:
    async def record(number: str) -> Number:
        return await gateway.refusal(number, channel="call", origin=EntryOrigin.CALL,
                                     detail=f"channel {req.channel}" if req.channel else "")

    return await _record("refusal", record, req, values)


async def optout(req: AgiRequest, values: Values, gateway: Gateway) -> Sets:
    return await _record("opt-out", gateway.optout, req, values)


async def consent(req: AgiRequest, values: Values, gateway: Gateway) -> Sets:
    """Record a consent given on this call, with its proof; DNC_RESULT says whether it is in force."""
    q = req.query
    extra = {k: v for k, v in (("agi_channel", req.channel), ("uniqueid", req.uniqueid)) if v}
    try:
        n = await gateway.consent(
            _pick(req, values, 1, "number", DNC_NUMBER) or "", source=req.arg(2) or q.get("source") or "call",
            evidence=req.arg(3) or q.get("evidence") or "", wording_version=q.get("wording_version") or "",
            channel=q.get("channel") or "phone", extra=extra, origin=EntryOrigin.CALL)
    except (ProofUnavailable, StateUnavailable, sqlite3.Error) as e:
        log.error("consent not recorded: %s", e)
        return ((DNC_RESULT, str(Result.ERROR)),)
    if n.key:
        log.info("consent recorded for %s", n.masked)
    else:
        log.warning("consent: not a valid number, nothing recorded")
    return ((DNC_RESULT, str(Result.OK if n.key else Result.INVALID)),)


UNKNOWN_SETS: Sets = ((DNC_REASON, UNKNOWN_ROUTE), (DNC_DECISION_ID, ""), (DNC_WOULD_BLOCK, "1"),
                      (DNC_VERDICT, str(Verdict.BLOCK)))


def unknown(req: AgiRequest, values: Values, gateway: Gateway) -> Sets:
    """Fail closed: a typo in the dialplan's AGI URL must refuse calls, not let them all through."""
    return UNKNOWN_SETS


ROUTES: Mapping[str, Handler] = {
    Route.CHECK: Handler(Route.CHECK, check_reads, check, check_sets),
    Route.DRYRUN: Handler(Route.DRYRUN, check_reads, dryrun, check_sets),
    Route.REFUSAL: Handler(Route.REFUSAL, number_reads, refusal, check_sets),
    Route.OPTOUT: Handler(Route.OPTOUT, number_reads, optout, check_sets),
    Route.CONSENT: Handler(Route.CONSENT, number_reads, consent, check_sets),
}
UNKNOWN = Handler(UNKNOWN_ROUTE, lambda req: (), unknown, check_sets)


def route_for(script: str) -> Handler | None:
    """The route for ``agi_network_script`` (already without its query string); case and slashes ignored."""
    h = ROUTES.get(script)
    return h if h is not None else ROUTES.get(script.strip("/").lower())


def handler_for(script: str) -> Handler:
    """:func:`route_for`, failing closed: a script that is no route gets :data:`UNKNOWN` (the session's router)."""
    h = ROUTES.get(script)
    if h is None:
        h = ROUTES.get(script.strip("/").lower())
    return h if h is not None else UNKNOWN
