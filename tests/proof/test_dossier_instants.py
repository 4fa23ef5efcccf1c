"""The dossier states what happened at each instant (pure: ``assemble`` on values).

Before: a consent withdrawn later the same day as a call made the dossier say the call was "allowed on the consent
list alone" (naming a list that does not hold the number) while the consent with its evidence was in force; its
days were the UTC days of the records, one off from the decisions across the callee's midnight (Montréal: every
consent recorded after 18:00); ``valid_until`` disagreed with the decision's own detail; and a record written far
from its decision time did not say so.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.audit import Link, RecordCheck
from gateway.proof.dossier import AuditPart, CampaignFacts, Ground, Sources, assemble
from gateway.registry.sidestore import LIVE_LIST, Entry, EntryKind, EntryOrigin

NUMBER = "+15145550123"
KEY = 15145550123
MONTREAL = "America/Toronto"  # the callee's zone (Montréal keeps Toronto's time)


def row(seq: int, at: datetime, *, written: datetime | None = None, detail: str = "") -> tuple[Any, ...]:
    cols = (f"d{seq}", at.timestamp(), "callback", NUMBER, "ALLOW", None, "allowed", 0, "enforce", "consent",
            '{"consent": "v1"}', "", "", "", "agi", detail, (written or at).timestamp())
    return (seq, *cols, "p", "h")


def consent(id_: int, collected: datetime, *, revoked: datetime | None = None) -> Entry:
    return Entry(id_, LIVE_LIST, KEY, EntryKind.CONSENT, collected.date(), "call", "recording-17",
                 collected, revoked_on=revoked.date() if revoked else None,
                 revoked_source="refusal (call)" if revoked else None, collected_at=collected,
                 revoked_at=revoked, origin=EntryOrigin.CALL)


def sources(entries: list[Entry], rows: list[tuple[Any, ...]]) -> Sources:
    facts = {"callback": CampaignFacts("callback", "consent", None, None, None, consent_max_age_days=365)}
    return Sources(NUMBER, KEY, MONTREAL, datetime(2026, 12, 1, tzinfo=UTC), entries=entries, campaigns=facts,
                   audit=AuditPart("audit.db", [(r, RecordCheck(r[0], Link.INTACT)) for r in rows], {}))


def test_a_consent_withdrawn_later_the_same_day_is_what_the_call_rested_on() -> None:
    collected = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in Montréal
    call = collected + timedelta(minutes=30)
    stop = collected + timedelta(hours=3)  # "stop" said later that day
    d = assemble(sources([consent(1, collected, revoked=stop)], [row(1, call)]))
    line = d.decisions[0]
    assert (line.ground, line.consent_id) == (Ground.CONSENT, 1)
    assert d.consents[0].calls == 1
    # A call after the withdrawal does not rest on it.
    after = assemble(sources([consent(1, collected, revoked=stop)], [row(1, stop + timedelta(minutes=5))]))
    assert after.decisions[0].ground is Ground.CONSENT_LIST


def test_days_are_the_callees_and_valid_until_agrees_with_the_detail() -> None:
    collected = datetime(2026, 11, 25, 0, 30, tzinfo=UTC)  # 19:30 on 24 Nov in Montréal
    call = collected + timedelta(minutes=10)
    detail = "prior consent recorded at a call or over the API, given on 2026-11-24, valid until 2027-11-23"
    d = assemble(sources([consent(1, collected)], [row(1, call, detail=detail)]))
    j = d.as_json()
    assert j["consents"][0]["given_on"] == "2026-11-24"
    assert j["consents"][0]["collected_at"].startswith("2026-11-24T19:30:00-05:00")
    x = j["decisions"][0]
    assert x["local_time"].startswith("2026-11-24T19:40:00-05:00")
    assert x["valid_until"] == "2027-11-23" and x["valid_until"] in x["detail"]
    assert date.fromisoformat(x["valid_until"]) - date.fromisoformat(j["consents"][0]["given_on"]) == \
        timedelta(days=364)


def test_the_written_time_is_shown_where_it_differs_from_the_decision_time() -> None:
    at = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    d = assemble(sources([], [row(1, at), row(2, at, written=at + timedelta(days=6))]))
    same, late = d.decisions
    assert same.written_local is None
    assert late.written_local == "2026-11-30T10:00:00-05:00"
    assert late.as_json()["written_local_time"] == late.written_local
    from gateway.proof import html
    assert "written 2026-11-30 10:00:00-05:00" in html.render(d)
