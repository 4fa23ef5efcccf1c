"""How a command ends: the exit codes of DESIGN §7 and the error that means "bad input".

0 done (whatever the verdicts), 1 a check failed (``audit verify`` found a broken chain, ``replay``
met protocol errors), 2 bad input (the message on stderr), 130 interrupted (as a shell reports Ctrl-C).
"""

from __future__ import annotations

DONE = 0
FAILED = 1
BAD_INPUT = 2
INTERRUPTED = 130


class UsageError(Exception):
    """Bad input from the command line: exit 2 with the message."""
