"""A lost call-history store is noticed: the marker written at first start, and checked at every start.

Caps, cooldowns and opt-outs live in the state store. An empty one (``state.db`` deleted, a Redis restarted
without its data, another file or server put in its place) looks exactly like a history with no calls: every
number would be allowed. So at its first start the gateway writes a random id into the store (SQLite: its
``marker`` table; Redis: the key ``dncgw:PROFESSIONAL:marker``) and the same id into ``DATA_DIR/state-marker``.
At every start, and after every Redis reconnection, the store must still hold that id:

- both absent: a first start; the id is written to the store, then to the file;
- the file absent, the store holding an id: a gateway joining a fleet that shares the store (or an upgrade):
  the file takes the store's id;
- the store without the id, or with another one: the store was lost or replaced. Every call fails closed
  (``state_unavailable``, whatever ``state_failure`` says), ``/healthz`` says 503 with ``state_lost``, and
  ``dnc_state_lost_total`` counts it, until ``dnc-gateway state rebuild`` restores attempts, refusals and
  opt-outs from the audit trail and the consent store and writes the id back.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Protocol, runtime_checkable

from gateway.private import private_file

log = logging.getLogger(__name__)

FILE_NAME = "state-marker"
REBUILD = "dnc-gateway state rebuild"


@runtime_checkable
class Marked(Protocol):
    """A state store that keeps the marker (both backends)."""

    lost: str
    lost_count: int
    expected_marker: str | None  # the id the store must hold (checked again after a Redis reconnection)

    def expect_marker(self, professional: str, marker: str | None) -> None:
        """The id the store must hold from now on (Redis: checked again on every new connection)."""
        ...

    @property
    def persistent(self) -> bool:
        """False for memory:// (nothing to lose, no marker)."""
        ...

    def mark_lost(self) -> None:
        """Stop deciding on this store's history."""
        ...

    async def read_marker(self, professional: str) -> str | None: ...

    async def write_marker(self, professional: str, marker: str, *, only_if_absent: bool = False) -> str:
        """Write the marker (with ``only_if_absent``, only if there is none: two gateways starting at once on one
        store agree on the first one's); the marker the store holds afterwards."""
        ...


def path_for(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def read_file(data_dir: Path) -> str | None:
    try:
        text = path_for(data_dir).read_text().strip()
    except FileNotFoundError:
        return None
    return text or None


def write_file(data_dir: Path, marker: str) -> None:
    path = path_for(data_dir)
    private_file(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(marker + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def new_marker() -> str:
    return secrets.token_hex(16)


def judge(expected: str | None, found: str | None, where: str) -> str:
    """Why the store is not the one this gateway wrote ("" when it is, or when nothing says otherwise)."""
    if expected is None or found == expected:
        return ""
    if found is None:
        return (f"the call-history store {where} is empty or was reset (its marker {expected[:8]}… is gone): "
                f"caps, cooldowns and opt-outs were lost; calls are blocked until `{REBUILD}` restores them")
    return (f"the call-history store {where} is not the one this gateway wrote (marker {found[:8]}…, expected "
            f"{expected[:8]}…): calls are blocked until `{REBUILD}` restores it")


async def check(store: Marked, professional: str, data_dir: Path, where: str) -> str:
    """At start: adopt or write the marker, or find the store lost (``store.lost`` set and returned)."""
    if not store.persistent:
        return ""
    expected = read_file(data_dir)
    found = await store.read_marker(professional)
    if found is None and expected is None:
        marker = await store.write_marker(professional, new_marker(), only_if_absent=True)
        write_file(data_dir, marker)
        store.expect_marker(professional, marker)
        return ""
    if expected is None:
        assert found is not None
        write_file(data_dir, found)
        store.expect_marker(professional, found)
        return ""
    store.expect_marker(professional, expected)
    why = judge(expected, found, where)
    if why:
        mark_lost(store, why)
    return why


def mark_lost(store: Marked, why: str) -> None:
    if not store.lost:
        store.lost_count += 1
        log.error("state: %s", why)
    store.lost = why
    store.mark_lost()


async def restore(store: Marked, professional: str, data_dir: Path) -> str:
    """After a rebuild: the store takes the file's marker (or a new one for both); the store is found again."""
    marker = read_file(data_dir) or new_marker()
    await store.write_marker(professional, marker)
    write_file(data_dir, marker)
    store.lost = ""
    store.expect_marker(professional, marker)
    return marker
