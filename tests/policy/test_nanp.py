"""The area-code tables: every geographic US and Canadian area code has its state or province, the table agrees
with libphonenumber's geocoder, and the second zones are real zones."""

from __future__ import annotations

from collections.abc import Mapping

import holidays
import phonenumbers
import pytest
from phonenumbers.geodata import GEOCODE_DATA

from gateway.policy import nanp
from gateway.policy.packs import PACKS
from tests.policy.world import NORM

# The geocoder's names the holidays library's aliases do not spell alike.
_NAMES = {"Washington D.C.": "DC", "Washington State": "WA", "British Colombia": "BC",
          "Newfoundland and Labrador": "NL", "Nova Scotia/Prince Edward Island": "NS",
          "Northwest Territories/Nunavut/Yukon": "NT"}
_ALIASES = {**holidays.US.subdivisions_aliases, **holidays.CA.subdivisions_aliases}  # type: ignore[attr-defined]


def _geographic(region: str) -> dict[str, str]:
    """The geographic area codes phonenumbers knows for a region, with its geocoder's name for each ("": none)."""
    found = {}
    for ac in range(200, 1000):
        for sub in ("2345678", "5550123", "3456789", "7654321", "2001234", "9876543"):
            n = phonenumbers.parse(f"+1{ac}{sub}")
            if phonenumbers.is_valid_number(n):
                if phonenumbers.region_code_for_number(n) == region and phonenumbers.number_type(n) in (
                        phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
                        phonenumbers.PhoneNumberType.MOBILE):
                    found[str(ac)] = GEOCODE_DATA.get(f"1{ac}", {}).get("en", "")
                break
    return found


@pytest.mark.parametrize(("region", "table"), [("US", nanp.STATES), ("CA", nanp.PROVINCES)])
def test_every_geographic_area_code_has_its_state_or_province(region: str, table: Mapping[str, str]) -> None:
    known = _geographic(region)
    assert len(known) > (300 if region == "US" else 40)
    missing = sorted(set(known) - set(table))
    assert not missing, f"area codes without a state/province (a new overlay? add it to nanp.py): {missing}"
    for ac, name in known.items():
        if not name:
            continue
        code = _NAMES.get(name) or _ALIASES.get(name) or name.rsplit(", ", 1)[-1]  # "Miami, FL"
        assert table[ac] == code, (ac, name)


def test_table_zones_are_real_zones_and_the_listed_area_codes_span_two() -> None:
    from zoneinfo import available_timezones
    zones = available_timezones()
    for ac, listed in nanp.ZONES.items():
        assert set(listed) <= zones, ac
    for ac in ("850", "448", "812", "930", "219", "541", "458", "208", "986", "605", "701", "308", "785", "620",
               "270", "364", "423", "931", "906", "928", "709", "879"):
        number = NORM.parse(f"+1{ac}5550123")
        assert len({_profile(z) for z in nanp.zones_of(number)}) >= 2, ac
    assert "America/Goose_Bay" in nanp.zones_of(NORM.parse("+17095550123"))
    assert nanp.zones_of(NORM.parse("+16025550123")) == ("America/Phoenix",)


def _profile(zone: str) -> tuple[object, object]:
    """A zone's UTC offsets in January and July: zones alike in both keep the same clock all year."""
    from datetime import datetime
    from zoneinfo import ZoneInfo
    zi = ZoneInfo(zone)
    return (datetime(2026, 1, 15, 12, tzinfo=zi).utcoffset(), datetime(2026, 7, 15, 12, tzinfo=zi).utcoffset())


def _final(ac: str) -> tuple[str, ...]:
    return nanp.zones_of(NORM.parse(f"+1{ac}5550123"))


@pytest.mark.parametrize(("region", "table"), [("US", nanp.STATES), ("CA", nanp.PROVINCES)])
def test_every_area_code_swept_against_the_zones_table(region: str, table: Mapping[str, str]) -> None:
    """Every geographic NANP area code: an overlay has exactly its parent's zones; a code the table knows has the
    table's zones and none of phonenumbers' beside them; and a code the table does not know keeps phonenumbers'
    zones only where each of them keeps a clock some other code of its state or province keeps too (a zone
    alone in its state, as phonenumbers gives 879 Puerto Rico's or 474 Winnipeg's, means the table must say)."""
    known = _geographic(region)
    for overlay, parent in nanp.OVERLAYS.items():
        assert table.get(overlay) == table.get(parent), (overlay, parent)  # the same state or province
        assert _final(overlay) == _final(parent), (overlay, parent)
    for ac in known:
        if ac in nanp.ZONES:
            assert set(_final(ac)) == set(nanp.ZONES[ac]), ac
            continue
        state = table[ac]
        siblings = {_profile(z) for other, st in table.items() if st == state and other != ac for z in _final(other)}
        if not siblings:  # the only code of its state or province (Hawaii's 808, Maine's 207)
            continue
        odd = [z for z in _final(ac) if _profile(z) not in siblings]
        assert not odd, f"{ac} ({state}): phonenumbers gives {odd}, kept by no other code of {state}: add {ac} " \
                        f"to nanp.ZONES or nanp.OVERLAYS"


def test_an_overlay_is_judged_in_its_parents_zones() -> None:
    """448 overlays 850 (Central and Eastern): 07:30 in Pensacola is too early even though it is 08:30 in
    Tallahassee; 879 overlays 709: phonenumbers' Puerto Rico zone is replaced, so a legal summer morning in St.
    John's and Labrador is not blocked by an Atlantic-standard clock nobody in Newfoundland keeps."""
    assert set(_final("448")) == {"America/Chicago", "America/New_York"}
    assert "America/Puerto_Rico" not in _final("879")
    assert set(_final("879")) == set(_final("709"))
    assert set(_final("474")) == set(_final("306"))


def test_state_of_and_province_of() -> None:
    assert nanp.state_of(NORM.parse("+13055550123")) == "FL"
    assert nanp.state_of(NORM.parse("+17875550123")) == "PR"
    assert nanp.state_of(NORM.parse("+14165550123")) == ""
    assert nanp.province_of(NORM.parse("+14165550123")) == "ON"
    assert nanp.area_code(NORM.parse("+33612345678")) == ""


def test_every_state_rule_is_of_a_state_with_area_codes() -> None:
    for pack in PACKS.values():
        for state in pack.local_rules:
            assert state in set(nanp.STATES.values()), state
