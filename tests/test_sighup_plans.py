"""SIGHUP through a running ``dnc-gateway serve`` rebuilds the engine's precomputed plans: a number added to a list
file blocks at the next call (a new list version, a new plan), and a campaign's lists changed in the config apply
at the next call (a new config, a new engine). The plans memoise per campaign what does not change per call, so a
plan outliving its snapshot or its config would keep deciding on the old one.

Hours, holidays and staleness are off for the campaign: the decisions do not depend on when the test runs."""

from __future__ import annotations

from tests.test_sighup import Served, served

__all__ = ["served"]  # the fixture, imported for pytest

SPRING = """
[campaigns.spring]
regime = "opposition"
lists = ["bloctel"]
caller_id = "0162000000"
check_hours = false
check_holidays = false
check_staleness = false
"""


async def test_a_reload_rebuilds_the_plans(served: Served) -> None:
    toml = served.config.read_text() + SPRING
    await served.reload(toml)
    assert await served.check("0612000001", "spring") == "BLOCK"  # on bloctel
    assert await served.check("0612000077", "spring") == "ALLOW"  # not on it: the plan is built and in use

    # A new version of the list (the same config): the plan compiled against the old one is not used.
    bloctel = served.config.parent / "bloctel.txt"
    bloctel.write_text(bloctel.read_text() + "0612000077\n0612000078\n")
    await served.reload(toml)
    assert await served.check("0612000078", "spring") == "BLOCK"

    # A new config (the same list version): the campaign no longer consults bloctel.
    await served.reload(toml.replace('lists = ["bloctel"]\ncaller_id = "0162000000"\ncheck_hours',
                                     'lists = []\ncaller_id = "0162000000"\ncheck_hours'))
    assert await served.check("0612000002", "spring") == "ALLOW"
