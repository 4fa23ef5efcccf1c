"""The relationship-csv format: dated customers and inquiries lists, loaded, detected, and carried into the
snapshot's dates (with the side store's dated entries), without withdrawing any consent."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.numbers import Normaliser
from gateway.registry import relationship_csv
from gateway.registry.holder import RegistryHolder
from gateway.registry.loaders import detect_format, load_list
from gateway.registry.model import ListKind, ListSpec, RegistryError
from gateway.registry.report import LoadReport
from gateway.registry.sidestore import EntryKind, SideStore

NORM = Normaliser("US")
A, B, C = "+12125550101", "+12125550102", "+12125550103"


def key(n: str) -> int:
    return NORM.parse(n).key


def test_rows_dates_and_bad_lines() -> None:
    report = LoadReport("t")
    text = (f"# customers\nnumber;date;source\n{A};2025-08-15;order 1\n{A};2024-01-02;order 0\n{B};;legacy\n"
            f"abc;2025-01-01;x\n{C};someday;x\n{C};2026-03-01T10:00:00-05:00;call\n")
    f = relationship_csv.parse(text, NORM, report)
    assert set(f.members) == {key(A), key(B), key(C)}
    assert f.dates == {key(A): date(2025, 8, 15), key(C): date(2026, 3, 1)}  # the latest date counts
    assert f.undated == 1
    assert report.bad_count == 2 and [line for line, _ in report.bad] == [6, 7]


def test_a_header_without_date_is_refused() -> None:
    with pytest.raises(ValueError, match="'number' and 'date'"):
        relationship_csv.parse("number,source\n+12125550101,x\n", NORM, LoadReport("t"))


def test_detected_and_loaded_for_customers_and_inquiries_only(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"number,date,source\n{A},2025-08-15,order\n")
    assert detect_format(path, ListKind.CUSTOMERS) == "relationship-csv"
    lst, report = load_list(path, name="c", kind=ListKind.INQUIRIES, normaliser=NORM)
    assert report.relationships is not None and lst.meta.count == 1
    with pytest.raises(RegistryError, match="customers or inquiries"):
        load_list(path, name="c", kind=ListKind.OPPOSITION, normaliser=NORM, fmt="relationship-csv")


def test_the_holder_carries_file_and_entry_dates(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"number,date,source\n{A},2025-08-15,order\n{B},,legacy\n")
    side = tmp_path / "side.db"
    with SideStore(side) as store:
        store.add("customers", key(C), EntryKind.CONSENT, date(2026, 6, 1), "crm")
        store.add("customers", key(B), EntryKind.CONSENT, date(2026, 5, 1), "crm")
        store.add("customers", key(A), EntryKind.CONSENT, date(2026, 4, 1), "crm")
        store.revoke("customers", key(A), date(2026, 4, 2), "closed")
    specs = {"customers": ListSpec("customers", ListKind.CUSTOMERS, path)}
    holder = RegistryHolder(specs, NORM, side)
    assert holder.load_all().ok
    regs = holder.current
    assert regs.consent_date("customers", key(A)) == date(2025, 8, 15)  # the file's; the revoked entry adds none
    assert regs.consent_date("customers", key(B)) == date(2026, 5, 1)  # an entry dates an undated row
    assert regs.consent_date("customers", key(C)) == date(2026, 6, 1)
    assert key(C) in regs.get("customers").members  # type: ignore[union-attr]
    assert not regs.withdrawals  # ending a relationship withdraws no consent
