"""Files holding numbers are 0600 whatever the umask: state.db, registry-side.db, audit.db, their -wal and -shm,
the marker; one an older release left 0644 is brought to 0600 when opened. Before, state.db and
registry-side.db were created 0644 under the usual umask 022."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditLog
from gateway.config import AuditSection
from gateway.registry.sidestore import SideStore
from gateway.state.model import Retention
from gateway.state.store import EmbeddedState
from tests.audit.helpers import rec


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def companions(p: Path) -> list[Path]:
    return [q for q in (p, Path(f"{p}-wal"), Path(f"{p}-shm")) if q.exists()]


async def test_every_database_and_its_wal_is_0600(tmp_path: Path, loose_umask: None) -> None:
    store = EmbeddedState(tmp_path / "state.db", retention=Retention(timedelta(days=31), timedelta(days=60)))
    store.attempt_now("acme", 33612000009, datetime.now(UTC))
    store.flush()
    side = SideStore(tmp_path / "registry-side.db")
    log = AuditLog(tmp_path / "audit.db", AuditSection())
    await log.start()
    try:
        await log.append(rec(1), durable=True)
        paths = [*companions(tmp_path / "state.db"), *companions(tmp_path / "registry-side.db"),
                 *companions(tmp_path / "audit.db")]
        assert len(paths) >= 6, paths  # each database with at least its WAL
        assert {p.name: mode(p) for p in paths} == {p.name: 0o600 for p in paths}
    finally:
        await log.close()
        side.close()
        store.close_now()


def test_a_database_left_0644_is_brought_to_0600(tmp_path: Path, loose_umask: None) -> None:
    side = SideStore(tmp_path / "registry-side.db")
    side.close()
    for p in companions(tmp_path / "registry-side.db"):
        os.chmod(p, 0o644)
    SideStore(tmp_path / "registry-side.db").close()
    assert mode(tmp_path / "registry-side.db") == 0o600
