"""Loaders: garbage, empty, duplicate and truncated input; every format; the iff property."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.numbers import Normaliser
from gateway.registry.loaders import detect_format, load_list, parse_prefix
from gateway.registry.model import ListKind, RegistryError

NORM = Normaliser("FR")


def load(path: Path, kind: ListKind = ListKind.OPPOSITION, **kw: object):  # type: ignore[no-untyped-def]
    return load_list(path, name="x", kind=kind, normaliser=NORM, **kw)  # type: ignore[arg-type]


def test_plain_text_with_every_spelling_duplicates_bom_crlf(tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_bytes(b"\xef\xbb\xbf# as_of: 2026-03-01\r\n0612345678\r\n+33612345678\r\n06 12 34 56 79\r\n\r\n"
                  b"0692123456\n+12125551234\n")
    lst, report = load(f)
    assert lst.meta.count == 4  # the duplicate spelling counts once
    assert report.accepted == 5 and report.bad_count == 0 and report.lines == 5
    assert lst.meta.as_of == date(2026, 3, 1)
    for n in ("0612345678", "0612345679", "+262692123456", "+12125551234"):
        assert NORM.parse(n).key in lst
    assert NORM.parse("0612345670").key not in lst


def test_bad_lines_are_counted_with_line_numbers_and_not_fatal(tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    lines = [b"0612345678"] * 97 + [b"hello", b"\xff\xfe\x00garbage", b"061234"]
    f.write_bytes(b"\n".join(lines) + b"\n")
    lst, report = load(f)
    assert lst.meta.count == 1 and lst.meta.bad_lines == 3
    assert [n for n, _ in report.bad] == [98, 99, 100]
    assert "line 98" in report.summary()


def test_too_many_bad_lines_refuse_the_file(tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_text("0612345678\nnot a number\nnor this\n")
    with pytest.raises(RegistryError, match=r"2 of 3 lines are not numbers .*line 2"):
        load(f, min_bad_lines=2)
    lst, _ = load(f, max_bad_share=0.9, min_bad_lines=2)
    assert lst.meta.count == 1


def test_one_bad_line_in_eight_is_noise_not_a_broken_export(tmp_path: Path) -> None:
    """Issue 15 #7: 12.5 % of a tiny file refused it whole (max_bad_share 5 %), with no bad line quoted."""
    f = tmp_path / "l.txt"
    f.write_text("".join(f"06120000{i:02d}\n" for i in range(7)) + "06 12 34 56 7B\n")
    lst, report = load(f)
    assert lst.meta.count == 7 and report.bad_count == 1
    assert "line 8: not a phone number '06 12 34 56 7B'" in report.summary()


def test_a_refusal_quotes_the_first_bad_lines_digits_masked(tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_text("".join(f"06120000{i:02d}\n" for i in range(90)) + "O612345678\n" * 10 + "x;y\n" * 2)
    with pytest.raises(RegistryError) as e:
        load(f)
    msg = str(e.value)
    assert "12 of 102 lines are not numbers" in msg and "from 10 bad lines" in msg
    assert "line 91: not a phone number 'O6123•••78'" in msg and "612345678" not in msg
    with pytest.raises(RegistryError):  # nothing good at all: refused whatever the count
        f.write_text("nothing\n")
        load(f)


def test_empty_opposition_list_is_refused_but_empty_dnc_is_fine(tmp_path: Path) -> None:
    f = tmp_path / "empty.txt"
    f.write_text("# nothing\n\n")
    with pytest.raises(RegistryError, match="holds no numbers"):
        load(f)
    lst, _ = load(f, ListKind.INTERNAL_DNC)
    assert lst.meta.count == 0


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no such file"):
        load(tmp_path / "nope.txt")
    f = tmp_path / "l.txt"
    f.write_text("0612345678\n")
    with pytest.raises(RegistryError, match="unknown format"):
        load(f, fmt="xml")


def test_bloctel_csv(tmp_path: Path) -> None:
    f = tmp_path / "bloctel.csv"
    f.write_text("Telephone;Identifiant\n0612345678;A1\n0612345679;A2\n;A3\n")
    assert detect_format(f, ListKind.OPPOSITION) == "bloctel-csv"
    lst, report = load(f, max_bad_share=0.5)
    assert lst.meta.count == 2 and report.bad_count == 1


def test_prefixes_are_ranges_not_numbers(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("0899\n+1900\n00338975\nnonsense\n")
    lst, report = load(f, ListKind.BLOCKED_PREFIXES, max_bad_share=0.5)
    assert report.accepted == 3 and report.bad_count == 1
    assert NORM.parse("0899123456").key in lst and NORM.parse("0898123456").key not in lst
    assert NORM.parse("0897512345").key in lst and NORM.parse("0897612345").key not in lst
    assert NORM.parse("+19005551234").key in lst and NORM.parse("+12125551234").key not in lst
    assert len(lst.members) <= 3 * 15  # a handful of intervals, not 10^10 numbers
    assert parse_prefix("abc", NORM) is None


@pytest.mark.parametrize(("prefix", "inside", "outside"), [
    ("0590", ["0590123456", "+590590123456", "+33590123456"], ["0690123456"]),  # Guadeloupe, not +33 590
    ("0692", ["0692123456"], ["0693123456", "0612345678"]),  # Réunion mobiles
    ("06", ["0612345678", "0692123456", "0639123456", "0690123456", "0694123456", "0696123456"],
     ["0712345678", "0262123456"]),  # every number dialled 06..., overseas mobiles included
    ("+33590", ["0590123456"], ["0594123456"]),  # +33 590... numbers are Guadeloupe's, as parse() reads them
])
def test_national_prefixes_read_like_numbers(tmp_path: Path, prefix: str, inside: list[str],
                                             outside: list[str]) -> None:
    """Issue 15 #2: a national overseas prefix was read as +33 and never matched its numbers."""
    f = tmp_path / "p.txt"
    f.write_text(prefix + "\n")
    lst, _ = load(f, ListKind.BLOCKED_PREFIXES)
    assert all(NORM.parse(n).key in lst for n in inside), inside
    assert not any(NORM.parse(n).key in lst for n in outside), outside


def test_truncated_file_last_line_cut(tmp_path: Path) -> None:
    """A file that ends in the middle of a line (no final newline, a last line that is no number) is a copy cut
    short: refused, not loaded with one bad line."""
    f = tmp_path / "l.txt"
    f.write_bytes(b"0612345678\n" * 100 + b"06123")
    with pytest.raises(RegistryError, match="ends in the middle of line 101"):
        load(f)
    f.write_bytes(b"0612345678\n" * 100 + b"06123\n")  # a whole bad line: counted, the file loads
    lst, report = load(f)
    assert lst.meta.count == 1 and report.bad_count == 1 and report.bad[0][0] == 101
    f.write_bytes(b"0612345678\n" * 100 + b"0612345679")  # a whole last line without its newline: an editor's
    lst, report = load(f)
    assert lst.meta.count == 2 and report.bad_count == 0


@settings(max_examples=30, deadline=None)
@given(st.sets(st.integers(min_value=100_000_000, max_value=799_999_999).filter(lambda n: str(n)[:2] != "70"),
               max_size=300),
       st.sets(st.integers(min_value=100_000_000, max_value=799_999_999), max_size=50))
def test_a_number_is_in_the_list_iff_it_was_in_the_input(tmp_path_factory: pytest.TempPathFactory,
                                                         inside: set[int], probes: set[int]) -> None:
    f = tmp_path_factory.mktemp("iff") / "l.txt"
    f.write_text("".join(f"0{n}\n" for n in inside))
    lst, _ = load(f, ListKind.INTERNAL_DNC)
    keys_in = {NORM.parse(f"0{n}").key for n in inside}
    assert lst.meta.count == len(keys_in)
    for n in inside | probes:
        k = NORM.parse(f"0{n}").key
        if k:
            assert (k in lst) == (k in keys_in)
