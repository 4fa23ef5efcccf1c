"""Normalisation: every spelling of a number gives one key; overseas and international numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.numbers import Kind, Normaliser, mask

FR = Normaliser("FR")


@pytest.mark.parametrize(
    "spelling",
    ["0612345678", "06 12 34 56 78", "06.12.34.56.78", "06-12-34-56-78", "+33612345678", "+33 6 12 34 56 78",
     "0033612345678", "33612345678", "06/12/34/56/78", " 0612345678 ", "06\u00a012\u00a034\u00a056\u00a078"],
)
def test_spellings_give_one_key(spelling: str) -> None:
    n = FR.parse(spelling)
    assert (n.key, n.e164, n.kind, n.region, n.zones) == (33612345678, "+33612345678", Kind.MOBILE, "FR",
                                                           ("Europe/Paris",))


def test_outside_line_prefix() -> None:
    pbx = Normaliser("FR", outside_line=("9", "0"))
    assert pbx.parse("90612345678").key == 33612345678
    assert pbx.parse("00612345678").key == 33612345678  # "0" + national number
    assert pbx.parse("0612345678").key == 33612345678  # never read as "0" + 612345678
    assert pbx.parse("0033612345678").key == 33612345678  # international prefix still wins
    assert Normaliser("FR").parse("90612345678").kind is Kind.INVALID


@pytest.mark.parametrize(
    ("dialled", "e164", "region", "zone", "kind"),
    [
        ("0692123456", "+262692123456", "RE", "Indian/Reunion", Kind.MOBILE),
        ("0262123456", "+262262123456", "RE", "Indian/Reunion", Kind.FIXED),
        ("0269123456", "+262269123456", "YT", "Indian/Mayotte", Kind.FIXED),
        ("0639123456", "+262639123456", "YT", "Indian/Mayotte", Kind.MOBILE),
        ("0590123456", "+590590123456", "GP", "America/Guadeloupe", Kind.FIXED),
        ("0690123456", "+590690123456", "GP", "America/Guadeloupe", Kind.MOBILE),
        ("0594123456", "+594594123456", "GF", "America/Cayenne", Kind.FIXED),
        ("0694123456", "+594694123456", "GF", "America/Cayenne", Kind.MOBILE),
        ("0596123456", "+596596123456", "MQ", "America/Martinique", Kind.FIXED),
        ("0696123456", "+596696123456", "MQ", "America/Martinique", Kind.MOBILE),
        ("+262692123456", "+262692123456", "RE", "Indian/Reunion", Kind.MOBILE),
        ("00590690123456", "+590690123456", "GP", "America/Guadeloupe", Kind.MOBILE),
        ("262692123456", "+262692123456", "RE", "Indian/Reunion", Kind.MOBILE),
    ],
)
def test_overseas_numbers_dialled_nationally(dialled: str, e164: str, region: str, zone: str, kind: Kind) -> None:
    n = FR.parse(dialled)
    assert (n.e164, n.region, n.zones, n.kind) == (e164, region, (zone,), kind)
    assert n.key == int(e164[1:])


@pytest.mark.parametrize(
    ("dialled", "kind"),
    [
        ("0112345678", Kind.FIXED), ("0512345678", Kind.FIXED), ("0612345678", Kind.MOBILE),
        ("0712345678", Kind.MOBILE), ("0812345678", Kind.SPECIAL), ("0912345678", Kind.VOIP),
        ("07001234567890", Kind.M2M), ("0700123456", Kind.INVALID),
        ("15", Kind.EMERGENCY), ("17", Kind.EMERGENCY), ("18", Kind.EMERGENCY), ("112", Kind.EMERGENCY),
        ("114", Kind.EMERGENCY), ("115", Kind.EMERGENCY), ("119", Kind.EMERGENCY), ("191", Kind.EMERGENCY),
        ("196", Kind.EMERGENCY), ("197", Kind.EMERGENCY), ("3949", Kind.SHORT), ("118712", Kind.SHORT),
        ("", Kind.INVALID), ("abc", Kind.INVALID), ("061234567", Kind.INVALID), ("06123456789", Kind.INVALID),
        ("0012", Kind.INVALID), ("+", Kind.INVALID), ("0012345678", Kind.INVALID), ("+999123456789", Kind.INVALID),
    ],
)
def test_kinds(dialled: str, kind: Kind) -> None:
    assert FR.parse(dialled).kind is kind


def test_international_numbers_through_phonenumbers() -> None:
    us = FR.parse("+1 212 555 1234")
    assert (us.key, us.region, us.zones) == (12125551234, "US", ("America/New_York",))
    assert FR.parse("0012125551234") == us
    uk = FR.parse("+447911123456")
    assert uk.region == "GG" or uk.region == "GB"
    assert len(uk.zones) > 1  # several possible zones: the rules require all of them to be legal
    assert FR.parse("+508411234").zones == ("America/Miquelon",)


def test_other_home_country() -> None:
    us = Normaliser("US")
    assert us.parse("(212) 555-1234").key == 12125551234
    assert us.parse("911").kind is Kind.EMERGENCY


def test_mask_keeps_prefix_and_last_two_digits() -> None:
    assert mask("+33612345678") == "+3361•••••78"
    assert mask("0612345678") == "0612••••78"
    assert mask("15") == "15"
    assert FR.parse("0612345678").masked == "+3361•••••78"


nsn = st.integers(min_value=100_000_000, max_value=999_999_999).map(str).filter(lambda s: s[0] in "1234589")


@given(nsn, st.sampled_from(["0{n}", "+33{n}", "0033{n}", "33{n}", "+33 {n}", "0{a} {b} {c}", "0{a}.{b}.{c}"]))
def test_all_spellings_of_one_number_give_one_key(n: str, template: str) -> None:
    spelled = template.format(n=n, a=n[0], b=n[1:5], c=n[5:])
    assert FR.parse(spelled).key == FR.parse("0" + n).key != 0


@pytest.mark.parametrize("dialled", ["34６٦", "118٧١٢", "06²12345678", "０６12345678", "0６12345678", "+３３612345678",
                                     "1٥", "١١٢", "3\u0663\u0664\u0665"])
def test_only_ascii_digits_are_digits(dialled: str) -> None:
    """str.isdigit() says yes to fullwidth, Arabic-Indic and superscript digits; int() reads most of them
    (and raises on "²"): such a string is an invalid number, never a short number or an emergency."""
    num = Normaliser("FR").parse(dialled)
    assert num.kind is Kind.INVALID and num.key == 0
    assert Normaliser("FR").prefix(dialled) is None


def test_emergency_numbers_stay_allowed_with_ascii_digits() -> None:
    for n in ("15", "17", "18", "112", "114", "115", "119", "196", "116000"):
        assert Normaliser("FR").parse(n).kind is Kind.EMERGENCY
    assert Normaliser("FR").parse("06\u00a012\u00a034\u00a056\u00a078").key == 33612345678  # separators stay
