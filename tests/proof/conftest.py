"""One number's history, made once per module by the real service and audit writer; copied for tests that edit it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.proof.history import make_history


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    return make_history(tmp_path_factory.mktemp("proof") / "conf")


@pytest.fixture
def history(made: tuple[Path, list[str]], tmp_path: Path) -> tuple[Path, list[str]]:
    """A private copy of the made history: the config, its lists and its databases."""
    conf, ids = made
    root = tmp_path / "conf"
    shutil.copytree(conf.parent, root)
    return root / conf.name, ids
