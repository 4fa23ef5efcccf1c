"""Where the number is on a line: delimiter, column and header guessed from the first lines."""

from __future__ import annotations

from gateway.numbers import Normaliser
from gateway.scrub import Layout, detect_layout


def test_layout_detection() -> None:
    n = Normaliser("FR")
    assert detect_layout(b"0612345678\n0612345679\n", n) == Layout()
    assert detect_layout(b"telephone\n0612345678\n", n) == Layout(header=True)
    assert detect_layout(b"nom\ttel\tcp\nA\t0612345678\t75001\nB\t0612345679\t75002\n", n) == Layout(b"\t", 1, True)
    assert detect_layout(b"A,B,0612345678\nC,D,0612345679\n", n) == Layout(b",", 2, False)
