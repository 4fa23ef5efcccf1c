"""The screener's fast path (per class, per bitmap partition) gives exactly ``Gateway.decide``'s decision."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from gateway.scrub import Screener
from gateway.service import Gateway
from tests.scrub.helpers import ARMISTICE, BLOCTEL_ERA, EVENING, LEGAL, MEMBERS

_SCREENERS: dict[tuple[int, str, datetime], Screener] = {}
settings_fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings_fast
@given(nsn=st.one_of(st.integers(100_000_000, 999_999_999),
                     st.sampled_from([int(m[1:]) for m in MEMBERS]),
                     st.sampled_from([p * 1_000_000 + 1 for p in (692, 693, 262, 263, 269, 639, 590, 690, 691, 594,
                                                                 694, 596, 696, 697, 700, 899, 897, 612, 162)])),
       at=st.sampled_from([LEGAL, EVENING, ARMISTICE, BLOCTEL_ERA]),
       campaign=st.sampled_from(["prospect", "legacy", "survey"]))
def test_fast_path_decisions_equal_gateway_decide(gateway: Gateway, nsn: int, at: datetime, campaign: str) -> None:
    key = (id(gateway), campaign, at)
    s = _SCREENERS.get(key) or _SCREENERS.setdefault(
        key, Screener(gateway.engine, gateway.holder.current, gateway.normaliser, campaign, at))
    number = gateway.normaliser.parse(f"0{nsn:09d}")
    truth = gateway.decide(number, campaign, None, at)
    def same(d: object) -> bool:
        return (d.verdict, d.reason, d.detail, d.would_block) == (  # type: ignore[attr-defined]
            truth.verdict, truth.reason, truth.detail, truth.would_block)
    if not number.is_valid:
        assert s.decide_nsn(nsn) is None
        assert s.classify(BitMap([nsn]))[nsn] == -1
        return
    assert same(s.decide_nsn(nsn))
    code = s.classify(BitMap([nsn]))[nsn] if nsn in s.hot else s.base_code
    assert same(s.decisions[code])
