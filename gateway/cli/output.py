"""What a command prints besides its result, on stderr and in one format: warnings and errors."""

from __future__ import annotations

import sys


def warn(text: str) -> None:
    """Something the operator should know that does not stop the command (a list not loaded, a trace oddity)."""
    print(f"warning: {text}", file=sys.stderr)


def error(command: str, text: str) -> None:
    """Why a command failed, prefixed with what failed: ``dnc-gateway replay: ...``."""
    print(f"dnc-gateway {command}: {text}", file=sys.stderr)
