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


def test_second_zones_are_real_zones_and_the_listed_area_codes_span_two() -> None:
    from zoneinfo import available_timezones
    zones = available_timezones()
    for ac, extra in nanp.SECOND_ZONES.items():
        assert set(extra) <= zones, ac
    for ac in ("850", "812", "219", "541", "208", "605", "701", "308", "785", "620", "270", "423", "931", "906",
               "928", "709"):
        number = NORM.parse(f"+1{ac}5550123")
        assert len(nanp.zones_of(number)) >= 2, ac
    assert "America/Goose_Bay" in nanp.zones_of(NORM.parse("+17095550123"))
    assert nanp.zones_of(NORM.parse("+16025550123")) == ("America/Phoenix",)


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
