"""packaging/: the systemd unit is hardened and consistent with the gateway's defaults, its user and dirs exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import AgiSection

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "packaging" / "systemd" / "dnc-gateway@.service"


def directives(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file (keys may repeat: SystemCallFilter, ReadWritePaths)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


UNIT_D = directives(UNIT.read_text())


def one(key: str) -> str:
    values = UNIT_D.get(key)
    assert values, f"{UNIT.name}: no {key}="
    return values[-1]


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|min)?", value)
    assert m, value
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "min": 60, None: 1}[m.group(2)]


def test_unit_runs_as_its_own_user_with_no_privileges() -> None:
    assert one("User") == "dncgw" and one("Group") == "dncgw"
    assert one("NoNewPrivileges") == "yes"
    assert one("CapabilityBoundingSet") == "" and one("AmbientCapabilities") == ""
    for key in ("RestrictSUIDSGID", "LockPersonality", "RestrictNamespaces", "ProtectKernelModules",
                "ProtectKernelTunables", "ProtectControlGroups", "PrivateDevices", "PrivateTmp"):
        assert one(key) == "yes", key
    assert "@system-service" in UNIT_D["SystemCallFilter"]
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def test_unit_file_system_is_read_only_but_the_data_dir() -> None:
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") == "yes"
    assert UNIT_D["ReadWritePaths"] == ["/var/lib/dnc-gateway"]
    assert "/var/lib/dnc-gateway/%i" in one("ExecStart")  # --data-dir inside the writable tree


def test_stop_leaves_time_to_drain_and_reload_waits_for_its_result() -> None:
    assert one("KillSignal") == "SIGTERM"
    assert seconds(one("TimeoutStopSec")) > AgiSection().drain_timeout
    # `dnc-gateway reload` waits for the reload and exits non-zero when anything was refused: systemctl says so.
    reload = one("ExecReload")
    assert reload.endswith(" reload") and "--config /etc/dnc-gateway/%i.toml" in reload
    assert "DNC_GATEWAY_INSTANCE=%i" in UNIT_D["Environment"]


def test_sysusers_and_tmpfiles_match_the_unit() -> None:
    users = (ROOT / "packaging" / "sysusers.d" / "dnc-gateway.conf").read_text()
    assert re.search(r"^u dncgw ", users, re.M)
    tmpfiles = (ROOT / "packaging" / "tmpfiles.d" / "dnc-gateway.conf").read_text()
    made = {line.split()[1]: line.split() for line in tmpfiles.splitlines() if line.startswith("d ")}
    assert made["/var/lib/dnc-gateway"][3:5] == ["dncgw", "dncgw"]
    assert made["/etc/dnc-gateway"][3:5] == ["root", "dncgw"]  # the service reads its config, cannot change it


def test_upgrade_path_is_documented() -> None:
    text = (ROOT / "packaging" / "UPGRADE.md").read_text()
    for needle in ("dnc-gateway@a", "dnc-gateway@b", "SIGTERM", "drain_timeout", "AGI(agi://", "DNC_VERDICT",
                   "systemctl reload"):
        assert needle in text, needle


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # An instance of the template, with an executable that exists here.
    unit = tmp_path / "dnc-gateway@a.service"
    unit.write_text(UNIT.read_text().replace("/opt/dnc-gateway/bin/dnc-gateway", sys.executable))
    proc = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if unit.name in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr
