"""National registry files (FTC National DNC, CRTC DNCL, TPS/CTPS): read as published, keys as the normaliser's.

The samples under ``samples/`` were written for these tests (fictitious 555-01XX NANP numbers, Ofcom drama
ranges where phonenumbers accepts them); none comes from a real registry.
"""

from __future__ import annotations

import random
import shutil
from datetime import date
from pathlib import Path

import pytest

from gateway.config import parse
from gateway.numbers import Normaliser
from gateway.registry import snapshot
from gateway.registry.deltas import load_with_deltas, read_delta
from gateway.registry.loaders import FORMATS, blocks_of_lines, detect_format, load_list
from gateway.registry.model import ListFormat, ListKind, ListSpec, RegistryError
from gateway.registry.national import LAYOUTS, change_record, detect, nanp_number, parse_national, uk_number
from gateway.registry.report import LoadReport

SAMPLES = Path(__file__).parent / "samples"
FR, US, GB = Normaliser("FR"), Normaliser("US"), Normaliser("GB")


def keys(*e164: str) -> set[int]:
    """The normaliser's keys (a French gateway: national files are read by their own plan, whatever the home)."""
    out = {FR.parse(n).key for n in e164}
    assert 0 not in out, "a sample number the normaliser finds invalid"
    return out


def load(name: str, fmt: str = "auto", normaliser: Normaliser = FR, **kw: object) -> tuple[set[int], LoadReport]:
    lst, report = load_list(SAMPLES / name, name=Path(name).stem, kind=ListKind.OPPOSITION, normaliser=normaliser,
                            fmt=fmt, **kw)  # type: ignore[arg-type]
    return set(lst.members), report


def test_the_formats_are_config_values() -> None:
    assert {"ftc-dnc", "dncl", "tps", "ctps"} <= set(FORMATS)
    assert {f.value for f in ListFormat} == set(FORMATS)


def test_ftc_full_list_good_and_bad_lines_and_as_of() -> None:
    got, report = load("ftc-full.txt")
    assert report.format == "ftc-dnc"  # detected
    assert got == keys("+12015550100", "+12015550101", "+12125550123", "+12125550199", "+13055550142")
    assert (report.lines, report.accepted, report.bad_count) == (7, 5, 2)
    assert [line for line, _ in report.bad] == [7, 9]  # the file's own line numbers (comments count)
    assert report.bad[0][1] == "not a NANP number"
    assert report.as_of == date(2026, 11, 1)


def test_dncl_full_list_crlf_and_detected_by_its_area_codes() -> None:
    got, report = load("dncl-full.txt")
    assert report.format == "dncl"
    assert got == keys("+14165550123", "+14165550199", "+16045550100", "+17095550101")
    assert report.bad_count == 0


@pytest.mark.parametrize("name", ["tps-spaces.txt", "tps-nospaces.txt"])
def test_tps_both_layouts(name: str) -> None:
    got, report = load(name)
    assert report.format == "tps"
    expected = keys("+442079460123", "+441134960000", "+441614960000", "+447400000001")
    if name == "tps-spaces.txt":
        expected |= keys("+447911000001", "+44169773000")  # a 9-digit national significant number too
        assert report.bad_count == 1 and report.bad[0][0] == 8
    assert got == expected


def test_ctps_reads_like_tps() -> None:
    assert load("tps-nospaces.txt", "ctps")[0] == load("tps-nospaces.txt", "tps")[0]


@pytest.mark.parametrize(("text", "e164"), [
    (b"2125550123", "+12125550123"), (b"212,5550123", None), (b"12125550123", "+12125550123"),
    (b"+1 (212) 555-0123", "+12125550123"), (b"1-212-555-0123", "+12125550123"), (b"0012125550123", "+12125550123"),
    (b'"4165550123"', "+14165550123"), (b"212.555.0123", "+12125550123"),
])
def test_nanp_spellings_give_the_normalisers_key(text: bytes, e164: str | None) -> None:
    key = LAYOUTS["ftc-dnc"].line(text) if e164 is None else nanp_number(text)
    assert key == FR.parse("+12125550123" if e164 is None else e164).key
    assert key == US.parse(text.decode().strip('"')).key or e164 is None


@pytest.mark.parametrize("text", [b"1125550123", b"2120550123", b"212555012", b"212555012345", b"+33612345678",
                                  b"21255501x3", b"", b"+2125550123", b"22125550123"])
def test_nanp_shape_is_checked(text: bytes) -> None:
    assert nanp_number(text) is None


