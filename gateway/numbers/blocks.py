r"""Blocks of numbers that phonenumbers treats alike, found from its own metadata: the NANP and UK fast paths.

phonenumbers reads a number's validity, region, type and time zones off its national significant number (NSN)
with regular expressions (each region's number patterns, its ``leading_digits``, the national prefix for
parsing) and a prefix table (the time zones). For a ten-digit NANP or UK NSN these look at the first six digits
at most (NPA-NXX; ``\d{4}`` follows); a parse costs 50-100 µs, too much for every new callee.

:func:`expand` reads a pattern (the small subset of regex syntax the metadata uses: digits, ``\d``, classes,
groups, ``|``, ``?``, ``{m}``, ``{m,n}``) into its alternatives, each a sequence of per-position digit classes.
A :class:`Plan` then splits the numbers of one block (an NSN's first ``block`` digits: an area code) by their
next digits into classes that every pattern alternative and every time-zone prefix treats alike: within a class
phonenumbers computes the same answer from the same matches, so it is asked once per class, with any member.
Where an alternative looks deeper than ``depth`` digits, its numbers keep the full parse (``None`` in the table):
correct everywhere, fast where the metadata allows. tests/test_numbers_fast.py compares the two over every
area code and UK range.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

__all__ = ["Plan", "Unsupported", "expand"]

T = TypeVar("T")

Classes = tuple[frozenset[str], ...]
DIGITS = frozenset("0123456789")
_ALL_DIGITS = DIGITS  # a position any digit passes


class Unsupported(ValueError):
    """A pattern outside the subset read here: its country keeps the full parse."""


def expand(pattern: str) -> list[Classes]:
    """The alternatives of ``pattern``, each a tuple of the digit classes of its positions (finite patterns only)."""
    alts, end = _alternation(pattern, 0)
    if end != len(pattern):
        raise Unsupported(f"unexpected {pattern[end]!r} at {end} in {pattern!r}")
    return alts


_MAX_ALTERNATIVES = 20_000  # a pattern that would expand further is left to phonenumbers


def _alternation(p: str, i: int) -> tuple[list[Classes], int]:
    out, i = _sequence(p, i)
    while i < len(p) and p[i] == "|":
        more, i = _sequence(p, i + 1)
        out += more
    return out, i


def _sequence(p: str, i: int) -> tuple[list[Classes], int]:
    acc: list[Classes] = [()]
    while i < len(p) and p[i] not in "|)":
        atom, i = _atom(p, i)
        lo, hi, i = _quantifier(p, i)
        reps: list[Classes] = []
        for n in range(lo, hi + 1):
            reps += _power(atom, n)
        acc = [a + b for a in acc for b in reps]
        if len(acc) > _MAX_ALTERNATIVES:
            raise Unsupported(f"{p!r} has too many alternatives")
    return acc, i


def _power(atom: list[Classes], n: int) -> list[Classes]:
    out: list[Classes] = [()]
    for _ in range(n):
        out = [a + b for a in out for b in atom]
    return out


def _atom(p: str, i: int) -> tuple[list[Classes], int]:
    c = p[i]
    if c.isdigit():
        return [(frozenset(c),)], i + 1
    if p.startswith("\\d", i):
        return [(_ALL_DIGITS,)], i + 2
    if c == "[":
        end = p.find("]", i)
        if end < 0:
            raise Unsupported(f"unclosed class in {p!r}")
        return [(_class(p[i + 1:end], p),)], end + 1
    if c == "(":
        j = i + 3 if p.startswith("(?:", i) else i + 1
        if p[j:j + 1] == "?":
            raise Unsupported(f"group syntax at {i} in {p!r}")
        alts, j = _alternation(p, j)
        if j >= len(p) or p[j] != ")":
            raise Unsupported(f"unclosed group in {p!r}")
        return alts, j + 1
    raise Unsupported(f"{c!r} at {i} in {p!r}")


def _class(body: str, p: str) -> frozenset[str]:
    out: set[str] = set()
    k = 0
    while k < len(body):
        if body.startswith("\\d", k):
            out |= _ALL_DIGITS
            k += 2
        elif k + 2 < len(body) and body[k + 1] == "-" and body[k].isdigit() and body[k + 2].isdigit():
            out |= {str(d) for d in range(int(body[k]), int(body[k + 2]) + 1)}
            k += 3
        elif body[k].isdigit():
            out.add(body[k])
            k += 1
        else:
            raise Unsupported(f"class [{body}] in {p!r}")
    return frozenset(out)


def _quantifier(p: str, i: int) -> tuple[int, int, int]:
    if i < len(p) and p[i] == "?":
        return 0, 1, i + 1
    if i < len(p) and p[i] == "{":
        end = p.find("}", i)
        if end < 0:
            raise Unsupported(f"unclosed repeat in {p!r}")
        lo, sep, hi = p[i + 1:end].partition(",")
        try:
            n, m = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise Unsupported(f"repeat {p[i:end + 1]} in {p!r}") from None
        return n, m, end + 1
    if i < len(p) and p[i] in "*+":
        raise Unsupported(f"unbounded repeat in {p!r}")
    return 1, 1, i


def _suffixes(classes: Classes) -> list[int]:
    """The integers whose digits (as many as there are classes, zero-padded) pass the classes, in order."""
    out = [0]
    for cls in classes:
        digits = sorted(int(d) for d in cls)
        out = [v * 10 + d for v in out for d in digits]
    return out


class Plan(Generic[T]):
    """A country code's NSNs of one length, split into blocks (their first ``block`` digits) and, inside a block,
    into classes of the next ``depth - block`` digits that phonenumbers cannot tell apart.

    ``full`` are patterns an NSN must match entirely (the regions' number patterns), ``prefixes`` patterns it
    must start with (``leading_digits``, the time-zone table's prefixes), ``fallback`` prefixes whose numbers
    always take the full parse (the national prefix for parsing: phonenumbers may strip it and read what is
    left with the same patterns, shifted). ``classify`` gives the answer for one NSN (phonenumbers' own); it is
    called once per class, the first time a block is seen. :meth:`lookup` gives that answer for any NSN of the
    plan's length, or ``None`` where the metadata looks deeper than ``depth`` digits: parse it in full.
    """

    __slots__ = ("_alts", "_blocks", "_by_head", "_classify", "_span", "block", "depth", "length")

    def __init__(self, length: int, depth: int, block: int, full: Iterable[str], prefixes: Iterable[str],
                 fallback: Iterable[str], classify: Callable[[str], T]) -> None:
        self.length, self.depth, self.block = length, depth, block
        self._span = 10 ** (depth - block)
        self._classify = classify
        # (classes of the digits that split a block, deep): deep alternatives look further than ``depth`` (or
        # are fallback prefixes), so the numbers they cover keep the full parse.
        alts: list[tuple[Classes, Classes, bool]] = []

        def add(a: Classes, deep: bool) -> None:
            split = a[block:depth]
            split += (_ALL_DIGITS,) * (depth - block - len(split))
            deep = deep or any(c != _ALL_DIGITS for c in a[depth:])
            if deep or any(c != _ALL_DIGITS for c in split):  # the others treat a whole block alike
                alts.append((a[:block], split, deep))

        for pattern in full:
            for a in expand(pattern):
                if len(a) == length:
                    add(a, False)
        for pattern in prefixes:
            for a in expand(pattern):
                add(a, False)
        for pattern in fallback:
            for a in expand(pattern):
                add(a, True)
        self._alts = [(split, deep) for _, split, deep in alts]
        # Block -> the alternatives that may match in it (a prefix shorter than a block stands for all its
        # blocks): building a block looks at these only.
        by_head: dict[str, list[int]] = {}
        for i, (head, _, _) in enumerate(alts):
            heads = [""]
            for cls in head + (_ALL_DIGITS,) * (block - len(head)):
                heads = [h + d for h in heads for d in sorted(cls)]
            for h in heads:
                by_head.setdefault(h, []).append(i)
        self._by_head = by_head
        self._blocks: dict[str, tuple[tuple[T | None, ...], array[int]]] = {}

    def lookup(self, nsn: str) -> T | None:
        """The answer for an NSN of ``length`` digits (all digits: the caller checks), None: parse it in full."""
        head = nsn[:self.block]
        found = self._blocks.get(head)
        if found is None:
            found = self._blocks[head] = self._build(head)
        answers, index = found
        return answers[index[int(nsn[self.block:self.depth])]]

    def classes(self, head: str) -> Sequence[int]:
        """The class of each number of a block, by its next digits (0: parsed in full); for the tests."""
        found = self._blocks.get(head)
        if found is None:
            found = self._blocks[head] = self._build(head)
        return found[1]

    def _build(self, head: str) -> tuple[tuple[T | None, ...], array[int]]:
        span = self._span
        sig = [0] * span
        deep = bytearray(span)
        for bit in self._by_head.get(head, ()):
            split, is_deep = self._alts[bit]
            covered = _suffixes(split)
            if is_deep:
                for s in covered:
                    deep[s] = 1
            else:
                mask = 1 << bit
                for s in covered:
                    sig[s] |= mask
        slots: dict[int, int] = {}
        answers: list[T | None] = [None]  # slot 0: the full parse
        index = array("H", bytes(2 * span))  # an area code with many time-zone prefixes has ~200 classes
        width = self.depth - self.block
        tail = "0" * (self.length - self.depth)
        for s in range(span):
            if deep[s]:
                continue
            slot = slots.get(sig[s])
            if slot is None:
                slot = slots[sig[s]] = len(answers)
                answers.append(self._classify(f"{head}{s:0{width}d}{tail}"))
            index[s] = slot
        return tuple(answers), index
