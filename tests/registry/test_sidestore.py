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


def test_entries_decide_on_top_of_the_lists(tmp_path: Path) -> None:
    """Issue 13: a consent, a revocation or an opt-out recorded in the side store decides, at once."""
    from gateway.registry.holder import RegistryHolder
    from gateway.registry.model import ListKind, ListSpec

    (tmp_path / "consent.txt").write_text("0612000010\n")
    (tmp_path / "dnc.txt").write_text("0612000200\n")
    specs = {"consent": ListSpec("consent", ListKind.CONSENT, tmp_path / "consent.txt"),
             "dnc": ListSpec("dnc", ListKind.INTERNAL_DNC, tmp_path / "dnc.txt")}
    side = tmp_path / "side.db"
    holder = RegistryHolder(specs, FR, side)
    holder.load_all()
    version = holder.current.version("consent")
    assert not holder.side_changed()
    with SideStore(side) as cli:  # another process: the CLI
        cli.add("consent", k("0612000011"), EntryKind.CONSENT, date(2026, 9, 1), "web form", now=NOW)
        cli.add("dnc", k("0612000012"), EntryKind.OPTOUT, date(2026, 9, 1), "letter", now=NOW)
        cli.revoke("consent", k("0612000010"), date(2026, 10, 1), "email", kind=EntryKind.CONSENT)  # nothing active
        cli.add("consent", k("0612000010"), EntryKind.CONSENT, date(2026, 9, 2), "call 4", now=NOW)
        assert cli.revoke("consent", k("0612000010"), date(2026, 10, 1), "email", kind=EntryKind.CONSENT) == 1
    assert holder.side_changed()
    holder.refresh_side()
    regs = holder.current
    assert k("0612000011") in regs.lists["consent"]
    assert regs.consent_date("consent", k("0612000011")) == date(2026, 9, 1)
    assert regs.version("consent") != version  # the audit's "lists consulted" shows the entries took part
    assert k("0612000012") in regs.lists["dnc"] and k("0612000200") in regs.lists["dnc"]
    assert regs.withdrawals == {k("0612000010"): date(2026, 10, 1)}
    assert k("0612000010") in regs.lists["consent"]  # still in its file: the withdrawal is what ends it
    assert not holder.side_changed()


def test_purge_after_three_years_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "side.db"
    with SideStore(path, proof_years=3, max_age_days=365) as store:
        store.add("consent", k("0612000010"), EntryKind.CONSENT, date(2026, 9, 1), "web", now=NOW)
        store.add("consent", k("0612000011"), EntryKind.CONSENT, date(2026, 9, 1), "web", now=NOW)
        store.revoke("consent", k("0612000011"), date(2026, 10, 1), "letter")
        store.add("consent", k("0612000012"), EntryKind.CONSENT, None, "paper", now=NOW)
        expiring, revoked, undated = (store.entries(k(n))[0] for n in ("0612000010", "0612000011", "0612000012"))
        assert store.purge_after(expiring) == date(2030, 9, 2)  # expired 2027-09-01, + 3 years
        assert store.purge_after(revoked) == date(2029, 10, 2)
        assert store.purge_after(undated) is None  # in force until someone revokes it
        # A clock years ahead of everything recorded purges nothing (it may have jumped)...
        assert store.purge(date(2032, 1, 1)) == 0
        # ...a store still written to in 2030 is believed.
        store.add("consent", k("0612000013"), EntryKind.CONSENT, date(2030, 9, 1), "web",
                  now=datetime(2030, 9, 2, tzinfo=UTC))
        assert store.purge(date(2029, 10, 1)) == 0
        assert store.purge(date(2029, 10, 2)) == 1 and store.entries(k("0612000011")) == []
        assert store.purge(date(2030, 9, 2)) == 1 and len(store.entries(k("0612000012"))) == 1


def test_a_store_written_before_issue_13_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE entries (id INTEGER PRIMARY KEY, list TEXT NOT NULL, key INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('consent', 'optout')), given_on TEXT NOT NULL, source TEXT NOT NULL,
        evidence TEXT NOT NULL DEFAULT '', recorded_at TEXT NOT NULL, revoked_on TEXT, revoked_source TEXT);
        INSERT INTO entries VALUES (7, 'consent', 33612000010, 'consent', '2026-09-01', 'web', 'f',
                                    '2026-09-01T10:00:00+00:00', NULL, NULL);""")
    db.commit()
    db.close()
    with SideStore(path) as store:
        (e,) = store.entries(k("0612000010"))
        assert (e.id, e.given_on, e.origin, e.extra) == (7, date(2026, 9, 1), "cli", {})
        store.add("consent", k("0612000011"), EntryKind.CONSENT, None, "paper")  # given_on may now be NULL
