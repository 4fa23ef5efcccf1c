"""The consent regime's test (policy/consent.py): lifetime in the callee's calendar, undated consents,
withdrawals and the consents recorded at a call (issue 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.policy.decision import Basis
from gateway.registry.model import Registries
from gateway.state.model import History

from .helpers import PARIS, decide, key, registries

REUNION = ZoneInfo("Indian/Reunion")
ANY_TIME = {"check_hours": False, "check_holidays": False, "check_cooldown": False}


def dated(number: str, when: date | datetime, withdrawals: dict[int, date | datetime] | None = None) -> Registries:
    regs = registries()
    return Registries(regs.lists, {"consent": {key(number): when}}, regs.kinds, withdrawals=withdrawals or {})


@pytest.mark.parametrize(("day", "verdict", "rule"), [
    (date(2026, 11, 23), "ALLOW", "allowed"),  # the day before the expiry: the last day in force
    (date(2026, 11, 24), "BLOCK", "no_consent.expired"),  # collection + 365 days: expired
    (date(2026, 11, 25), "BLOCK", "no_consent.expired"),
])
def test_a_consent_expires_on_the_exact_day(day: date, verdict: str, rule: str) -> None:
    regs = dated("0612000009", date(2025, 11, 24))
    d = decide("0612000009", at=datetime(day.year, day.month, day.day, 0, 1, tzinfo=PARIS), regs=regs, **ANY_TIME)
    assert (d.verdict, d.rule) == (verdict, rule), d.detail
    if verdict == "BLOCK":
        assert d.reason == "no_consent"
        assert d.detail == ("the consent on the list 'consent' collected on 2025-11-24 expired on 2026-11-24 "
                            "(consent_max_age_days = 365)")
    else:
        assert d.basis is Basis.CONSENT and d.detail.endswith("given on 2025-11-24, valid until 2026-11-23")


@pytest.mark.parametrize(("number", "zone", "expires"), [
    # The same instant is 22:00 on 23 Nov in Paris and 01:00 on 24 Nov in Réunion: each callee's calendar.
    ("0612000009", PARIS, date(2026, 11, 23)),
    ("0692000009", REUNION, date(2026, 11, 24)),
])
def test_the_collection_day_is_the_callees(number: str, zone: ZoneInfo, expires: date) -> None:
    regs = dated(number, datetime(2025, 11, 23, 21, 0, tzinfo=UTC))
    for day, verdict in ((expires - timedelta(days=1), "ALLOW"), (expires, "BLOCK"), (expires + timedelta(1), "BLOCK")):
        at = datetime(day.year, day.month, day.day, 23, 59, tzinfo=zone)
        assert decide(number, at=at, regs=regs, **ANY_TIME).verdict == verdict, (number, day)
        at = datetime(day.year, day.month, day.day, 0, 0, tzinfo=zone)
        assert decide(number, at=at, regs=regs, **ANY_TIME).verdict == verdict, (number, day)


def test_no_limit_and_a_shorter_one() -> None:
    regs = dated("0612000009", date(2020, 1, 1))
    assert decide("0612000009", regs=regs, consent_max_age_days=0).verdict == "ALLOW"
    regs = dated("0612000009", date(2026, 10, 25))  # 30 days before NOW (24 Nov)
    assert decide("0612000009", regs=regs, consent_max_age_days=30).rule == "no_consent.expired"
    assert decide("0612000009", regs=regs, consent_max_age_days=31).verdict == "ALLOW"


def test_undated_consents_under_both_settings() -> None:
    allowed = decide("0612000009")  # on the plain consent list: no date
    assert (allowed.verdict, allowed.basis) == ("ALLOW", Basis.CONSENT_UNDATED)
    assert allowed.warnings and "undated consent" in allowed.warnings[0]
    assert allowed.as_json()["basis"] == "consent_undated"
    blocked = decide("0612000009", undated_consent="block")
    assert (blocked.verdict, blocked.reason, blocked.rule) == ("BLOCK", "no_consent", "no_consent.undated")
    assert "no proof" in blocked.detail
    # A dated consent needs no leniency.
    assert decide("0612000009", regs=dated("0612000009", date(2026, 9, 1)), undated_consent="block").verdict == "ALLOW"


def test_a_refusal_ends_consent_and_a_newer_consent_restores_it() -> None:
    refused = NOW_UTC - timedelta(days=5)
    d = decide("0612000005", history=History(last_refusal=refused, consent_at=refused - timedelta(days=30)), **ANY_TIME)
    assert (d.reason, d.rule) == ("no_consent", "no_consent.withdrawn")
    assert d.detail == f"consent ended by a refusal on {refused.astimezone(PARIS).date().isoformat()}"
    # The same day, an hour later: instants compare as instants.
    d = decide("0612000005", history=History(last_refusal=refused, consent_at=refused + timedelta(hours=1)),
               **ANY_TIME)
    assert (d.verdict, d.basis) == ("ALLOW", Basis.CONSENT)
    assert "recorded at a call or over the API" in d.detail
    # A list consent dated the day of the refusal does not restore it; the day after does.
    day = refused.astimezone(PARIS).date()
    assert decide("0612000009", regs=dated("0612000009", day), history=History(last_refusal=refused),
                  **ANY_TIME).rule == "no_consent.withdrawn"
    assert decide("0612000009", regs=dated("0612000009", day + timedelta(days=1)),
                  history=History(last_refusal=refused), **ANY_TIME).verdict == "ALLOW"
    # An undated consent never outlives a refusal.
    assert decide("0612000009", history=History(last_refusal=refused), **ANY_TIME).rule == "no_consent.withdrawn"


def test_a_withdrawal_from_a_file_or_the_side_store_ends_consent() -> None:
    regs = dated("0612000009", date(2026, 9, 1), {key("0612000009"): date(2026, 10, 2)})
    d = decide("0612000009", regs=regs)
    assert (d.rule, d.detail) == ("no_consent.withdrawn", "consent ended by a withdrawal on 2026-10-02")
    later = dated("0612000009", date(2026, 10, 3), {key("0612000009"): date(2026, 10, 2)})
    assert decide("0612000009", regs=later).verdict == "ALLOW"


def test_a_consent_dated_after_the_call_is_no_proof() -> None:
    d = decide("0612000009", regs=dated("0612000009", date(2026, 12, 1)))
    assert (d.reason, d.rule) == ("no_consent", "no_consent.future")


NOW_UTC = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_a_consent_after_a_refusal_lifts_the_cooldown_only_when_the_campaign_says_so() -> None:
    """D223-9 says nothing of a consent given after a refusal: the cooldown stands unless the campaign lifts it."""
    refused = NOW_UTC - timedelta(days=5)
    anytime = {"check_hours": False, "check_holidays": False}
    history = History(last_refusal=refused, consent_at=refused + timedelta(hours=1))
    d = decide("0612000005", history=history, **anytime)
    assert (d.reason, d.rule) == ("refusal_cooldown", "refusal_cooldown")
    d = decide("0612000005", history=history, consent_lifts_cooldown=True, **anytime)
    assert (d.verdict, d.basis) == ("ALLOW", Basis.CONSENT)
    # A consent older than the refusal lifts nothing, whatever the setting.
    older = History(last_refusal=refused, consent_at=refused - timedelta(days=1))
    assert decide("0612000005", history=older, consent_lifts_cooldown=True, **anytime).verdict == "BLOCK"


def test_a_blocked_call_never_carries_an_allowed_on_warning() -> None:
    """A call on an undated consent (undated_consent = allow) that another rule blocks: its warnings do not say
    it was "allowed on an undated consent" (they used to, beside the BLOCK)."""
    for at in (datetime(2026, 11, 24, 3, 0, tzinfo=PARIS), datetime(2026, 11, 22, 11, 0, tzinfo=PARIS)):
        blocked = decide("0612000009", at=at)  # the small hours, a Sunday: the calling-hours rules block
        assert blocked.verdict == "BLOCK", blocked
        assert not any(w.startswith("allowed") for w in blocked.warnings), blocked.warnings
