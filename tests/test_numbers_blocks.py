"""blocks.py: phonenumbers' patterns read as digit classes, and blocks split where a pattern tells numbers apart."""

from __future__ import annotations

import pytest

from gateway.numbers.blocks import DIGITS, Plan, Unsupported, expand


def _show(pattern: str) -> list[str]:
    return ["".join("d" if c == DIGITS else "[" + "".join(sorted(c)) + "]" for c in alt) for alt in expand(pattern)]


@pytest.mark.parametrize(
    ("pattern", "alternatives"),
    [
        ("12", ["[1][2]"]),
        (r"\d{2}", ["dd"]),
        ("[2-46]", ["[2346]"]),
        ("1(?:2|3[45])", ["[1][2]", "[1][3][45]"]),
        ("12?", ["[1]", "[1][2]"]),
        (r"8\d{1,2}", ["[8]d", "[8]dd"]),
        ("(?:1|2)(?:3|4)", ["[1][3]", "[1][4]", "[2][3]", "[2][4]"]),
        ("([2-9]1)|1", ["[23456789][1]", "[1]"]),
    ],
)
def test_expand(pattern: str, alternatives: list[str]) -> None:
    assert _show(pattern) == alternatives


@pytest.mark.parametrize("pattern", [r"\d+", "1*", "(?=1)2", "1$", "[a-z]", "(1", "[12", r"\s"])
def test_what_is_not_understood_is_refused(pattern: str) -> None:
    with pytest.raises(Unsupported):
        expand(pattern)


def test_a_block_splits_where_a_pattern_does_and_deep_patterns_keep_the_full_parse() -> None:
    calls: list[str] = []

    def classify(nsn: str) -> str:
        calls.append(nsn)
        return "mobile" if nsn.startswith("21") else "valid" if nsn[0] == "2" else "invalid"

    # Four-digit numbers, blocks of one digit, split by the second; 29 is read up to its third digit.
    plan = Plan(4, 2, 1, full=[r"2\d{3}", r"21\d\d", r"29[5-9]\d"], prefixes=[], fallback=["3"], classify=classify)
    assert plan.lookup("2100") == plan.lookup("2199") == "mobile"
    assert plan.lookup("2000") == plan.lookup("2812") == "valid"
    assert plan.lookup("2900") is None and plan.lookup("2999") is None  # deeper than two digits: parse in full
    assert plan.lookup("3123") is None  # a national prefix for parsing: parse in full
    assert plan.lookup("4123") == "invalid"
    assert sorted(calls) == ["2000", "2100", "4000"]  # one call per class (2 and 20-28 alike, 21 apart)
    assert list(plan.classes("2")) == [1, 2, 1, 1, 1, 1, 1, 1, 1, 0]