@pytest.mark.parametrize(("text", "e164"), [
    (b"02079460123", "+442079460123"), (b"0207 9460123", "+442079460123"), (b"2079460123", "+442079460123"),
    (b"+44 20 7946 0123", "+442079460123"), (b"+44 (0)20 7946 0123", "+442079460123"),
    (b"00442079460123", "+442079460123"), (b"442079460123", "+442079460123"), (b"0169773000", "+44169773000"),
    (b"07400 000001", "+447400000001"),
])
def test_uk_spellings_give_the_normalisers_key(text: bytes, e164: str) -> None:
    assert uk_number(text) == FR.parse(e164).key == GB.parse(text.decode()).key


@pytest.mark.parametrize("text", [b"0612345678x", b"04123456789", b"06123456789", b"01614960", b"+33612345678",
                                  b"002079460123", b"020794601234567"])
def test_uk_shape_is_checked(text: bytes) -> None:
    assert uk_number(text) is None


def test_a_header_line_is_skipped_and_an_empty_opposition_file_refused(tmp_path: Path) -> None:
    p = tmp_path / "dnc.txt"
    p.write_text("AreaCode,PhoneNumber\n212,5550123\n")
    lst, report = load_list(p, name="us", kind=ListKind.OPPOSITION, normaliser=FR, fmt="ftc-dnc")
    assert set(lst.members) == keys("+12125550123") and report.lines == 1 and report.bad_count == 0
    p.write_text("# as_of: 2026-11-01\n")
    with pytest.raises(RegistryError, match="holds no numbers"):
        load_list(p, name="us", kind=ListKind.OPPOSITION, normaliser=FR, fmt="ftc-dnc")


def test_a_file_of_bad_lines_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "dnc.txt"
    p.write_text("212,5550123\n" * 10 + "212,555012\n" * 20)
    with pytest.raises(RegistryError, match="20 of 30 lines are not numbers"):
        load_list(p, name="us", kind=ListKind.OPPOSITION, normaliser=FR, fmt="ftc-dnc")


def _detect(tmp_path: Path, text: str, home: str = "FR") -> str:
    p = tmp_path / "list.txt"
    p.write_text(text)
    return detect_format(p, ListKind.OPPOSITION, home)


def test_detection(tmp_path: Path) -> None:
    assert _detect(tmp_path, "212,5550123\n305,5550142\n") == "ftc-dnc"
    assert _detect(tmp_path, "416,5550123\n212,5550142\n") == "dncl"  # labelled by the first area code
    assert _detect(tmp_path, "# as_of: 2026-11-01\n212,5550123\n212,55501\n212,5550124\n212,5550125\n"
                             "212,5550126\n") == "ftc-dnc"  # one bad line in five does not change the reading
    # Ten bare digits: NANP for a US or Canadian gateway only (elsewhere it may be a national number without its 0).
    assert _detect(tmp_path, "2125550123\n3055550142\n", "US") == "ftc-dnc"
    assert _detect(tmp_path, "2125550123\n3055550142\n", "FR") == "text"
    assert _detect(tmp_path, "2079460123\n1134960000\n", "GB") == "text"
    assert _detect(tmp_path, "0207 9460123\r\n01614 960000\r\n") == "tps"
    assert _detect(tmp_path, "02079460123 \n01134960000 \n") == "tps"
    # French lists stay text: 0 and nine digits, even with a stray 11-digit line.
    assert _detect(tmp_path, "0612345678\n0712345678\n06123456789\n") == "text"
    assert _detect(tmp_path, "+12125550123\n") == "text"  # E.164: the text loader reads it
    assert _detect(tmp_path, "Telephone;Identifiant\n0612345678;1\n") == "bloctel-csv"
    assert detect([], "US") is None


def test_fast_path_equals_the_per_line_path() -> None:
    """Blocks of one layout take the whole-block path; any mix goes line by line: both give the same keys,
    counts and bad lines."""
    pools = {
        "ftc-dnc": [b"212,5550123", b"305,5550142", b"2125550124", b"212,5550125\r", b"112,5550123", b"212,555012",
                    b"# as_of: 2026-01-02", b"", b"+12125550126", b"212, 5550127", b"416,5550123", b"abc"],
        "tps": [b"0207 9460123", b"02079460124 ", b"01614 960000", b"07400 000001", b"0169773000", b"0612345678",
                b"+442079460125", b"", b"#", b"0207 946012"],
    }
    rng = random.Random(5)
    for fmt, pool in pools.items():
        layout = LAYOUTS[fmt]
        common = pool[0]
        for trial in range(30):
            # Mostly one layout (the fast path's case), sometimes mixed, in blocks of varied size.
            lines = [common if rng.random() < 0.8 else rng.choice(pool) for _ in range(rng.randrange(1, 400))]
            fast_report, slow_report = LoadReport("f"), LoadReport("s")
            fast = parse_national(blocks_of_lines(lines, rng.randrange(1, 50)), layout, fast_report)
            expected = set()
            for raw in lines:
                s = raw.strip()
                if s and not s.startswith(b"#") and (k := layout.line(s)) is not None:
                    expected.add(k)
            assert set(fast) == expected, (fmt, trial)
            slow = parse_national([b"".join(x + b"\n" for x in lines)], layout, slow_report)
            assert set(slow) == expected
            assert (fast_report.lines, fast_report.accepted, fast_report.bad_count) == (
                slow_report.lines, slow_report.accepted, slow_report.bad_count)


