"""The service's side effects in order: state failure policy, audit failure policy, observers, the cap race."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime

import pytest

from gateway.audit import AuditRecord, Source
from gateway.config import Config
from gateway.service import AuditUnavailable, Gateway, Outcome
from gateway.state.model import Cap, History, StateUnavailable
from gateway.state.store import EmbeddedState
from tests.state.helpers import RETENTION

from .conftest import FIXED_NOW


class DownState(EmbeddedState):
    def history_now(self, professional: str, key: int) -> History:
        raise StateUnavailable("connection refused")


class DownStateAwaited(DownState):
    """The same, through the coroutines (as a remote store is called)."""

    async def history(self, professional: str, key: int) -> History:
        raise StateUnavailable("connection refused")


class FullAudit:
    def __init__(self) -> None:
        self.records: list[tuple[AuditRecord, bool]] = []

    async def append(self, record: AuditRecord, *, durable: bool) -> None:
        if durable:
            raise AuditUnavailable("database or disk is full")
        self.records.append((record, durable))

    def append_nowait(self, record: AuditRecord) -> None:
        self.records.append((record, False))


def _gateway(config: Config, **kw: object) -> Gateway:
    gw = Gateway(config, clock=lambda: FIXED_NOW, **kw)  # type: ignore[arg-type]
    gw.holder.load_all()
    return gw


@pytest.mark.parametrize("down", [DownState, DownStateAwaited])
async def test_state_down_fails_closed_by_default(sample_config: Config, down: type[DownState]) -> None:
    gw = _gateway(sample_config, state=down(retention=RETENTION))
    d = (await gw.check("0612000009", "prospect")).decision
    assert (d.verdict, d.reason) == ("BLOCK", "state_unavailable")
    assert (await gw.check("112", "prospect")).decision.verdict == "ALLOW"  # emergency never depends on state


@pytest.mark.parametrize("down", [DownState, DownStateAwaited])
async def test_state_down_fails_open_when_configured(sample_config: Config, down: type[DownState]) -> None:
    config = replace(sample_config, gateway=replace(sample_config.gateway, state_failure="open"))
    gw = _gateway(config, state=down(retention=RETENTION))
    assert (await gw.check("0612000009", "prospect")).decision.verdict == "ALLOW"
    assert (await gw.check("0612000001", "legacy")).decision.reason == "opposition_list"


async def test_an_allow_that_cannot_be_audited_is_refused(sample_config: Config) -> None:
    audit = FullAudit()
    gw = _gateway(sample_config, audit=audit)
    out = await gw.check("0612000009", "prospect")
    assert (out.decision.verdict, out.decision.reason) == ("BLOCK", "audit_unavailable")
    blocked = await gw.check("0612000001", "legacy", now=datetime.fromisoformat("2026-03-10T11:00:00+01:00"))
    assert blocked.decision.reason == "opposition_list"
    assert [r.verdict for r, durable in audit.records] == ["BLOCK"]  # blocks are queued, not waited for


def test_check_now_needs_no_coroutine_unless_it_must_wait(sample_config: Config) -> None:
    """Embedded state, no durable record to wait for: the FastAGI server answers without a task."""
    gw = _gateway(sample_config)
    out = gw.check_now("0612000009", "prospect")
    assert isinstance(out, Outcome) and out.decision.verdict == "ALLOW"
    audited = _gateway(sample_config, audit=FullAudit())
    blocked = audited.check_now("0612000001", "legacy", now=datetime.fromisoformat("2026-03-10T11:00:00+01:00"))
    assert isinstance(blocked, Outcome) and blocked.decision.reason == "opposition_list"
    pending = audited.check_now("0612000009", "prospect")  # an ALLOW waits for its durable record
    assert not isinstance(pending, Outcome)
    assert asyncio.run(audited.finish(pending)).decision.reason == "audit_unavailable"
    remote = _gateway(sample_config, state=DownStateAwaited(retention=RETENTION))
    later = remote.check_now("0612000009", "prospect")
    assert not isinstance(later, Outcome)
    assert asyncio.run(remote.finish(later)).decision.reason == "state_unavailable"


async def test_record_has_what_compliance_needs(sample_config: Config) -> None:
    seen: list[Outcome] = []

    class Obs:
        def decided(self, outcome: Outcome, seconds: float) -> None:
            seen.append(outcome)

    class Broken:
        def decided(self, outcome: Outcome, seconds: float) -> None:
            raise RuntimeError("observer bug")

    gw = _gateway(sample_config)
    gw.observers += [Broken(), Obs()]
    out = await gw.check("06 12 00 00 09", "prospect", channel="PJSIP/a-1", uniqueid="17.5")
    rec = out.record
    assert rec.decision_id == out.decision_id and len(out.decision_id) == 22
    assert (rec.number, rec.campaign, rec.verdict, rec.caller_id) == ("+33612000009", "prospect", "ALLOW",
                                                                     "0162000000")
    assert (rec.channel, rec.uniqueid, rec.regime) == ("PJSIP/a-1", "17.5", "consent")
    assert rec.lists["consent"].startswith("2026-11-20:")
    assert seen == [out]


async def test_cap_is_checked_atomically_when_counting(sample_config: Config) -> None:
    class RacingState(EmbeddedState):
        """Another gateway took the last attempts between our read and our count."""

        async def history(self, professional: str, key: int) -> History:
            return History()

        async def record_attempt(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
            assert cap is not None and cap.limit == 4
            return False

    gw = _gateway(sample_config, state=RacingState(retention=RETENTION))
    d = (await gw.check("0612000009", "prospect")).decision
    assert (d.verdict, d.reason) == ("BLOCK", "frequency_cap")


async def test_refusal_and_optout(sample_config: Config) -> None:
    gw = _gateway(sample_config)
    await gw.refusal("0612000009")
    d = (await gw.check("0612000009", "prospect")).decision
    assert (d.reason, d.rule) == ("no_consent", "no_consent.withdrawn")
    await gw.optout("0612000105")
    assert (await gw.check("0612000105", "prospect")).decision.reason == "internal_dnc"
    assert (await gw.optout("garbage")).key == 0


@pytest.mark.parametrize("dialled", ["", "x" * 10_000, "\x00\xff"])
async def test_garbage_is_an_invalid_number_not_a_crash(sample_config: Config, dialled: str) -> None:
    gw = _gateway(sample_config)
    out = await gw.check(dialled, "prospect")
    assert out.decision.reason == "invalid_number" and len(out.record.number) <= 32


async def test_an_unknown_campaign_is_a_rate_limited_warning_naming_it(sample_config: Config,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Issue 15 #9: calls with a campaign name the dialplan got wrong logged only at INFO, as "unknown"."""
    gw = _gateway(sample_config)
    now = [1000.0]
    gw.monotonic = lambda: now[0]
    with caplog.at_level(logging.WARNING, logger="gateway.service"):
        for _ in range(3):
            assert (await gw.check("0612000009", "prospekt")).decision.reason == "unknown_campaign"
        await gw.check("0612000009", "legacyy")
        now[0] += 61
        await gw.check("0612000009", "prospekt")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 3, warned  # prospekt once, legacyy once, prospekt again a minute later
    assert "unknown campaign 'prospekt' sent by the dialplan" in warned[0]
    assert "configured: legacy, prospect, survey" in warned[0]
    assert "0612000009" not in " ".join(warned)  # the number is personal data


