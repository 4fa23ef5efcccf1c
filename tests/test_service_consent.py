"""Issue 13, in one process: a consent and a refusal recorded through the service decide at once and leave
their proof (source, evidence, channel) in the side store."""

from __future__ import annotations

from datetime import timedelta

from gateway.config import Config
from gateway.registry.sidestore import EntryOrigin
from gateway.service import Gateway
from tests.conftest import FIXED_NOW


async def test_refusal_ends_consent_with_its_channel_and_a_newer_consent_restores_it(sample_config: Config) -> None:
    gw = Gateway(sample_config, clock=lambda: FIXED_NOW)
    gw.holder.load_all()
    try:
        n = "0612000077"
        t0 = FIXED_NOW - timedelta(days=90)  # far enough for the 60-day cooldown to be over
        await gw.consent(n, source="call", evidence="rec-1", channel="phone", now=t0)
        assert (await gw.check(n, "prospect", record=False)).decision.verdict == "ALLOW"
        await gw.refusal(n, now=t0 + timedelta(days=1), channel="call", origin=EntryOrigin.CALL,
                         detail="channel PJSIP/trunk-0001")
        d = (await gw.check(n, "prospect", record=False)).decision
        assert (d.reason, d.rule) == ("no_consent", "no_consent.withdrawn")
        await gw.consent(n, source="web form", evidence="f-9", now=t0 + timedelta(days=2))
        d = (await gw.check(n, "prospect", record=False)).decision
        assert (d.verdict, d.basis) == ("ALLOW", "consent")
        with gw.holder.side_lock:
            store = gw.holder.side()
            assert store is not None
            first, second = store.entries(gw.normaliser.parse(n).key)
        assert (first.evidence, first.revoked_channel, first.revoked_source) == (
            "rec-1", "call", "refusal (channel PJSIP/trunk-0001)")
        assert first.revoked_at == t0 + timedelta(days=1)
        assert (second.source, second.active, second.origin) == ("web form", True, EntryOrigin.CALL)
    finally:
        await gw.close()
