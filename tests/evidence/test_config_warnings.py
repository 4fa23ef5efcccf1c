"""``config check`` warns when the config would serve keeping no proof: no audit, or a history in memory only.
Before, it said "ready to serve" with neither."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import write_sample
from tests.evidence.serving import cli, config


def test_no_audit_and_a_memory_history_are_warned(tmp_path: Path) -> None:
    bare = write_sample(tmp_path / "bare")  # memory://, no [gateway] audit
    done = cli(bare, "config", "check", "--json")
    assert done.returncode == 0, done.stderr
    warnings = json.loads(done.stdout)["warnings"]
    assert any("[gateway] audit is not set" in w for w in warnings), warnings
    assert any("memory://" in w for w in warnings), warnings
    kept = cli(config(tmp_path / "kept"), "config", "check", "--json")
    assert kept.returncode == 0, kept.stderr
    warnings = json.loads(kept.stdout)["warnings"]
    assert not any("audit" in w or "memory://" in w for w in warnings), warnings
