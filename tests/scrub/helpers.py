"""What the scrub tests share: instants that exercise each rule, call files mixing every kind of line."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime

from gateway.policy.decision import Decision
from gateway.scrub import Layout, Screener, scrub_stream
from gateway.service import Gateway

LEGAL = datetime.fromisoformat("2026-11-24T10:30:00+01:00")  # Tuesday, consent regime
EVENING = datetime.fromisoformat("2026-11-24T21:00:00+01:00")  # outside hours in Paris, night overseas
ARMISTICE = datetime.fromisoformat("2026-11-11T10:30:00+01:00")  # a public holiday, lists fresh
BLOCTEL_ERA = datetime.fromisoformat("2026-03-10T11:30:00+01:00")  # opposition regime under "auto"

MEMBERS = ["0612000001", "0612000003", "0612000009", "0612000010", "0612000049", "0612000100", "0612000120",
           "0612000200", "0612000300", "0692000009", "0899123456", "0899000000"]
SPELLINGS = ["+33612000001", "0033612000002", "+33 6 12 00 00 10", "06.12.00.01.05", "+19005551234",
             "+442079460000", "0590123456", "+262692000009", "0700123456789", "3949", "112"]
BAD = ["abc", "06123", "0612x45678", "", "   ", "0701234567", "+", "00", "06123456789012345"]



def numbers(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.15:
            out.append(rng.choice(MEMBERS))
        elif r < 0.2:
            out.append(rng.choice(SPELLINGS))
        elif r < 0.23:
            out.append(rng.choice(BAD))
        elif r < 0.3:
            out.append("0" + rng.choice(["692", "693", "262", "590", "690", "594", "596", "696", "639", "269"])
                       + f"{rng.randrange(10**6):06d}")
        else:
            out.append(f"0{rng.randrange(100_000_000, 1_000_000_000)}")
    return out


def screen(gw: Gateway, campaign: str, at: datetime, data: bytes, **kw: object) -> tuple[dict, bytes, bytes, Layout]:
    s = Screener(gw.engine, gw.holder.current, gw.normaliser, campaign, at)
    out, rej = io.BytesIO(), io.BytesIO()
    summary, layout = scrub_stream(io.BytesIO(data), out, rej, s, **kw)  # type: ignore[arg-type]
    return summary.as_json(), out.getvalue(), rej.getvalue(), layout


def reject_rows(rejects: bytes, delimiter: str = ";") -> list[list[str]]:
    text = rejects.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def expected(gw: Gateway, campaign: str, at: datetime, text: str) -> Decision:
    return gw.decide(gw.normaliser.parse(text), campaign, None, at)
