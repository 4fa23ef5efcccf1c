"""The NANP and UK fast paths give phonenumbers' Number, field by field, for every area code and UK range.

The reference is :func:`gateway.numbers.parse_e164` (phonenumbers, uncached) and, for national forms, the
normaliser's phonenumbers path (``_national`` without its cache). Every block (area code, UK three-digit prefix)
is checked: two random members of each class its numbers are split into, and random numbers of the block;
any mismatch fails. Where phonenumbers is itself wrong (the zones of split area codes), ``nanp.zones_of`` adds
the second zones after parsing, as before.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import numbers
from gateway.numbers import Kind, Normaliser, Number, fast_e164, parse_e164
from gateway.policy import nanp

FR, US, CA, GB = Normaliser("FR"), Normaliser("US"), Normaliser("CA"), Normaliser("GB")
_reference_national = numbers._national.__wrapped__  # phonenumbers.parse(s, home), uncached


def _plan(cc: str) -> numbers.Plan[Number]:
    fast_e164("12125550123" if cc == "1" else "442079460000")  # the plans are built on first use
    plan = numbers._PLANS[cc]
    assert plan is not None, f"+{cc}: phonenumbers' patterns were not understood, no fast path"
    return plan


def _samples(cc: str, heads: range, per_block: int, seed: int) -> list[str]:
    """Two random members of every class of every block, and ``per_block`` random numbers of each block."""
    rng = random.Random(seed)
    plan = _plan(cc)
    out = []
    for head in heads:
        classes = plan.classes(str(head))
        members: dict[int, list[int]] = {}
        for suffix, cls in enumerate(classes):
            members.setdefault(cls, []).append(suffix)
        picks = [s for ms in members.values() for s in rng.sample(ms, min(2, len(ms)))]
        picks += [rng.randrange(1000) for _ in range(per_block)]
        out += [f"{cc}{head}{s:03d}{rng.randrange(10_000):04d}" for s in picks]
    return out


def _mismatches(digits: list[str]) -> list[tuple[str, Number | None, Number]]:
    out = []
    for d in digits:
        fast, slow = fast_e164(d), parse_e164(d)
        if fast is not None and fast != slow:  # Number equality: key, e164, region, kind, zones, short
            out.append((d, fast, slow))
        if FR.parse("+" + d) != slow or FR.parse("00" + d) != slow:
            out.append((d, FR.parse("+" + d), slow))
    return out


def test_every_area_code_every_class() -> None:
    digits = _samples("1", range(200, 1000), 8, seed=1)
    assert _mismatches(digits) == []
    fast = sum(fast_e164(d) is not None for d in digits)
    assert fast / len(digits) > 0.999  # the fast path is taken: only a handful of 7-digit patterns are not


@pytest.mark.parametrize(
    ("digits", "region", "kind"),
    [
        ("12125550123", "US", Kind.FIXED), ("14165550123", "CA", Kind.FIXED), ("17095550123", "CA", Kind.FIXED),
        ("18005550123", "US", Kind.SPECIAL), ("18335550123", "US", Kind.SPECIAL), ("19005550123", "US", Kind.SPECIAL),
        ("15005550123", "US", Kind.MOBILE), ("18095550123", "DO", Kind.FIXED), ("17875550123", "PR", Kind.FIXED),
        ("18762345678", "JM", Kind.MOBILE), ("16715550123", "GU", Kind.FIXED), ("12085550123", "US", Kind.FIXED),
    ],
)
def test_nanp_examples(digits: str, region: str, kind: Kind) -> None:
    n = fast_e164(digits)
    assert n is not None and n == parse_e164(digits)
    assert (n.region, n.kind, n.key, n.e164) == (region, kind, int(digits), "+" + digits)


def test_uk_every_range() -> None:
    """Geographic 01/02, 03 (UAN), 05 (VoIP), 07 (mobiles, pagers, personal), 08 and 09 (freephone, premium)."""
    digits = _samples("44", range(100, 1000), 8, seed=2)
    assert _mismatches(digits) == []
    fast = sum(fast_e164(d) is not None for d in digits)
    assert fast / len(digits) > 0.999


_ALL_UK = ("Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey", "Europe/London")


@pytest.mark.parametrize(
    ("digits", "region", "kind", "zones"),
    [
        ("442079460000", "GB", Kind.FIXED, ("Europe/London",)),
        ("441614960000", "GB", Kind.FIXED, ("Europe/London",)),
        ("441481256789", "GG", Kind.FIXED, ("Europe/Guernsey",)),
        ("441534456789", "JE", Kind.FIXED, ("Europe/Jersey",)),
        ("441624756789", "IM", Kind.FIXED, ("Europe/Isle_of_Man",)),
        ("447400123456", "GB", Kind.MOBILE, _ALL_UK),  # not geographic: every zone of +44
        ("443001234567", "GB", Kind.SPECIAL, _ALL_UK),
        ("448001234567", "GB", Kind.SPECIAL, _ALL_UK),
        ("449091234567", "GB", Kind.SPECIAL, _ALL_UK),
    ],
)
def test_uk_examples(digits: str, region: str, kind: Kind, zones: tuple[str, ...]) -> None:
    n = fast_e164(digits)
    assert n is not None and n == parse_e164(digits)
    assert (n.region, n.kind, n.zones) == (region, kind, zones)


def test_short_uk_numbers_keep_the_full_parse() -> None:
    for d in ("44800123456", "4416977234", "448001111"):  # 9- and 7-digit NSNs: not in the tables
        assert fast_e164(d) is None
        assert FR.parse("+" + d) == parse_e164(d)


@pytest.mark.parametrize("dialled", ["+1212555123x", "+1 (212) 555-1234", "+1212-555-1234", "+4420 7946 0000"])
def test_odd_spellings_read_as_phonenumbers_reads_them(dialled: str) -> None:
    digits = "".join(c for c in dialled[1:] if c not in " -()")
    expected = parse_e164(digits) if digits.isdigit() else numbers.INVALID
    assert FR.parse(dialled) == expected


@pytest.mark.parametrize("dialled", ["+1\uff12\uff11\uff125551234", "+44\u0662079460000"])
def test_digits_other_than_ascii_make_an_invalid_number(dialled: str) -> None:
    """Fullwidth or Arabic-Indic digits are not digits (phonenumbers would read them): invalid_number."""
    assert FR.parse(dialled) == numbers.INVALID


def test_national_forms() -> None:
    """A US or Canadian home reads 2125550123 and 12125550123, a UK home 02079460000, as phonenumbers does."""
    rng = random.Random(3)
    cases = []
    for ac in range(200, 1000):
        for _ in range(3):
            nsn = f"{ac}{rng.randrange(10_000_000):07d}"
            cases += [(US, "US", nsn), (US, "US", "1" + nsn), (CA, "CA", nsn), (CA, "CA", "1" + nsn)]
    for p in range(100, 1000):
        for _ in range(3):
            cases.append((GB, "GB", f"0{p}{rng.randrange(10_000_000):07d}"))
    bad = [(s, home) for norm, home, s in cases if norm.parse(s) != _reference_national(s, home)]
    assert bad == []


nanp_digits = st.builds(lambda npa, rest: f"1{npa}{rest:07d}", st.integers(0, 999).map(lambda n: f"{n:03d}"),
                        st.integers(0, 9_999_999))
uk_digits = st.builds(lambda nsn: f"44{nsn}", st.integers(0, 10**10 - 1).map(lambda n: f"{n:010d}"))


@settings(max_examples=300, deadline=None)
@given(st.one_of(nanp_digits, uk_digits), st.sampled_from(["+{d}", "00{d}", "+{d} ", "+{a} ({b}) {c}-{e}"]))
def test_any_number_any_spelling(d: str, template: str) -> None:
    spelled = template.format(d=d, a=d[:-10], b=d[-10:-7], c=d[-7:-4], e=d[-4:])
    assert FR.parse(spelled) == parse_e164(d)


def test_split_area_codes_get_their_second_zones_after_parsing() -> None:
    """phonenumbers gives one zone to 850 (Florida's panhandle); the pack's table adds the other, after parsing."""
    n = US.parse("8505550123")
    assert n == parse_e164("18505550123") and len(n.zones) == 1
    assert nanp.zones_of(n) == ("America/Chicago", "America/New_York")
