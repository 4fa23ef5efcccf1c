"""What each guarded list held when it was last in service, kept across restarts (``lists-in-service.json``
beside the side store): the shrink guard's reference at start, when no version is in memory yet.

Without it, a copy cut short while the gateway was stopped would load as the first version after a restart.
Counts only (no numbers): a new version with far fewer numbers than the last one served is held back, the
list not in service (its calls block as ``registry_stale``) until an operator accepts it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "lists-in-service.json"


def read(path: Path) -> dict[str, int]:
    """List name -> count in service; empty when the file is missing or unreadable (logged)."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("registry: %s unreadable (%s): the shrink guard starts without its reference", path, e)
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): v["count"] for k, v in raw.items()
            if isinstance(v, dict) and isinstance(v.get("count"), int) and not isinstance(v.get("count"), bool)}


def write(path: Path, counts: Mapping[str, int]) -> None:
    """Replace the file atomically (0600); a failure is logged, never raised (the lists still serve)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({name: {"count": n} for name, n in sorted(counts.items())}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        log.warning("registry: cannot write %s: %s", path, e)
