"""The proof dossier against the real audit trail: exactly its records, each checked against the hash chain."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateway.audit import AuditReader
from gateway.config import load
from gateway.proof import html
from gateway.proof.dossier import SCHEMA, Dossier
from gateway.proof.gather import Request, dossier
from gateway.service import Gateway
from tests.proof.history import CALLS, NUMBER, rehash, tamper

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SCHEMA_FILE = Path(__file__).with_name("dossier.schema.json")


def build(conf: Path, since: datetime | None = None, until: datetime | None = None) -> Dossier:
    async def go() -> Dossier:
        gw = Gateway(load(conf), clock=lambda: NOW)
        gw.holder.load_all()
        try:
            return await dossier(gw, Request(gw.normaliser.parse("0612000010"), since, until), NOW)
        finally:
            await gw.close()

    return asyncio.run(go())


def audit_rows(conf: Path, **kw: Any) -> list[dict[str, Any]]:
    with AuditReader(conf.parent / "audit.db") as r:
        return r.query(number=NUMBER, limit=10**6, **kw)


def test_ten_calls_over_three_campaigns_match_the_audit_exactly(history: tuple[Path, list[str]]) -> None:
    conf, ids = history
    d = build(conf)
    j = d.as_json()
    rows = audit_rows(conf)
    assert len(rows) == len(CALLS) == 10 and [r["decision_id"] for r in rows] == ids
    keys = ("seq", "decision_id", "at", "time", "campaign", "verdict", "reason", "rule", "would_block", "mode",
            "regime", "lists", "source", "channel", "detail", "written_time")
    assert [{k: x[k] for k in keys} for x in j["decisions"]] == [{k: r[k] for k in keys} for r in rows]
    assert {x["campaign"] for x in j["decisions"]} == {"prospect", "legacy", "survey"}
    assert all(x["chain"] == {"status": "intact", "problem": ""} for x in j["decisions"])
    counts = j["counts"]
    verdicts = [r["verdict"] for r in rows]
    assert (counts["calls"], counts["allowed"], counts["blocked"]) == (10, verdicts.count("ALLOW"),
                                                                      verdicts.count("BLOCK"))
    assert counts["by_campaign"] == {"legacy": 2, "prospect": 6, "survey": 2}
    # Each call allowed on consent names the consent in force on the callee's day: the first one (20 Aug),
    # revoked on 5 Oct, so the 1 Oct call still rests on it.
    on_consent = [(x["time"][:10], x["consent_id"]) for x in j["decisions"] if x["ground"] == "consent"]
    assert on_consent == [("2026-09-01", 1), ("2026-09-22", 1), ("2026-10-01", 1)]
    assert [c["allowed_calls"] for c in j["consents"]] == [3, 0]
    assert [(c["given_on"], c["status"]) for c in j["consents"]] == [("2026-08-20", "revoked"),
                                                                     ("2026-10-20", "active")]
    assert j["optouts"] == []  # the other number's opt-out is not this one's
    assert j["state"]["last_refusal"] == "2026-10-05T12:00:00+00:00"
    assert j["retention"] == {"configured": True, "text": "consent proof kept 3 years after the consent ends "
                              "(consent_proof_years), audit trail 1830 days (retention_days)"}
    # The proof is owed three years after the consent ends: its revocation, or its expiry (365 days).
    assert [c["purge_after"] for c in j["consents"]] == ["2029-10-06", "2030-10-21"]
    en, fr = j["summary"]["en"], j["summary"]["fr"]
    assert en.startswith("10 calls to +33612000010 between 1 September 2026 and 24 November 2026 (3 campaigns: "
                         "legacy, prospect, survey): 6 allowed, 4 blocked.")
    assert ("3 allowed on the consent of 20 August 2026 collected by “web form A”, evidence “sha256:ab12cd”, "
            "valid until 19 August 2027.") in en
    # The refusal of 5 Oct ended the consent at once (no_consent.withdrawn on 8 Oct), then the cooldown.
    assert "4 calls blocked: 3 refusal_cooldown, 1 no_consent." in en and "withdrawn on 5 October 2026" in en
    assert "All 10 audit records of this number check against the hash chain." in en
    assert fr.startswith("10 appels vers +33612000010 entre le 1er septembre 2026 et le 24 novembre 2026")
    assert "recueilli par « web form A »" in fr and "4 appels bloqués : 3 refusal_cooldown, 1 no_consent." in fr
    assert set(j["now"]["decisions"]) == {"prospect", "legacy", "survey"}


def test_json_schema_is_stable(history: tuple[Path, list[str]]) -> None:
    """The dossier's JSON validates against the schema kept with the tests; keys may be added, never dropped."""
    j = build(history[0]).as_json()
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(j, schema)
    assert j["schema"] == SCHEMA == "dnc-gateway/proof-dossier/1"
    assert set(schema["required"]) <= set(j)
    assert set(schema["properties"]["decisions"]["items"]["required"]) <= set(j["decisions"][0])
    assert json.loads(json.dumps(j)) == j  # plain JSON values only


