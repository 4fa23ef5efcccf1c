"""Side store: consent and opt-out entries keep date, source and revocation, for proof."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.numbers import Normaliser
from gateway.registry.sidestore import EntryKind, SideStore, consent_dates

FR = Normaliser("FR")
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def k(n: str) -> int:
    return FR.parse(n).key


def test_entries_revocation_and_consent_dates(tmp_path: Path) -> None:
    path = tmp_path / "side.db"
    with SideStore(path) as store:
        store.add("consent", k("0612000010"), EntryKind.CONSENT, date(2026, 9, 1), "web form", "form #12", now=NOW)
        store.add("consent", k("0612000011"), EntryKind.CONSENT, date(2026, 9, 2), "call 77", now=NOW)
        store.add("company-dnc", k("0612000010"), EntryKind.OPTOUT, date(2026, 10, 1), "agent 3", now=NOW)
        assert store.revoke("consent", k("0612000010"), date(2026, 10, 1), "refused on call 99") == 1
        store.add("consent", k("0612000010"), EntryKind.CONSENT, date(2026, 11, 2), "web form", now=NOW)
        entries = store.entries(k("0612000010"))
        assert [(e.list, e.kind, e.given_on, e.active) for e in entries] == [
            ("consent", EntryKind.CONSENT, date(2026, 9, 1), False),
            ("company-dnc", EntryKind.OPTOUT, date(2026, 10, 1), True),
            ("consent", EntryKind.CONSENT, date(2026, 11, 2), True)]
        assert entries[0].revoked_source == "refused on call 99" and entries[0].evidence == "form #12"
        assert entries[0].as_json()["number"] == "+33612000010"
        assert sorted(store.active_keys("consent", EntryKind.CONSENT)) == [k("0612000010"), k("0612000011")]
        with pytest.raises(ValueError, match="source"):
            store.add("consent", k("0612000012"), EntryKind.CONSENT, date(2026, 9, 1), " ")
    dates = consent_dates(path, ["consent", "missing"])
    assert dates == {"consent": {k("0612000010"): date(2026, 11, 2), k("0612000011"): date(2026, 9, 2)},
                     "missing": {}}
    assert consent_dates(tmp_path / "none.db", ["consent"]) == {}


def test_import_csv_reports_bad_rows(tmp_path: Path) -> None:
    text = ("numero;date;source;preuve\n0612000010;2026-09-01;web;f1\nabc;2026-09-01;web\n0612000011;hier;web\n"
            "0612000012;2026-09-03\n# comment\n\n+33 6 12 00 00 13;2026-09-04T10:00:00;call 5\n")
    with SideStore(tmp_path / "side.db") as store:
        report = store.import_csv(text, "consent", EntryKind.CONSENT, FR)
        assert (report.lines, report.imported) == (5, 2)
        assert report.bad == [(3, "not a phone number: 'abc'"), (4, "not a date: 'hier'"),
                              (5, "no source (give one per row, or --source)")]
        assert store.entries(k("0612000013"))[0].given_on == date(2026, 9, 4)
        again = store.import_csv("0612000012,2026-09-03\n", "consent", EntryKind.CONSENT, FR, default_source="paper")
        assert again.imported == 1 and store.entries(k("0612000012"))[0].source == "paper"
