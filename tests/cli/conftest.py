"""Fixtures the command tests share with other folders: the live gateway of the replay tests, a number's history."""

from tests.proof.conftest import history, made  # noqa: F401  (fixtures: a number's history, for proof)
from tests.replay.conftest import live, live6, live_audited  # noqa: F401  (fixtures: pytest finds them by name here)
