"""``serve`` wiring: a reload (SIGHUP) re-reads the config and lists; a bad config changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.app import start
from gateway.config import load


async def test_reload_applies_new_campaigns_and_lists(sample_config_path: Path) -> None:
    running = await start(load(sample_config_path), web=False)
    try:
        gw = running.gateway
        assert (await gw.check("0612000077", "legacy", record=False)).decision.verdict in ("ALLOW", "BLOCK")
        assert (await gw.check("0612000077", "autumn", record=False)).decision.reason == "unknown_campaign"

        (sample_config_path.parent / "bloctel.txt").write_text("0612000077\n")
        sample_config_path.write_text(sample_config_path.read_text() + """
[campaigns.autumn]
regime = "opposition"
lists = ["bloctel"]
caller_id = "0162000000"
check_hours = false
check_holidays = false
""")
        await running.reload()
        d = (await gw.check("0612000077", "autumn", record=False)).decision
        assert (d.verdict, d.reason) == ("BLOCK", "opposition_list")
        assert "autumn" in running.config.campaigns
    finally:
        await running.close()


async def test_a_bad_config_on_reload_keeps_the_running_one(sample_config_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    running = await start(load(sample_config_path), web=False)
    try:
        text = sample_config_path.read_text()
        sample_config_path.write_text(text.replace('mode = "monitor"', 'mode = "loud"'))
        with caplog.at_level(logging.ERROR):
            await running.reload()
        assert "config not applied" in caplog.text and "mode" in caplog.text
        assert running.gateway.engine.campaigns["survey"].mode == "monitor"
        # a listen address change is reported as needing a restart, and the rest applies
        sample_config_path.write_text(text.replace('listen = "127.0.0.1:0"\nadmin', 'listen = "127.0.0.1:9"\nadmin'))
        with caplog.at_level(logging.WARNING):
            await running.reload()
        assert "[web] listen changed: restart" in caplog.text
    finally:
        await running.close()


async def test_start_wires_metrics_into_the_audit_log(sample_config_path: Path) -> None:
    sample_config_path.write_text(sample_config_path.read_text().replace(
        'timezone = "Europe/Paris"', 'timezone = "Europe/Paris"\naudit = "audit.db"', 1))
    running = await start(load(sample_config_path), web=False)
    try:
        assert running.audit is not None and running.metrics is not None
        assert running.audit.metrics is running.metrics  # each group commit is reported
        registry = running.metrics.registry
        assert registry.get_sample_value("dnc_audit_up") == 1
        await running.gateway.check("0612000010", "prospect")
        # An ALLOW is committed before the answer, but at some hours (13:00-14:00 in Paris) the call is a BLOCK,
        # whose record rides the next group commit: a call run in the writer after it is the barrier either way
        # (the writer wakes a group's waiters, and reports it to metrics, before it runs the calls queued with it).
        await running.audit.run_in_writer(lambda conn: None)
        assert (registry.get_sample_value("dnc_audit_records_total") or 0) >= 1
    finally:
        await running.close()


async def test_reload_tells_the_page_and_metrics_the_new_campaigns(sample_config_path: Path) -> None:
    running = await start(load(sample_config_path), web=True)
    try:
        assert running.metrics is not None and running.web is not None
        sample_config_path.write_text(sample_config_path.read_text() + """
[campaigns.autumn]
regime = "opposition"
lists = ["bloctel"]
caller_id = "0162000000"
""")
        await running.reload()
        assert running.metrics.campaign_label("autumn") == "autumn"
        assert "autumn" in running.web.hub.board.campaigns
    finally:
        await running.close()