class KeptAudit:
    """An audit sink that keeps every record."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def append(self, record: AuditRecord, *, durable: bool) -> None:
        self.records.append(record)

    def append_nowait(self, record: AuditRecord) -> None:
        self.records.append(record)


class AwaitedState(EmbeddedState):
    """The embedded store called through its coroutines, as a remote one is (Gateway.finish)."""

    async def history(self, professional: str, key: int) -> History:
        return await super().history(professional, key)


@pytest.mark.parametrize("store", [EmbeddedState, AwaitedState])
async def test_audited_without_counting(sample_config: Config, store: type[EmbeddedState]) -> None:
    """Issue 15 #11: a dry run (FastAGI's dryrun route) is decided with the history and audited, never counted."""
    audit = KeptAudit()
    state = store(retention=RETENTION)
    gw = _gateway(sample_config, state=state, audit=audit)
    dry = [(await gw.check("0612000009", "prospect", source=Source.DRY_RUN, count=False)).decision
           for _ in range(5)]
    assert [(d.verdict, d.reason) for d in dry] == [("ALLOW", None)] * 5
    key = gw.normaliser.parse("0612000009").key
    assert (await state.history("acme", key)).attempts == ()
    assert [r.source for r in audit.records] == ["dry_run"] * 5
    # Unchanged: a check records and counts, the fifth is over the cap.
    real = [(await gw.check("0612000009", "prospect")).decision.reason for _ in range(5)]
    assert real == [None, None, None, None, "frequency_cap"] and len(audit.records) == 10
    # record=False still means neither (the web API's dry run), whatever count says.
    await gw.check("0612000010", "prospect", record=False, count=True)
    assert (await state.history("acme", gw.normaliser.parse("0612000010").key)).attempts == ()
    assert len(audit.records) == 10
