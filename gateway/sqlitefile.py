"""SQLite files the gateway writes (the audit trail, the call history): which file a path names now, and a file
deleted from under an open connection put back from it.

A database deleted while a connection has it open lives on in that connection (the inode stays until it is
closed): every write after the deletion goes to a file nobody will read again. The writers compare the file
they opened with the one the path names before they write; a deleted one is copied back whole, through SQLite's
backup API, from the connection that still sees everything committed. A file *replaced* by another is never
overwritten: its writer refuses to go on (it is not the evidence it was writing).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from gateway.private import private_file

Identity = tuple[int, int]  # st_dev, st_ino


def identity(path: Path | str) -> Identity | None:
    """The device and inode ``path`` names now (None: nothing there)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def restore_deleted(conn: sqlite3.Connection, path: Path) -> None:
    """Write the database ``conn`` still has open back to ``path`` (deleted), 0600, checkpointing its WAL first.
    Linked into place, never over a file someone put there meanwhile (FileExistsError then)."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    tmp = path.with_name(f".{path.name}.restore")
    tmp.unlink(missing_ok=True)
    private_file(tmp)
    dst = sqlite3.connect(str(tmp))
    try:
        conn.backup(dst)
    finally:
        dst.close()
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
