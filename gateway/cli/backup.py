"""``dnc-gateway backup DIR``: consistent online copies of the evidence, each verified (docs/backup.md).

A file copy of a live SQLite database in WAL mode is not a backup: the records still in the WAL are left
behind, and a page copied while a commit rewrites it gives a file that may open, and even verify, with a
fraction of the records (a copy of a live ``audit.db`` verified "intact" with 8 of 58). So each database is copied
through SQLite's backup API, in one read transaction (a consistent snapshot, taken while the gateway keeps
writing), then checked:

- the audit trail (``[gateway] audit``): its hash chain verified end to end, head sequence and hash printed;
- the consent store (``registry-side.db``) and an embedded call history (``state.db``): ``PRAGMA
  integrity_check``; the history's marker (gateway.state.marker) goes with it.

A Redis history is not copied (Redis has its own persistence: RDB/AOF); it is said so. Every file written is
0600, the directory 0700. Exit 0 when every copy verified, 1 when one did not (the message says which).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from gateway.audit.reader import AuditError, AuditReader
from gateway.cli.exits import DONE, FAILED, UsageError
from gateway.cli.runtime import load_runtime_config, safe_url
from gateway.private import private_file
from gateway.registry import sidestore
from gateway.state import marker


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="where the copies go (created 0700; existing copies there are replaced)")


@dataclass(frozen=True)
class Copied:
    what: str
    path: Path
    ok: bool
    detail: str


def copy_db(src: Path, dst: Path) -> None:
    """``src`` copied to ``dst`` through SQLite's backup API (one read transaction: a consistent snapshot)."""
    tmp = dst.with_name(dst.name + ".part")
    tmp.unlink(missing_ok=True)
    private_file(tmp)
    source = sqlite3.connect(f"file:{quote(str(src.resolve()))}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(str(tmp))
        try:
            source.backup(target)  # pages=-1: all at once, under one read lock
            target.execute("PRAGMA journal_mode=DELETE")  # the copy is one file, no -wal beside it
        finally:
            target.close()
    finally:
        source.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, dst)


def integrity(path: Path) -> tuple[bool, str]:
    db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        result = db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    return result == "ok", f"integrity_check {result}"


def backup(config_dir: Path, audit: Path | None, state_url: str, data_dir: Path) -> list[Copied]:
    out = config_dir
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    done: list[Copied] = []
    if audit is not None and audit.exists():
        dst = out / "audit.db"
        copy_db(audit, dst)
        try:
            with AuditReader(dst) as r:
                v = r.verify()
            done.append(Copied("audit trail", dst, v.ok, v.message))
        except AuditError as e:
            done.append(Copied("audit trail", dst, False, str(e)))
    elif audit is not None:
        done.append(Copied("audit trail", audit, False, "no such file"))
    side = sidestore.default_path(data_dir)
    if side.exists():
        dst = out / side.name
        copy_db(side, dst)
        ok, detail = integrity(dst)
        done.append(Copied("consent store", dst, ok, detail))
    if state_url.startswith("sqlite://"):
        state = Path(state_url.removeprefix("sqlite://"))
        if state.exists():
            dst = out / "state.db"
            copy_db(state, dst)
            ok, detail = integrity(dst)
            done.append(Copied("call history", dst, ok, detail))
        mark = marker.path_for(data_dir)
        if mark.exists():
            private_file(out / mark.name)
            shutil.copyfile(mark, out / mark.name)
    elif not state_url.startswith("memory://"):
        done.append(Copied("call history", Path(safe_url(state_url)), True,
                           "not copied: a Redis history is backed up by Redis's own persistence (RDB/AOF)"))
    return done


def run(args: argparse.Namespace) -> int:
    config = load_runtime_config(args)
    g = config.gateway
    target = Path(args.dir)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target}: not a directory")
    try:
        done = backup(target, g.audit, g.state, g.data_dir)
    except (OSError, sqlite3.Error) as e:
        raise UsageError(f"backup to {target} failed: {e}") from None
    if not done:
        raise UsageError("nothing to back up: no audit trail, no consent store, no embedded call history")
    for c in done:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.what}: {c.path}: {c.detail}")
    return DONE if all(c.ok for c in done) else FAILED
