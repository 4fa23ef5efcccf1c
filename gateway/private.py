"""Files that hold numbers are readable by their owner only (0600), whatever the umask.

SQLite creates a database with the process's umask (0644 under the usual 022) and gives its ``-wal`` and
``-shm`` files the mode of the database. So the database file is created 0600 before SQLite opens it, and an
existing one (written by an older release) is brought to 0600 with its companions.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MODE = 0o600
COMPANIONS = ("-wal", "-shm", "-journal")


def private_file(path: Path) -> None:
    """Create ``path`` 0600 if it does not exist; make it (and its SQLite companions) 0600 if it does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, MODE))
    restrict(path)


def restrict(path: Path) -> None:
    """chmod 0600 ``path`` and its existing ``-wal``/``-shm``/``-journal`` (never following a symlink's target
    mode: chmod applies to the file the gateway opens)."""
    for p in (path, *(Path(f"{path}{suffix}") for suffix in COMPANIONS)):
        with contextlib.suppress(FileNotFoundError):
            if (os.stat(p).st_mode & 0o777) != MODE:
                os.chmod(p, MODE)
