"""consent-csv: consents with their proof, read in one step into the list and the side store (issue 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway.numbers import Normaliser
from gateway.registry.consent_csv import parse
from gateway.registry.holder import RegistryHolder
from gateway.registry.loaders import LoadReport, detect_format, load_list
from gateway.registry.model import ListKind, ListSpec, RegistryError
from gateway.registry.sidestore import EntryOrigin, SideStore

FR = Normaliser("FR")
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def k(n: str) -> int:
    return FR.parse(n).key


@pytest.mark.parametrize("sep", [",", ";"])
def test_any_column_order_either_separator_unknown_columns_kept(sep: str) -> None:
    text = sep.join(["channel", "Number", "collected_at", "crm_id", "source", "revoked_at", "evidence"]) + "\n"
    text += sep.join(["web", "0612000010", "2026-09-01T10:12:00+02:00", "A-17", "web form", "", "sha256:ab"]) + "\n"
    text += sep.join(["phone", "0612000011", "2026-08-20", "", "call", "2026-10-02", "rec-1"]) + "\n"
    text += sep.join(["", "0612000012", "", "", "", "", ""]) + "\n"
    report = LoadReport("t")
    f = parse(text, FR, report, now=NOW)
    assert (report.lines, report.accepted, report.bad_count) == (3, 3, 0)
    assert set(f.members) == {k("0612000010"), k("0612000012")}  # the revoked row is not in force
    assert f.dates == {k("0612000010"): datetime(2026, 9, 1, 10, 12, tzinfo=timezone(timedelta(hours=2)))}
    assert f.withdrawals == {k("0612000011"): date(2026, 10, 2)}
    assert f.undated == 1 and f.future == ()
    row = f.rows[0]
    assert (row.source, row.evidence, row.channel, row.extra) == ("web form", "sha256:ab", "web", {"crm_id": "A-17"})


def test_bad_rows_and_future_dates_are_reported() -> None:
    text = ("# consents exported 2026-11-24\nnumber;collected_at;source\n0612000010;2026-09-01;web\n"
            "abc;2026-09-01;web\n0612000011;yesterday;web\n0612000012;2026-09-01T10:00:00;web\n"
            "0612000013;2027-01-01;web\n0612000014;2026-09-01;web;extra field\n")
    report = LoadReport("t")
    f = parse(text, FR, report, now=NOW)
    assert [line for line, _ in report.bad] == [4, 5, 6, 8]
    assert "UTC offset" in report.bad[2][1]
    assert f.future == ((7, "2027-01-01"),)
    assert set(f.members) == {k("0612000010"), k("0612000013")}


def test_a_header_without_number_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("phone,collected_at\n0612000010,2026-09-01\n")
    with pytest.raises(RegistryError, match="no 'number' column"):
        load_list(path, name="c", kind=ListKind.CONSENT, normaliser=FR, fmt="consent-csv")


def test_auto_detects_it_and_the_holder_loads_list_and_side_store_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "consents.csv"
    path.write_text("number,collected_at,source,evidence,wording_version\n0612000010,2026-09-01,web,f1,v3\n"
                    "0612000011,,paper,,\n")
    assert detect_format(path, ListKind.CONSENT) == "consent-csv"
    side = tmp_path / "side.db"
    holder = RegistryHolder({"consent": ListSpec("consent", ListKind.CONSENT, path)}, FR, side)
    result = holder.load_all()
    assert result.ok and result.reports["consent"].format == "consent-csv"
    regs = holder.current
    assert k("0612000010") in regs.lists["consent"] and k("0612000011") in regs.lists["consent"]
    assert regs.consent_date("consent", k("0612000010")) == date(2026, 9, 1)
    assert regs.consent_date("consent", k("0612000011")) is None  # undated
    # The row is revoked in the next export: it leaves the list, its proof stays, and the revocation is a withdrawal.
    path.write_text("number,collected_at,source,evidence,wording_version,revoked_at,revoked_channel\n"
                    "0612000010,2026-09-01,web,f1,v3,2026-10-05,letter\n0612000011,,paper,,,,\n")
    assert holder.load_all().ok
    assert holder.load_all().ok  # a second load copies nothing twice
    assert k("0612000010") not in holder.current.lists["consent"]
    assert holder.current.withdrawals[k("0612000010")] == date(2026, 10, 5)
    with SideStore(side) as store:
        (e,) = store.entries(k("0612000010"))
        assert (e.origin, e.wording_version, e.revoked_on, e.revoked_channel) == (
            EntryOrigin.FILE, "v3", date(2026, 10, 5), "letter")
        assert e.as_json()["evidence"] == "f1"
        assert len(store.entries(k("0612000011"))) == 1
        assert store.entries(k("0612000011"))[0].given_on is None


def test_registry_build_reports_undated_and_future_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from gateway.cli import main

    path = tmp_path / "consents.csv"
    path.write_text("number;collected_at\n0612000010;2026-09-01\n0612000011;\n0612000012;2999-01-01\n")
    out = tmp_path / "c.snap"
    assert main(["registry", "build", str(path), "-o", str(out), "--kind", "consent", "--report-json",
                 str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "1 consents without a collection date" in text and "line 4: collected_at 2999-01-01 is in the future" in text
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["inputs"][0]["format"] == "consent-csv" and report["inputs"][0]["undated"] == 1
