"""Reload swaps atomically and a list that fails keeps its last good version."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from gateway.config import Config
from gateway.numbers import Normaliser
from gateway.registry import snapshot
from gateway.registry.holder import FailureOrigin, RegistryHolder


def test_reload_keeps_last_good_list_when_new_file_is_corrupt(sample_config: Config, tmp_path: Path) -> None:
    holder = RegistryHolder(sample_config.lists, Normaliser("FR"))
    first = holder.load_all()
    assert first.ok and set(first.loaded) == set(sample_config.lists)
    before = holder.current
    key = Normaliser("FR").parse("0612000001").key
    assert key in before.lists["bloctel"]

    path = sample_config.lists["bloctel"].path
    assert path is not None
    path.write_bytes(snapshot.MAGIC + b"\x00\x00\x00\x10{not json at all")
    result = holder.load_all()
    assert not result.ok and "bloctel" in result.failed and "corrupt snapshot header" in result.failed["bloctel"]
    assert holder.current.lists["bloctel"] is before.lists["bloctel"]  # still serving the previous version
    assert key in holder.current.lists["bloctel"]
    assert holder.errors["bloctel"]

    path.write_text("0612000001\n0612000099\n")
    result = holder.load_all()
    assert result.ok and "bloctel" not in holder.errors
    assert Normaliser("FR").parse("0612000099").key in holder.current.lists["bloctel"]


def test_old_snapshot_serves_until_new_one_is_complete(sample_config: Config) -> None:
    holder = RegistryHolder(sample_config.lists, Normaliser("FR"))
    holder.load_all()
    seen = []
    holder.on_swap(lambda regs, result: seen.append((regs, result)))

    async def go() -> None:
        old = holder.current
        task = asyncio.create_task(holder.reload())
        assert holder.current is old  # nothing swapped before the load completes
        await task
        assert holder.current is not old

    asyncio.run(go())
    assert len(seen) == 1


def test_missing_list_is_reported_and_known_by_kind(sample_config: Config) -> None:
    path = sample_config.lists["bloctel"].path
    assert path is not None
    path.unlink()
    holder = RegistryHolder(sample_config.lists, Normaliser("FR"))
    result = holder.load_all()
    assert "no such file" in result.failed["bloctel"]
    assert holder.current.get("bloctel") is None
    assert holder.current.kind_of("bloctel") is not None  # the engine still treats it as an opposition list


def test_consent_dates_from_the_side_store_and_deltas_apply_on_reload(sample_config: Config, tmp_path: Path) -> None:
    from datetime import date

    from gateway.registry.sidestore import EntryKind, SideStore

    norm = Normaliser("FR")
    store_path = tmp_path / "side.db"
    with SideStore(store_path) as store:
        store.add("consent", norm.parse("0612000009").key, EntryKind.CONSENT, date(2026, 10, 1), "web form")
    holder = RegistryHolder(sample_config.lists, norm, store_path)
    holder.load_all()
    assert holder.current.consent_date("consent", norm.parse("0612000009").key) == date(2026, 10, 1)

    spec = sample_config.lists["bloctel"]
    assert spec.path is not None
    deltas = spec.path.parent / "bloctel.d"
    deltas.mkdir()
    (deltas / "1.delta").write_text("# as_of: 2026-11-21\n+0612000077\n-0612000001\n")
    holder.specs["bloctel"] = replace(spec, deltas=str(deltas / "*.delta"))
    assert holder.load_all().ok
    bloctel = holder.current.lists["bloctel"]
    assert norm.parse("0612000077").key in bloctel and norm.parse("0612000001").key not in bloctel


def test_a_failed_reload_is_kept_with_when_and_why_until_a_load_succeeds(sample_config: Config) -> None:
    """Issue 15 #8: the old version keeps serving, and the holder says that the last reload failed, since when."""
    now = [1_000.0]
    holder = RegistryHolder(sample_config.lists, Normaliser("FR"), clock=lambda: now[0])
    assert holder.load_all().ok and holder.failures == {} and holder.last_failure_at == {}
    path = sample_config.lists["bloctel"].path
    assert path is not None
    path.unlink()
    holder.load_all()
    now[0] = 1_060.0
    holder.load_all()
    failure = holder.failures["bloctel"]
    assert (failure.since, failure.at, failure.count, failure.origin) == (1_000.0, 1_060.0, 2, FailureOrigin.RELOAD)
    assert "no such file" in failure.error and holder.errors == {"bloctel": failure.error}
    assert "bloctel" in holder.current.lists  # still serving
    assert set(holder.failures) == {"bloctel"}

    path.write_text("0612000001\n")
    now[0] = 1_120.0
    assert holder.load_all().ok
    assert holder.failures == {} and holder.errors == {}
    assert holder.last_failure_at == {"bloctel": 1_060.0}  # when it last failed, for the metric


def test_an_unchanged_poll_clears_only_a_poll_failure(sample_config: Config) -> None:
    holder = RegistryHolder(sample_config.lists, Normaliser("FR"), clock=lambda: 5.0)
    seen: list[Mapping[str, str]] = []
    holder.on_swap(lambda regs, result: seen.append(result.failed))
    holder.poll_failed("bloctel", "HTTP 503")
    assert seen == [{"bloctel": "HTTP 503"}]  # the page is told at once
    assert holder.failures["bloctel"].origin is FailureOrigin.POLL
    holder.clear_failure("bloctel", FailureOrigin.POLL)
    assert holder.failures == {}
    holder.record_failure("bloctel", "cannot read the file", FailureOrigin.RELOAD)
    holder.clear_failure("bloctel", FailureOrigin.POLL)  # the URL is fine; the local file still is not
    assert set(holder.failures) == {"bloctel"}
    assert holder.load_all().ok  # the local file loads now
    assert holder.failures == {}
    holder.poll_failed("bloctel", "HTTP 503")
    assert holder.load_all().ok  # the local copy loads; the URL still fails
    assert holder.failures["bloctel"].error == "HTTP 503"
