"""Registry freshness levels and AMI status as the page and /healthz show them (pure)."""

from __future__ import annotations

from datetime import date

import pytest
from pyroaring import FrozenBitMap64

from gateway.config import Config
from gateway.numbers import Normaliser
from gateway.registry.holder import FailureOrigin, RegistryHolder
from gateway.registry.model import ListKind, ListMeta, ListSpec, Registries, RegistryList
from gateway.web.status import Freshness, ami_status, freshness, lists_status, mask_text


@pytest.mark.parametrize(("age", "limit", "loaded", "expected"), [
    (0, 30, True, Freshness.OK),
    (23, 30, True, Freshness.OK),
    (24, 30, True, Freshness.WARN),  # 80 % of the maximum age
    (30, 30, True, Freshness.WARN),  # still allowed by the engine on its last day
    (31, 30, True, Freshness.STALE),
    (None, 30, True, Freshness.STALE),  # undated with a maximum: the engine blocks it as stale
    (400, None, True, Freshness.OK),  # no maximum configured
    (None, None, False, Freshness.MISSING),
])
def test_freshness(age: int | None, limit: int | None, loaded: bool, expected: Freshness) -> None:
    assert freshness(age, limit, loaded) is expected


def test_lists_status_masks_numbers_in_errors(sample_config: Config) -> None:
    holder = RegistryHolder(sample_config.lists, Normaliser("FR"), clock=lambda: 60.0)
    holder.load_all()
    holder.record_failure("litigators", "litigators.txt:3: '0612345678' is not a number", FailureOrigin.RELOAD)
    status = {s["name"]: s for s in lists_status(holder.specs, holder.current, holder.failures, date(2026, 12, 15))}
    assert status["bloctel"]["age_days"] == 25 and status["bloctel"]["freshness"] == "warn"
    assert status["bloctel"]["version"] == holder.current.version("bloctel")
    assert status["customers"]["freshness"] == "ok" and status["customers"]["as_of"] is None
    assert status["litigators"]["error"] == "litigators.txt:3: '0612••••78' is not a number"
    assert status["litigators"]["reload_failed"] == {"error": "litigators.txt:3: '0612••••78' is not a number",
                                                     "at": 60.0, "since": 60.0, "origin": "reload", "count": 1}
    assert status["bloctel"]["reload_failed"] is None


def test_mask_text() -> None:
    assert mask_text("call +33612345678 refused") == "call +3361•••••78 refused"
    assert mask_text("line 12 of 40000 lines") == "line 12 of 40000 lines"


def test_ami_status() -> None:
    assert ami_status(None) == {"state": "off", "connected": None}

    class Watcher:
        connected = True

        def status(self) -> dict[str, object]:
            return {"connected": True, "address": "pbx:5038", "reconnects": 2, "secret": "x", "nested": {}}

    assert ami_status(Watcher()) == {"state": "connected", "connected": True,
                                     "detail": {"connected": True, "address": "pbx:5038", "reconnects": 2}}


def test_a_national_list_shows_the_laws_age_as_the_engine_applies_it() -> None:
    """A US list with no max_age_days is stale after 31 days for the engine: the page and /healthz say so too."""
    spec = ListSpec("us", ListKind.OPPOSITION, None, country="US")
    lst = RegistryList(ListMeta("us", ListKind.OPPOSITION, "t", date(2026, 6, 1), 0, "0" * 64), FrozenBitMap64())
    [row] = lists_status({"us": spec}, Registries({"us": lst}), {}, date(2026, 7, 14))
    assert row["max_age_days"] == 31 and row["freshness"] == "stale" and "64.1200" in row["legal_max_age"]
