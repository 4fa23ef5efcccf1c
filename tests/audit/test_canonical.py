"""The chain's canonical JSON, byte for byte: the writer's fast encoding against ``json.dumps`` as the scheme
defines it, and hashes pinned from the code that wrote the existing trails (so they keep verifying)."""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import GENESIS, AuditRecord, RowEncoder, chain_hash, record_row, row_hash
from tests.audit.helpers import rec


# The definition (sha256-json-v1/v2), written the way the first writer wrote it: json.dumps at every call.
def reference_text(value: object) -> str:
    s = value if isinstance(value, str) else str(value)
    return s if s.isascii() else s.encode("utf-8", "replace").decode("utf-8")


def reference_row(r: AuditRecord) -> tuple[Any, ...]:
    t = reference_text
    lists = json.dumps({t(k): t(v) for k, v in dict(r.lists).items()}, sort_keys=True, ensure_ascii=False,
                       separators=(",", ":"))
    return (t(r.decision_id), float(r.at), t(r.campaign), t(r.number), t(r.verdict),
            None if r.reason is None else t(r.reason), t(r.rule), int(bool(r.would_block)), t(r.mode), t(r.regime),
            lists, t(r.caller_id), t(r.channel), t(r.uniqueid), t(r.source), t(r.detail))


def reference_hash(prev: str, seq: int, row: Sequence[Any], written_at: Any) -> str:
    values = [seq, *row] if written_at is None else [seq, *row, written_at]
    canon = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev}:{canon}".encode("utf-8", "surrogatepass")).hexdigest()


class Kind(enum.StrEnum):
    AGI = "agi"
    ODD = "é\ud800"


ODD = AuditRecord("d\u00e9c", 1.5e9 + 0.1, 'camp"\\', "+33612", "ALLOW", "r\u00e9ason", "allow", True, "enforce",
                  "opposition", {"z": "v\ud800", "\u00e9": "\n"}, "caller\x01", "PJSIP/\ud83d\ude00-\udcff", "u", "agi",
                  "tab\there \u2028")


def test_hashes_pinned_from_the_writer_of_existing_trails() -> None:
    """Computed by the release before the fast encoding (json.dumps at every call): a trail it wrote verifies."""
    r = record_row(rec(1))
    assert row_hash(GENESIS, 1, r, None) == "735a75ae78af23f5dd754c024f5fcac1499be744b57df37b1fb9e2852cb4ff3c"
    assert row_hash(GENESIS, 1, r, r[1] + 0.25) == "fc01c16a13f3b292922db21ded3e0ed24b3fd9ee040bb38a05a4bbe6599719aa"
    odd = record_row(ODD)
    assert odd == ("déc", 1500000000.1, 'camp"\\', "+33612", "ALLOW", "réason", "allow", 1, "enforce", "opposition",
                   '{"z":"v?","é":"\\n"}', "caller\x01", "PJSIP/??-?", "u", "agi", "tab\there \u2028")
    assert row_hash("ab" * 32, 42, odd, 1.7e9 + 0.125) == (
        "dccdfc45459f0caa956b3f4e821f613fe4025da7abd409ee4b6eddd14a664aa8")


def writer_hash(encoder: RowEncoder, prev: str, seq: int, record: AuditRecord, written: float) -> str:
    row, body = encoder.row(record)
    assert row == reference_row(record)
    return encoder.hash(prev, seq, body, encoder.written(written))


texts = st.one_of(st.text(max_size=12), st.sampled_from(["", "agi", 'a"b\\c', "\x00\x1f\x7f", "\u2028é€😀"]),
                  st.sampled_from(list(Kind)))
floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e16, 1.7e9 + 0.1, math.inf, -math.inf]))


@given(texts=st.lists(texts, min_size=12, max_size=12), at=floats, written=floats,
       reason=st.one_of(st.none(), texts), would_block=st.one_of(st.booleans(), st.integers(-2, 2)),
       lists=st.dictionaries(texts, texts, max_size=3), seq=st.integers(1, 2**62))
def test_the_writer_encodes_exactly_as_the_definition(texts: list[str], at: float, written: float,
                                                       reason: str | None, would_block: Any, lists: dict[str, str],
                                                       seq: int) -> None:
    t = texts
    record = AuditRecord(t[0], at, t[1], t[2], t[3], reason, t[4], would_block, t[5], t[6], lists, t[7], t[8], t[9],
                         t[10], t[11])
    row = reference_row(record)
    assert record_row(record) == row or math.isnan(float(at))  # NaN != NaN: compared through the hashes below
    expected = reference_hash(GENESIS, seq, row, written)
    assert row_hash(GENESIS, seq, row, written) == expected
    assert chain_hash(GENESIS, seq, (*row, written)) == expected
    assert row_hash(GENESIS, seq, row, None) == reference_hash(GENESIS, seq, row, None)
    if not math.isnan(float(at)):
        encoder = RowEncoder()
        assert writer_hash(encoder, GENESIS, seq, record, written) == expected
        assert writer_hash(encoder, GENESIS, seq, record, written) == expected  # the lists from the cache


def test_the_lists_cache_follows_a_mapping_changed_in_place() -> None:
    encoder = RowEncoder()
    lists = {"bloctel": "v1"}
    record = rec(1)._replace(lists=lists)
    assert encoder.row(record)[0][10] == '{"bloctel":"v1"}'
    lists["bloctel"] = "v2"
    assert encoder.row(record)[0][10] == '{"bloctel":"v2"}'
    proxy = MappingProxyType({"b": "1", "a": "2"})
    assert encoder.row(record._replace(lists=proxy))[0][10] == '{"a":"2","b":"1"}'
    assert encoder.row(record._replace(lists={"a": "2", "b": "1"}))[0][10] == '{"a":"2","b":"1"}'


def test_non_string_columns_take_the_slow_path() -> None:
    record = rec(1)._replace(caller_id=123, channel=None)  # type: ignore[arg-type]  # what a bad caller could pass
    row, body = RowEncoder().row(record)
    assert row == reference_row(record) and row[11:13] == ("123", "None")
    assert body == json.dumps(list(row), ensure_ascii=False, separators=(",", ":"))[1:-1]
