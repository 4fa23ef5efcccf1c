"""The shrink guard on the holder: a new version that drops too many numbers is held back, in memory and, at
a restart, against the count last in service."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.numbers import Normaliser
from gateway.registry.holder import RegistryHolder
from gateway.registry.model import ListKind, ListSpec, RegistryError

NUMBERS = [f"0612{i:06d}" for i in range(100)]


def _holder(tmp_path: Path, kind: ListKind = ListKind.OPPOSITION, max_shrink: float | None = None
            ) -> RegistryHolder:
    spec = ListSpec("dnc", kind, tmp_path / "dnc.txt", max_shrink=max_shrink)
    return RegistryHolder({"dnc": spec}, Normaliser("FR"), tmp_path / "side.db")


def test_a_restart_on_a_truncated_copy_holds_it_back_until_accepted(tmp_path: Path) -> None:
    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS) + "\n")
    assert _holder(tmp_path).load_all().ok  # in service: 100 numbers, noted beside the side store

    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS[:20]) + "\n")  # cut while the gateway was stopped
    restarted = _holder(tmp_path)
    result = restarted.load_all()
    assert "drops 80 of the 100 numbers" in result.failed["dnc"]
    assert restarted.current.get("dnc") is None  # not in service: its calls block as registry_stale
    assert restarted.accept("dnc").count == 20
    assert restarted.current.get("dnc") is not None and not restarted.failures
    with pytest.raises(RegistryError, match="nothing to accept"):
        restarted.accept("dnc")
    assert _holder(tmp_path).load_all().ok  # the accepted count is the new reference


def test_within_max_shrink_or_a_larger_one_loads(tmp_path: Path) -> None:
    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS) + "\n")
    holder = _holder(tmp_path)
    assert holder.load_all().ok
    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS[:96]) + "\n")  # 4 % fewer
    assert holder.load_all().ok
    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS[:40]) + "\n")
    assert not holder.load_all().ok and "dnc" in holder.held
    holder.specs["dnc"] = ListSpec("dnc", ListKind.OPPOSITION, tmp_path / "dnc.txt", max_shrink=0.7)  # reload
    assert holder.load_all().ok and not holder.held


def test_a_consent_list_may_shrink(tmp_path: Path) -> None:
    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS) + "\n")
    holder = _holder(tmp_path, ListKind.CONSENT)
    assert holder.load_all().ok
    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS[:10]) + "\n")
    assert holder.load_all().ok  # fewer consents block more calls, never fewer


def test_a_consent_list_with_its_own_max_shrink_is_guarded(tmp_path: Path) -> None:
    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS) + "\n")
    holder = _holder(tmp_path, ListKind.CONSENT, max_shrink=0.1)
    assert holder.load_all().ok
    (tmp_path / "dnc.txt").write_text("\n".join(NUMBERS[:10]) + "\n")
    assert not holder.load_all().ok and "dnc" in holder.held
