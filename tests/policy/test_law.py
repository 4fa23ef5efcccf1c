"""The law command's summaries are the packs' data, and the docs' law pages are exactly its output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.policy import law
from gateway.policy.packs import PACKS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "law"


@pytest.mark.parametrize("country", list(PACKS))
def test_the_committed_law_page_is_the_commands_output(country: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["law", country, "--format", "md"]) == 0
    page = (DOCS / f"{country.lower()}.md").read_text(encoding="utf-8")
    assert capsys.readouterr().out == page, "docs/law is stale: run scripts/law-docs.sh"


def test_the_committed_index_is_the_commands_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["law", "--format", "md"]) == 0
    assert capsys.readouterr().out == (DOCS / "index.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("country", list(PACKS))
def test_each_summary_holds_the_packs_values(country: str) -> None:
    pack = PACKS[country]
    s = law.summary(pack)
    rules = {i.topic: i for i in s.items}
    assert law.hours_text(pack.hours) in rules["calling hours"].rule
    if pack.list_max_age is not None:
        assert f"at most {pack.list_max_age.days} days" in rules["national list age"].rule
        assert rules["national list age"].source == pack.list_max_age.cite.text
    if pack.refusal_dnc is not None:
        assert str(pack.refusal_dnc) in rules["do-not-call requests"].rule
    if pack.relationship is not None:
        r = pack.relationship
        assert f"{r.purchase_months} calendar months" in rules["business relationship"].rule
        assert f"{r.inquiry_months} after an inquiry" in rules["business relationship"].rule
    if pack.max_attempts is not None:
        assert f"at most {pack.max_attempts} calls" in rules["attempt cap"].rule
    assert {i.topic.rsplit(" (", 1)[-1].rstrip(")") for i in s.local} == set(pack.local_rules)
    for item in s.local:
        code = item.topic.rsplit(" (", 1)[-1].rstrip(")")
        assert item.verified == pack.local_rules[code].verified
        assert bool(item.setting) == (not item.verified)  # every unverified rule names its switch
    assert "emergency numbers" in rules


def test_the_us_page_reads_like_a_one_page_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["law", "us"]) == 0
    out = capsys.readouterr().out
    for fact in ("08:00-21:00", "47 CFR 64.1200(c)(1)", "31 days", "5 years", "18 calendar months",
                 "RCW 19.158.040(2)", "Fla. Stat. 501.616(6)(a)", "unverified_state_rules_off", "911", "448"):
        assert fact in out, fact


def test_the_json_format_and_a_bad_country(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["law", "CA", "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["country"] == "CA"
    assert any(r["topic"] == "do-not-call requests" and "3 years and 14 days" in r["rule"] for r in body["rules"])
    assert main(["law", "DE"]) == 2
    assert "no jurisdiction pack" in capsys.readouterr().err
