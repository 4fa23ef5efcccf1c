"""Routes without sockets: which variables they read back, which they set, in which order."""

from __future__ import annotations

import pytest

from gateway.agi import routes
from gateway.agi.protocol import AgiConnection, AgiRequest
from gateway.callcheck import CallCheck
from gateway.service import Gateway
from tests.agi.fake_asterisk import env_block


def request(script: str = "check", args: tuple[str, ...] = ()) -> AgiRequest:
    conn = AgiConnection()
    conn.receive_data(env_block(script=script, args=args, channel="PJSIP/agent1-00000007", uniqueid="1795.7"))
    req = conn.next_event()
    assert isinstance(req, AgiRequest)
    return req


async def check(req: AgiRequest, values: routes.Values, gateway: Gateway, route: str = "check") -> routes.Sets:
    """routes.check (or another route's run), whether it answered at once or handed back a check or a coroutine."""
    handler = routes.ROUTES[route]
    res = handler.run(req, values, gateway)
    if isinstance(res, CallCheck):
        return handler.sets(await gateway.finish(res))
    return res if isinstance(res, tuple) else await res


@pytest.mark.parametrize(("script", "name"), [("check", "check"), ("CHECK", "check"), ("/optout/", "optout"),
                                              ("refusal", "refusal"), ("dryrun", "dryrun"), ("/DryRun", "dryrun")])
def test_route_for(script: str, name: str) -> None:
    h = routes.route_for(script)
    assert h is not None and h.name == name


def test_unknown_routes() -> None:
    assert routes.route_for("chek") is None and routes.route_for("") is None


def test_reads_only_when_the_number_is_not_given() -> None:
    handler = routes.ROUTES[routes.Route.CHECK]
    assert handler.reads(request(args=("0612000001", "legacy"))) == ()
    assert handler.reads(request(script="check?number=0612000001")) == ()
    assert handler.reads(request()) == (routes.DNC_NUMBER, routes.DNC_CAMPAIGN, routes.DNC_CALLER_ID)
    optout = routes.ROUTES[routes.Route.OPTOUT]
    assert optout.reads(request(script="optout")) == (routes.DNC_NUMBER,)
    assert optout.reads(request(script="optout", args=("0612000001",))) == ()


async def test_check_sets_four_variables_verdict_last(gateway: Gateway) -> None:
    sets = await check(request(args=("0612000001", "legacy")), {}, gateway)
    assert [n for n, _ in sets] == ["DNC_REASON", "DNC_DECISION_ID", "DNC_WOULD_BLOCK", "DNC_VERDICT"]
    values = dict(sets)
    assert values["DNC_VERDICT"] == "BLOCK" and values["DNC_REASON"] == "opposition_list"
    assert values["DNC_WOULD_BLOCK"] == "1" and len(values["DNC_DECISION_ID"]) == 22


async def test_check_values_precedence(gateway: Gateway) -> None:
    # Arguments beat the query string, which beats channel variables.
    sets = dict(await check(request(script="check?number=0612000200", args=("0612000001", "legacy")), {},
                                   gateway))
    assert sets["DNC_REASON"] == "opposition_list"
    sets = dict(await check(request(), {"DNC_NUMBER": "0612000200", "DNC_CAMPAIGN": "legacy",
                                               "DNC_CALLER_ID": None}, gateway))
    assert sets["DNC_REASON"] == "internal_dnc"
    sets = dict(await check(request(), {}, gateway))
    assert sets["DNC_REASON"] == "invalid_number" and sets["DNC_VERDICT"] == "BLOCK"


async def test_allow_has_an_empty_reason(gateway: Gateway) -> None:
    sets = dict(await check(request(args=("0612000050", "prospect")), {}, gateway))
    assert sets == {**sets, "DNC_VERDICT": "ALLOW", "DNC_REASON": "", "DNC_WOULD_BLOCK": "0"}


async def test_refusal_and_optout(gateway: Gateway) -> None:
    assert await routes.refusal(request("refusal", ("0612000020",)), {}, gateway) == (("DNC_RESULT", "OK"),)
    assert await routes.optout(request("optout"), {"DNC_NUMBER": "0612000021"}, gateway) == (("DNC_RESULT", "OK"),)
    assert await routes.optout(request("optout"), {}, gateway) == (("DNC_RESULT", "INVALID"),)
    sets = dict(await check(request(args=("0612000021", "legacy")), {}, gateway))
    assert sets["DNC_REASON"] == "internal_dnc"


def test_unknown_fails_closed(gateway: Gateway) -> None:
    sets = dict(routes.unknown(request("nope"), {}, gateway))
    assert sets["DNC_VERDICT"] == "BLOCK" and sets["DNC_REASON"] == routes.UNKNOWN_ROUTE


async def test_dryrun_decides_as_check_and_counts_nothing(gateway: Gateway) -> None:
    """Issue 15 #11: the route replays use; same arguments, reads and variables as check, no attempt counted."""
    dry = routes.ROUTES[routes.Route.DRYRUN]
    assert dry.reads(request("dryrun")) == routes.ROUTES[routes.Route.CHECK].reads(request("check"))
    blocked = await check(request("dryrun", ("0612000001", "legacy")), {}, gateway, "dryrun")
    assert [n for n, _ in blocked] == ["DNC_REASON", "DNC_DECISION_ID", "DNC_WOULD_BLOCK", "DNC_VERDICT"]
    assert dict(blocked)["DNC_REASON"] == "opposition_list"
    answers = [dict(await check(request("dryrun", ("0612000009", "prospect")), {}, gateway, "dryrun"))
               for _ in range(5)]
    assert [(a["DNC_VERDICT"], a["DNC_REASON"]) for a in answers] == [("ALLOW", "")] * 5
    assert len({a["DNC_DECISION_ID"] for a in answers}) == 5
    key = gateway.normaliser.parse("0612000009").key
    assert (await gateway.state.history("acme", key)).attempts == ()
    # ... and it still decides with the history check counted: the cap reached by real calls applies.
    real = [dict(await check(request(args=("0612000009", "prospect")), {}, gateway))["DNC_REASON"]
            for _ in range(5)]
    assert real == ["", "", "", "", "frequency_cap"]
    again = dict(await check(request("dryrun", ("0612000009", "prospect")), {}, gateway, "dryrun"))
    assert again["DNC_REASON"] == "frequency_cap"