def test_a_large_block_in_one_layout_is_read_whole() -> None:
    lines = [b"%03d,%07d" % (ac, n) for ac in (212, 416) for n in range(2_000_000, 2_050_000)]
    report = LoadReport("big")
    got = parse_national(blocks_of_lines(lines, 65536), LAYOUTS["ftc-dnc"], report)
    assert len(got) == report.accepted == report.lines == 100_000 and report.bad_count == 0
    assert got.min() == FR.parse("+12122000000").key and got.max() == FR.parse("+14162049999").key


@pytest.mark.parametrize(("line", "expected"), [
    (b"212,5550150,A,2026-11-02", (True, "+12125550150")), (b"212,5550123,D,2026-11-02", (False, "+12125550123")),
    (b"DELETE,305,5550142", (False, "+13055550142")), (b"a,2015550100", (True, "+12015550100")),
    (b'"212","5550150","add"', (True, "+12125550150")), (b"A2125550150", (True, "+12125550150")),
    (b"D 2125550150", (False, "+12125550150")), (b"212,5550188", None), (b"212,5550188,A,D", None),
    (b"X,2125550150", None), (b"A,212555015", None),
])
def test_change_records(line: bytes, expected: tuple[bool, str] | None) -> None:
    got = change_record(line, nanp_number)
    assert got == (None if expected is None else (expected[0], FR.parse(expected[1]).key))


def test_ftc_change_file_as_a_delta() -> None:
    d = read_delta(SAMPLES / "ftc-change.txt", FR, fmt="ftc-dnc")
    assert d.as_of == date(2026, 11, 3)
    assert set(d.added) == keys("+12125550150", "+13055550177", "+12015550100")
    assert set(d.removed) == keys("+12125550123", "+13055550142")
    assert [line for line, _ in d.report.bad] == [8]  # "212,5550188": no flag
    # The same file read as a plain delta (a French list's): records are bad lines, nothing is guessed.
    with pytest.raises(RegistryError, match="6 of 6 lines are not numbers"):
        read_delta(SAMPLES / "ftc-change.txt", FR)


def test_tps_change_file_as_a_delta() -> None:
    d = read_delta(SAMPLES / "tps-change.txt", FR, fmt="tps")
    assert set(d.added) == keys("+447911000002", "+441134960001")
    assert set(d.removed) == keys("+442079460123", "+447400000001")
    assert d.report.bad_count == 0


def test_full_list_with_its_change_files_through_the_config(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "ftc-full.txt", tmp_path / "ftc-full.txt")
    (tmp_path / "ftc.d").mkdir()
    shutil.copy(SAMPLES / "ftc-change.txt", tmp_path / "ftc.d" / "2026-11-03.txt")
    (tmp_path / "ftc.d" / "2026-10-30.txt").write_text("# as_of: 2026-10-30\n212,5550111,A\n")  # older: skipped
    config = parse('[lists.us]\nkind = "opposition"\npath = "ftc-full.txt"\nformat = "ftc-dnc"\n'
                   'deltas = "ftc.d/*.txt"\nmax_age_days = 31\n', base=tmp_path)
    spec = config.lists["us"]
    assert spec.format is ListFormat.FTC_DNC
    lst, report = load_with_deltas(spec, FR)
    assert set(lst.members) == keys("+12015550100", "+12015550101", "+12125550199", "+12125550150",
                                    "+13055550177")
    assert lst.meta.as_of == date(2026, 11, 3) and "1 delta file" in lst.meta.source
    assert any("2026-11-03.txt" in why for _, why in report.bad)  # the change file's bad line, by file name


def test_a_snapshot_of_a_country_list_reads_its_change_files_by_that_country(tmp_path: Path) -> None:
    lst, _ = load_list(SAMPLES / "dncl-full.txt", name="ca", kind=ListKind.OPPOSITION, normaliser=FR)
    snapshot.write(lst, tmp_path / "ca.snapshot")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "1.txt").write_text("416,5550123,D\n+6045550101\n")
    spec = ListSpec("ca", ListKind.OPPOSITION, tmp_path / "ca.snapshot", deltas=str(tmp_path / "d" / "*.txt"),
                    country="CA")
    got, _ = load_with_deltas(spec, FR)
    assert set(got.members) == keys("+14165550199", "+16045550100", "+17095550101", "+16045550101")
