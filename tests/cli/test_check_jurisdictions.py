"""``dnc-gateway check`` on a config with a US, a Canadian, a UK and a French list and one campaign: each
country's law gives each call its verdict and reason, and ``--json`` says which law (``"jurisdiction"``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main

CONFIG = """
[gateway]
home_country = "FR"
timezone = "Europe/Paris"

[lists.us_dnc]
kind = "opposition"
path = "us.txt"
country = "US"
as_of = "2026-07-10"
max_age_days = 31

[lists.ca_dncl]
kind = "opposition"
path = "ca.txt"
country = "CA"
as_of = "2026-07-10"
max_age_days = 31

[lists.gb_tps]
kind = "opposition"
path = "gb.txt"
country = "GB"
as_of = "2026-07-10"
max_age_days = 28

[lists.bloctel]
kind = "opposition"
path = "bloctel.txt"
country = "FR"
as_of = "2026-07-10"
max_age_days = 30

[lists.company]
kind = "internal_dnc"
path = "company.txt"

[lists.consent]
kind = "consent"
path = "consent.txt"

[lists.customers]
kind = "customers"
path = "customers.txt"

[campaigns.outbound]
lists = ["us_dnc", "ca_dncl", "gb_tps", "bloctel", "company"]
consent = "consent"
customers = "customers"
caller_id = "+33162000000"
"""

LISTS = {
    "us.txt": ["+12125550100", "+12125550101", "+12125550102"],
    "ca.txt": ["+14165550100", "+14165550101"],
    "gb.txt": ["+442079460100", "+442079460101"],
    "bloctel.txt": ["+33612000001"],
    "company.txt": ["+12125550200", "+14165550200"],
    "consent.txt": ["+442079460101", "+12125550102"],
    "customers.txt": ["+12125550101", "+14165550101", "+442079460100"],
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    for name, numbers in LISTS.items():
        (tmp_path / name).write_text("\n".join(numbers) + "\n")
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)
    return path


TUESDAY_NOON_NY = "2026-07-14T12:00:00-04:00"


@pytest.mark.parametrize(
    ("number", "at", "jurisdiction", "verdict", "reason"),
    [
        # United States: the National DNC and its exemptions; 8:00-21:00, Florida to 20:00.
        ("+12125550100", TUESDAY_NOON_NY, "US", "BLOCK", "opposition_list"),
        ("+12125550101", TUESDAY_NOON_NY, "US", "ALLOW", "exempt_contract"),  # a customer
        ("+12125550102", TUESDAY_NOON_NY, "US", "ALLOW", None),  # written consent
        ("+12125550200", TUESDAY_NOON_NY, "US", "BLOCK", "internal_dnc"),
        ("+12125550123", "2026-07-12T20:30:00-04:00", "US", "ALLOW", None),  # a Sunday evening
        ("+13055550123", "2026-07-14T20:30:00-04:00", "US", "BLOCK", "outside_hours"),  # Miami: 20:00
        ("+19285550123", "2026-07-14T20:30:00-07:00", "US", "BLOCK", "outside_hours"),  # Navajo Nation: 21:30
        ("+16025550123", "2026-07-14T20:30:00-07:00", "US", "ALLOW", None),  # Phoenix
        # Canada: the DNCL; 9:00-21:30 weekdays, 10:00-18:00 weekends.
        ("+14165550100", TUESDAY_NOON_NY, "CA", "BLOCK", "opposition_list"),
        ("+14165550101", TUESDAY_NOON_NY, "CA", "ALLOW", "exempt_contract"),
        ("+14165550123", "2026-07-14T21:15:00-04:00", "CA", "ALLOW", None),
        ("+14165550123", "2026-07-11T18:30:00-04:00", "CA", "BLOCK", "outside_hours"),  # Saturday
        ("+17095550123", "2026-07-14T21:15:00-02:30", "CA", "ALLOW", None),  # St. John's
        ("+17095550123", "2026-07-14T21:45:00-02:30", "CA", "BLOCK", "outside_hours"),
        # United Kingdom: the TPS unless consent to this caller (a customer is not exempt); no hours.
        ("+442079460100", TUESDAY_NOON_NY, "GB", "BLOCK", "opposition_list"),
        ("+442079460101", TUESDAY_NOON_NY, "GB", "ALLOW", None),
        ("+442079460123", "2026-07-12T23:30:00+01:00", "GB", "ALLOW", None),
        # France: Bloctel, its hours and holidays.
        ("+33612000001", "2026-07-15T11:00:00+02:00", "FR", "BLOCK", "opposition_list"),
        ("0612000002", "2026-07-15T11:00:00+02:00", "FR", "ALLOW", None),
        ("0612000002", "2026-07-14T11:00:00+02:00", "FR", "BLOCK", "public_holiday"),
        ("0612000002", "2026-07-15T13:30:00+02:00", "FR", "BLOCK", "outside_hours"),
        # No pack: Germany.
        ("+4930123456", TUESDAY_NOON_NY, None, "BLOCK", "no_jurisdiction"),
    ],
)
def test_each_country_gets_its_own_law(capsys: pytest.CaptureFixture[str], config: Path, number: str, at: str,
                                       jurisdiction: str | None, verdict: str, reason: str | None) -> None:
    code = main(["--config", str(config), "check", number, "--campaign", "outbound", "--at", at, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (out["jurisdiction"], out["verdict"], out["reason"]) == (jurisdiction, verdict, reason), out["detail"]
    assert {"verdict", "reason", "would_block", "number", "rule", "lists", "basis", "jurisdiction"} <= set(out)
    # A call consults its own country's national list, no other's.
    national = {"us_dnc": "US", "ca_dncl": "CA", "gb_tps": "GB", "bloctel": "FR"}
    assert {national[n] for n in out["lists"] if n in national} <= {jurisdiction}


def test_a_stale_list_blocks_only_its_countrys_calls(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    config.write_text(CONFIG.replace('path = "us.txt"\ncountry = "US"\nas_of = "2026-07-10"',
                                     'path = "us.txt"\ncountry = "US"\nas_of = "2026-05-01"'))
    results = {}
    for number in ("+12125550123", "+14165550123", "+442079460123", "0612000002"):
        main(["--config", str(config), "check", number, "--campaign", "outbound", "--at",
              "2026-07-15T11:00:00-04:00", "--json"])
        results[number] = json.loads(capsys.readouterr().out)["reason"]
    assert results == {"+12125550123": "registry_stale", "+14165550123": None, "+442079460123": None,
                       "0612000002": None}
