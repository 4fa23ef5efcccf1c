"""Through the CLI as a user runs it: a dated customers list (relationship-csv and ``registry entries add
--date``), a US national list with no max_age_days (the law's 31 days), ``config check``'s legal ages and
warnings, and a revoked consent-file row (``no_consent.withdrawn``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main

CONFIG = """
[gateway]
home_country = "US"
timezone = "America/New_York"
state = "memory://"
audit = "audit.db"

[lists.us_dnc]
kind = "opposition"
path = "us.txt"
country = "US"
as_of = "2026-07-10"

[lists.customers]
kind = "customers"
path = "customers.csv"
format = "relationship-csv"

[lists.inquiries]
kind = "inquiries"
path = "inquiries.txt"

[lists.consent]
kind = "consent"
path = "consent.csv"

[campaigns.sales]
lists = ["us_dnc"]
customers = "customers"
inquiries = "inquiries"
caller_id = "+12025550100"

[campaigns.strict]
lists = ["us_dnc"]
customers = "customers"
inquiries = "inquiries"
undated_relationship = "block"
caller_id = "+12025550100"

[campaigns.fr]
jurisdiction = "FR"
unsupported_country = "allow"
regime = "consent"
consent = "consent"
caller_id = "+33162000000"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "us.txt").write_text("+12125550101\n+12125550102\n+12125550103\n")
    (tmp_path / "customers.csv").write_text("number,date,source\n+12125550101,2025-08-15,order 1\n"
                                            "+12125550102,,legacy import\n")
    (tmp_path / "inquiries.txt").write_text("+12125550103\n")
    (tmp_path / "consent.csv").write_text("number,collected_at,source,revoked_at\n"
                                          "+12125550104,2026-01-10,form,2026-03-02\n")
    path = tmp_path / "gw.toml"
    path.write_text(CONFIG)
    return path


def check(config: Path, number: str, at: str, campaign: str = "sales",
          capsys: pytest.CaptureFixture[str] | None = None) -> dict[str, object]:
    assert capsys is not None
    assert main(["-c", str(config), "check", number, "--campaign", campaign, "--at", at, "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_the_relationship_window_in_calendar_months(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = check(config, "+12125550101", "2026-07-20T12:00:00-04:00", capsys=capsys)
    assert (d["verdict"], d["reason"]) == ("ALLOW", "exempt_contract")
    assert "exempt until 2027-02-15" in str(d["detail"])


def test_a_us_list_without_max_age_gets_the_laws_31_days(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = check(config, "+12125550199", "2026-08-11T12:00:00-04:00", capsys=capsys)  # 32 days after 10 Jul
    assert (d["verdict"], d["reason"]) == ("BLOCK", "registry_stale")
    assert "64.1200(c)(2)(i)(D)" in str(d["detail"])
    d = check(config, "+12125550199", "2026-08-10T12:00:00-04:00", capsys=capsys)
    assert (d["verdict"], d["reason"]) == ("ALLOW", None)


def test_undated_rows_follow_undated_relationship(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = check(config, "+12125550102", "2026-07-20T12:00:00-04:00", capsys=capsys)
    assert (d["verdict"], d["reason"], d["basis"]) == ("ALLOW", "exempt_contract", "exempt_contract_undated")
    assert d["warnings"]
    d = check(config, "+12125550102", "2026-07-20T12:00:00-04:00", "strict", capsys=capsys)
    assert (d["verdict"], d["reason"]) == ("BLOCK", "opposition_list")
    # A plain inquiries list has no dates: blocked under "strict", until an entry dates it.
    d = check(config, "+12125550103", "2026-07-20T12:00:00-04:00", "strict", capsys=capsys)
    assert (d["verdict"], d["reason"]) == ("BLOCK", "opposition_list")
    assert main(["-c", str(config), "registry", "entries", "add", "+12125550103", "--list", "inquiries",
                 "--date", "2026-04-20", "--source", "web form"]) == 0
    assert "business relationship" in capsys.readouterr().out
    d = check(config, "+12125550103", "2026-07-20T12:00:00-04:00", "strict", capsys=capsys)
    assert (d["verdict"], d["reason"]) == ("ALLOW", "exempt_contract")
    d = check(config, "+12125550103", "2026-07-21T12:00:00-04:00", "strict", capsys=capsys)  # 3 months + 1 day
    assert (d["verdict"], d["reason"]) == ("BLOCK", "opposition_list")


def test_a_revoked_consent_file_row_is_no_consent_withdrawn(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for at in ("2026-03-02T12:00:00-05:00", "2027-05-01T12:00:00-04:00"):
        d = check(config, "+12125550104", at, "fr", capsys=capsys)
        assert (d["reason"], d["rule"]) == ("no_consent", "no_consent.withdrawn"), d
        assert "2026-03-02" in str(d["detail"])


def test_config_check_shows_the_legal_ages_and_warns_for_undated_lists(config: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(config), "--at", "2026-07-20T12:00:00Z", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lists"]["us_dnc"]["max_age_days"] == 31
    assert "64.1200" in report["lists"]["us_dnc"]["legal_max_age"]["source"]
    assert any("inquiries" in w and "no dates" in w for w in report["warnings"])
    assert any("customers" in w and "1 number without a date" in w for w in report["warnings"])
    assert main(["config", "check", str(config), "--at", "2026-07-20T12:00:00Z"]) == 0
    assert "at most 31 days old (the law's maximum" in capsys.readouterr().out
    config.write_text(CONFIG.replace('as_of = "2026-07-10"', 'as_of = "2026-07-10"\nmax_age_days = 45', 1))
    assert main(["config", "check", str(config), "--at", "2026-07-20T12:00:00Z"]) == 2
    out = capsys.readouterr().out
    assert "max_age_days = 45 is longer than the law allows" in out and "64.1200(c)(2)(i)(D)" in out


def test_the_dossier_says_a_call_rested_on_an_undated_relationship(config: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(config), "check", "+12125550102", "--campaign", "sales", "--record", "--force",
                 "--at", "2026-07-20T12:00:00-04:00", "--json"]) == 0
    capsys.readouterr()
    assert main(["-c", str(config), "proof", "+12125550102", "--since", "2026-07-01"]) == 0
    out = capsys.readouterr().out
    assert "on an undated business relationship (undated_relationship = allow)" in out
    assert "relation commerciale non datée" in out


def test_config_check_on_the_state_rule_switches(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text(CONFIG.replace('state = "memory://"', 'state = "memory://"\nunverified_state_rules_off = '
                                     '["LA", "FL"]\nunverified_state_rules = ["UT"]', 1))
    assert main(["config", "check", str(config), "--at", "2026-07-20T12:00:00Z"]) == 2
    out = capsys.readouterr().out
    assert "unverified_state_rules_off: FL has no reported rule" in out
    assert "now applies by default" in out