@pytest.mark.parametrize("how", ["modified", "rehashed"])
def test_a_tampered_record_shows_in_the_dossier(history: tuple[Path, list[str]], how: str) -> None:
    conf, ids = history
    db = conf.parent / "audit.db"
    victim = ids[5]  # a BLOCK (refusal_cooldown) turned into an ALLOW
    if how == "modified":
        tamper(db, victim, verdict="ALLOW", reason=None)
    else:  # the row's own hash recomputed too: its successor no longer chains to it
        rehash(db, victim, verdict="ALLOW", reason=None)
    d = build(conf)
    bad = [x for x in d.decisions if x.link != "intact"]
    assert [x.decision_id for x in bad] == [victim]
    assert bad[0].link == ("modified" if how == "modified" else "unlinked")
    if how == "modified":
        assert bad[0].verdict == "ALLOW"  # shown as the file now says, and flagged
        assert "was modified: its content does not match its hash" in bad[0].problem
    else:
        assert "does not match the prev_hash of seq" in bad[0].problem
    j = d.as_json()
    assert j["counts"]["chain_problems"] == 1
    assert j["chain"]["problems"][0]["decision_id"] == victim
    assert "WARNING: 1 of 10 audit records do not check against the hash chain" in j["summary"]["en"]
    assert "ATTENTION : 1 enregistrement(s) d'audit sur 10" in j["summary"]["fr"]
    page = html.render(d)
    assert "do not check against the hash chain" in page and ("MODIFIED" in page or "UNLINKED" in page)


def test_since_and_until(history: tuple[Path, list[str]]) -> None:
    conf, _ = history
    since, until = datetime(2026, 9, 15, tzinfo=UTC), datetime(2026, 10, 12, 8, 30, tzinfo=UTC)
    d = build(conf, since, until)
    expected = audit_rows(conf, since=since.timestamp(), until=until.timestamp())
    assert [x.decision_id for x in d.decisions] == [r["decision_id"] for r in expected]
    assert [x.time[:10] for x in d.decisions] == ["2026-09-15", "2026-09-22", "2026-10-01", "2026-10-08"]
    j = d.as_json()
    assert j["period"] == {"since": "2026-09-15T00:00:00+00:00", "until": "2026-10-12T08:30:00+00:00"}
    assert j["summary"]["en"].startswith("4 calls to +33612000010 between 15 September 2026 and 8 October 2026 "
                                         "(period from 15 September 2026 until 12 October 2026, excluded)")
    assert all(x["chain"]["status"] == "intact" for x in j["decisions"])  # neighbours outside the period read too
    empty = build(conf, datetime(2027, 1, 1, tzinfo=UTC))
    assert empty.decisions == () and empty.summary["en"].startswith("No call to +33612000010 in the audit trail")


def test_html_escapes_what_the_records_hold(history: tuple[Path, list[str]]) -> None:
    conf, ids = history
    tamper(conf.parent / "audit.db", ids[0], detail="<script>alert(1)</script>", lists="not json <b>")
    page = html.render(build(conf))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "not json &lt;b&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page  # self-contained


def test_pdf_opens_and_says_what_the_page_says(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    pdf_mod = pytest.importorskip("gateway.proof.pdf", reason="fpdf2 (the pdf extra) is not installed")
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 (test extra) is not installed")
    conf, ids = history
    tamper(conf.parent / "audit.db", ids[3], verdict="BLOCK")
    data = pdf_mod.render(build(conf))
    assert data.startswith(b"%PDF-")
    doc = pdfium.PdfDocument(data)
    text = "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    assert "+33612000010" in text and "Résumé" in text and "MODIFIED" in text
    for i in range(len(doc)):  # every page renders (PDFium, Chrome's PDF engine)
        image = doc[i].render(scale=1.5).to_pil()
        assert image.width > 800
        image.save(tmp_path / f"page{i}.png")
    flat = "".join(text.split())  # a decision id may wrap in its cell
    assert all(x in flat for x in ids)
