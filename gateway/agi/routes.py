"""What each FastAGI script name does: ``check``, ``refusal``, ``optout`` (DESIGN §4).

A route talks to the channel only through :class:`Channel` (set/get a
variable), so the same code runs over a socket, in tests, and in the
benchmark's panoramisk comparison.

Where the values come from, first found wins:

- number: ``agi_arg_1``, the query string's ``number``, the channel variable ``DNC_NUMBER``;
- campaign: ``agi_arg_2``, ``campaign``, ``DNC_CAMPAIGN``;
- presented caller ID: ``agi_arg_3``, ``caller_id``, ``DNC_CALLER_ID``; else the campaign's configured one.
  Not ``CALLERID(num)``: on an agent's outbound channel that is the agent's extension, not what the trunk
  presents, and reading it would make the caller-ID rule block every call.

Channel variables are read back (one ``GET VARIABLE`` each) only when the number is not an argument, so the
usual ``AGI(agi://gw/check,${EXTEN},spring)`` costs no extra round trip.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from gateway.agi.protocol import AgiRequest
from gateway.policy.decision import Verdict
from gateway.service import Gateway

log = logging.getLogger(__name__)

# Dialplan variables (DESIGN §7: stable names).
DNC_VERDICT = "DNC_VERDICT"
DNC_REASON = "DNC_REASON"
DNC_DECISION_ID = "DNC_DECISION_ID"
DNC_WOULD_BLOCK = "DNC_WOULD_BLOCK"
DNC_RESULT = "DNC_RESULT"  # refusal / optout: OK or INVALID
# Channel variables read back when the arguments are absent.
DNC_NUMBER = "DNC_NUMBER"
DNC_CAMPAIGN = "DNC_CAMPAIGN"
DNC_CALLER_ID = "DNC_CALLER_ID"

UNKNOWN_ROUTE = "unknown_route"  # DNC_REASON when the script name is not a route: the call is refused


class Route(enum.StrEnum):
    CHECK = "check"
    REFUSAL = "refusal"
    OPTOUT = "optout"


class Result(enum.StrEnum):
    OK = "OK"
    INVALID = "INVALID"


class Channel(Protocol):
    """The two things a route needs from a FastAGI session."""

    @property
    def request(self) -> AgiRequest: ...

    async def set(self, name: str, value: str) -> None: ...

    async def get(self, name: str) -> str | None: ...


RouteFn = Callable[[Channel, Gateway], Awaitable[None]]


async def _value(ch: Channel, arg: int, key: str, variable: str, read_vars: bool) -> str | None:
    req = ch.request
    v = req.arg(arg) or req.query.get(key, "")
    if v:
        return v
    if read_vars:
        got = await ch.get(variable)
        return got or None
    return None


async def check(ch: Channel, gateway: Gateway) -> None:
    req = ch.request
    in_args = bool(req.arg(1) or req.query.get("number"))
    number = await _value(ch, 1, "number", DNC_NUMBER, not in_args) or ""
    campaign = await _value(ch, 2, "campaign", DNC_CAMPAIGN, not in_args) or ""
    caller_id = await _value(ch, 3, "caller_id", DNC_CALLER_ID, not in_args)
    outcome = await gateway.check(number, campaign, caller_id, channel=req.channel, uniqueid=req.uniqueid,
                                  source="agi")
    d = outcome.decision
    # DNC_VERDICT goes last: a session cut short never leaves a verdict without its reason and id.
    await ch.set(DNC_REASON, str(d.reason) if d.reason is not None else "")
    await ch.set(DNC_DECISION_ID, outcome.decision_id)
    await ch.set(DNC_WOULD_BLOCK, "1" if d.would_block else "0")
    await ch.set(DNC_VERDICT, str(d.verdict))


async def refusal(ch: Channel, gateway: Gateway) -> None:
    number = await _value(ch, 1, "number", DNC_NUMBER, True) or ""
    n = await gateway.refusal(number)
    if n.key:
        log.info("refusal recorded for %s", n.masked)
    else:
        log.warning("refusal: not a valid number, nothing recorded")
    await ch.set(DNC_RESULT, str(Result.OK if n.key else Result.INVALID))


async def optout(ch: Channel, gateway: Gateway) -> None:
    number = await _value(ch, 1, "number", DNC_NUMBER, True) or ""
    n = await gateway.optout(number)
    if n.key:
        log.info("opt-out recorded for %s", n.masked)
    else:
        log.warning("opt-out: not a valid number, nothing recorded")
    await ch.set(DNC_RESULT, str(Result.OK if n.key else Result.INVALID))


async def unknown(ch: Channel, gateway: Gateway) -> None:
    """Fail closed: a typo in the dialplan's AGI URL must refuse calls, not let them all through."""
    await ch.set(DNC_REASON, UNKNOWN_ROUTE)
    await ch.set(DNC_DECISION_ID, "")
    await ch.set(DNC_WOULD_BLOCK, "1")
    await ch.set(DNC_VERDICT, str(Verdict.BLOCK))


ROUTES: Mapping[str, RouteFn] = {Route.CHECK: check, Route.REFUSAL: refusal, Route.OPTOUT: optout}


def route_for(script: str) -> RouteFn | None:
    """The route for ``agi_network_script`` (already without its query string); case and slashes ignored."""
    return ROUTES.get(script.strip("/").lower())
