"""``dnc-gateway check``: the DESIGN §7 contract (JSON keys, exit codes), run as a real subprocess too."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.cli import check as check_command
from gateway.cli import main
from tests.conftest import FIXED_NOW, write_sample

AT = "2026-11-24T10:30:00+01:00"  # FIXED_NOW in Paris
NEXT_WEEK = (FIXED_NOW + timedelta(days=7)).isoformat()


@pytest.fixture(autouse=True)
def now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's wall clock (what --record compares --at with, what dates written_at) is FIXED_NOW."""
    monkeypatch.setattr(check_command, "clock", lambda: FIXED_NOW)


def with_state(config: Path, *, audit: bool = False) -> Path:
    """The sample config with an embedded state store on disk (and an audit database): kept between runs."""
    extra = '\naudit = "audit.db"' if audit else ""
    config.write_text(config.read_text().replace('state = "memory://"', f'state = "sqlite://state.db"{extra}'))
    return config


def check(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, dict[str, object]]:
    code = main(["--config", str(config), "check", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


@pytest.mark.parametrize(
    ("number", "campaign", "at", "verdict", "reason", "would_block"),
    [
        ("0612000001", "legacy", "2026-03-10T11:00:00+01:00", "BLOCK", "opposition_list", True),
        ("06 12 00 00 09", "prospect", AT, "ALLOW", None, False),
        ("0612000008", "prospect", AT, "BLOCK", "no_consent", True),
        ("0612000105", "prospect", AT, "ALLOW", "exempt_contract", False),
        ("0612000200", "legacy", AT, "BLOCK", "internal_dnc", True),
        ("0612000300", "legacy", AT, "BLOCK", "litigator", True),
        ("112", "prospect", AT, "ALLOW", "emergency", False),
        ("0612000008", "survey", AT, "ALLOW", "exempt_category", False),
        ("0612000200", "survey", AT, "ALLOW", "internal_dnc", True),  # monitor mode
        ("0612000009", "prospect", "2026-11-24T21:00:00+01:00", "BLOCK", "outside_hours", True),
        ("12", "prospect", AT, "BLOCK", "invalid_number", True),
    ],
)
def test_check_json(capsys: pytest.CaptureFixture[str], sample_config_path: Path, number: str, campaign: str,
                    at: str, verdict: str, reason: str | None, would_block: bool) -> None:
    code, out = check(capsys, sample_config_path, number, "--campaign", campaign, "--at", at)
    assert code == 0
    assert {k: out[k] for k in ("verdict", "reason", "would_block")} == {
        "verdict": verdict, "reason": reason, "would_block": would_block}
    assert {"verdict", "reason", "would_block", "number", "rule", "lists"} <= set(out)
    assert isinstance(out["lists"], dict)


def test_check_caller_id_and_number_format(capsys: pytest.CaptureFixture[str], sample_config_path: Path) -> None:
    code, out = check(capsys, sample_config_path, "0612000009", "--campaign", "prospect", "--at", AT,
                      "--caller-id", "0612345678")
    assert (code, out["reason"], out["number"]) == (0, "caller_id", "+33612000009")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0612000009", "--campaign", "prospect", "--at", "tomorrow"], "--at 'tomorrow': not a time: use ISO-8601 "
         "with an offset (2026-03-10T11:30:00+01:00), a date (2026-03-10, its midnight) or a local time "
         "(2026-03-10T11:30) read in Europe/Paris, or UNIX seconds"),
        (["0612000009", "--campaign", "prospct"], "--campaign 'prospct': no campaign of that name in the config "
         "(did you mean 'prospect'?)"),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys: pytest.CaptureFixture[str], sample_config_path: Path,
                                          args: list[str], message: str) -> None:
    assert main(["--config", str(sample_config_path), "check", *args, "--json"]) == 2
    assert message in capsys.readouterr().err


def test_bad_config_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway]\nhome_country = 'France'\n")
    assert main(["--config", str(bad), "check", "0612000009", "--campaign", "x"]) == 2
    assert "bad.toml:2: [gateway] home_country" in capsys.readouterr().err


def test_record_counts_attempts_until_the_cap(capsys: pytest.CaptureFixture[str], sample_config_path: Path) -> None:
    with_state(sample_config_path)
    reasons = []
    for _ in range(5):
        _, out = check(capsys, sample_config_path, "0612000009", "--campaign", "prospect", "--at", AT, "--record")
        reasons.append(out["reason"])
        assert "decision_id" in out
    assert reasons == [None, None, None, None, "frequency_cap"]
    # without --record nothing is counted
    _, out = check(capsys, sample_config_path, "0612000010", "--campaign", "prospect", "--at", AT)
    assert "decision_id" not in out


def test_console_script_runs_on_the_embedded_demo(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "dnc-gateway"
    env_home = tmp_path / "demo"
    proc = subprocess.run([str(exe), "--data-dir", str(env_home), "check", "0612000001", "--campaign", "legacy",
                           "--at", "2026-03-10T11:00:00+01:00", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["verdict"], out["reason"]) == ("BLOCK", "opposition_list")
    assert (env_home / "bloctel.snapshot").stat().st_size > 1_000_000


def test_recorded_check_is_audited(capsys: pytest.CaptureFixture[str], sample_config_path: Path) -> None:
    with_state(sample_config_path, audit=True)
    _, out = check(capsys, sample_config_path, "0612000009", "--campaign", "prospect", "--at", AT, "--record")
    assert main(["--config", str(sample_config_path), "audit", "query", "--number", "0612000009",
                 "--format", "json"]) == 0
    assert out["decision_id"] in capsys.readouterr().out
    assert main(["--config", str(sample_config_path), "audit", "verify"]) == 0


@pytest.mark.parametrize(("typed", "same_as"), [
    ("2026-12-02", "2026-12-02T00:00:00+01:00"),
    ("2026-12-02T10:30", "2026-12-02T10:30:00+01:00"),
    ("1796203800", "2026-12-02T10:30:00+01:00"),
])
def test_a_date_a_local_time_or_unix_seconds_are_read_in_the_configs_zone(
        capsys: pytest.CaptureFixture[str], sample_config_path: Path, typed: str, same_as: str) -> None:
    """One time parser for every time option: --at takes what --since takes (a local time is the call centre's)."""
    outputs = []
    for at in (typed, same_as):
        assert main(["--config", str(sample_config_path), "check", "0612000009", "--campaign", "prospect",
                     "--at", at]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("how", ["config", "data_dir"])
def test_relative_paths_are_read_once(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Issue 15 #3: '-c op/gateway.toml' looked for op/op/bloc.txt (every call registry_stale), created a stray
    op/op/state.db, and 'audit verify' read op/op/audit.db; '--data-dir op' did the same."""
    conf = write_sample(tmp_path / "op")
    conf.write_text(conf.read_text().replace('state = "memory://"', 'state = "sqlite://state.db"\naudit = "audit.db"'))
    monkeypatch.chdir(tmp_path)
    where = ["-c", "op/gateway.toml"] + (["--data-dir", "op"] if how == "data_dir" else [])
    assert main([*where, "check", "0612000001", "--campaign", "legacy", "--at", "2026-11-24T10:30:00+01:00",
                 "--record", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["verdict"], out["reason"]) == ("BLOCK", "opposition_list")
    assert not (tmp_path / "op" / "op").exists()
    assert (tmp_path / "op" / "audit.db").exists()
    assert main([*where, "audit", "verify"]) == 0


# -- issue 15 #11: --record with an --at that is not now ------------------------------------------------

@pytest.mark.parametrize("at", [NEXT_WEEK, (FIXED_NOW - timedelta(minutes=6)).isoformat(),
                                "2026-11-24T11:36:00+01:00"])
def test_record_at_another_time_is_refused(capsys: pytest.CaptureFixture[str], sample_config_path: Path,
                                           at: str) -> None:
    config = with_state(sample_config_path, audit=True)
    assert main(["--config", str(config), "check", "0612000009", "--campaign", "prospect", "--at", at,
                 "--record"]) == 2
    err = capsys.readouterr().err
    assert "would write a decision to the audit trail and count an attempt" in err and "not now" in err
    assert "Drop --record" in err and "--force" in err
    assert not (config.parent / "audit.db").exists()  # refused before anything was opened


def test_message_says_how_far_from_now(capsys: pytest.CaptureFixture[str], sample_config_path: Path) -> None:
    main(["--config", str(sample_config_path), "check", "0612000009", "--campaign", "prospect", "--at", NEXT_WEEK,
          "--record"])
    assert "is 7 days after now" in capsys.readouterr().err
    main(["--config", str(sample_config_path), "check", "0612000009", "--campaign", "prospect",
          "--at", "2026-11-24T07:30:00+01:00", "--record"])
    assert "is 3 hours before now" in capsys.readouterr().err


def test_record_within_five_minutes_of_now_is_now(capsys: pytest.CaptureFixture[str],
                                                   sample_config_path: Path) -> None:
    for at in ("2026-11-24T10:34:59+01:00", "2026-11-24T10:25:00+01:00"):
        code, out = check(capsys, sample_config_path, "0612000009", "--campaign", "prospect", "--at", at, "--record")
        assert code == 0 and "decision_id" in out


def test_future_attempts_no_longer_cap_todays_calls(capsys: pytest.CaptureFixture[str],
                                                   sample_config_path: Path) -> None:
    """The defect: four attempts recorded 'next week' made today's real call frequency_cap."""
    config = with_state(sample_config_path)
    for _ in range(4):
        main(["--config", str(config), "check", "0612000009", "--campaign", "prospect", "--at", NEXT_WEEK,
              "--record", "--json"])
    capsys.readouterr()
    code, out = check(capsys, config, "0612000009", "--campaign", "prospect", "--at", AT, "--record")
    assert (code, out["verdict"], out["reason"]) == (0, "ALLOW", None)


def test_forced_record_is_audited_with_both_times(capsys: pytest.CaptureFixture[str],
                                                  sample_config_path: Path) -> None:
    config = with_state(sample_config_path, audit=True)
    code, out = check(capsys, config, "0612000009", "--campaign", "prospect", "--at", NEXT_WEEK, "--record",
                      "--force")
    assert code == 0 and out["verdict"] == "ALLOW"
    assert main(["--config", str(config), "audit", "query", "--number", "0612000009", "--format", "json"]) == 0
    [rec] = json.loads(capsys.readouterr().out)
    assert rec["decision_id"] == out["decision_id"] and rec["source"] == "cli"
    assert (rec["at"], rec["time"]) == ((FIXED_NOW + timedelta(days=7)).timestamp(), "2026-12-01T09:30:00.000Z")
    assert (rec["written_at"], rec["written_time"]) == (FIXED_NOW.timestamp(), "2026-11-24T09:30:00.000Z")
    assert main(["--config", str(config), "audit", "query", "--number", "0612000009"]) == 0
    assert "written=2026-11-24T09:30:00.000Z" in capsys.readouterr().out
    assert main(["--config", str(config), "audit", "verify"]) == 0


def test_force_without_record_is_bad_input(capsys: pytest.CaptureFixture[str], sample_config_path: Path) -> None:
    assert main(["--config", str(sample_config_path), "check", "0612000009", "--campaign", "prospect",
                 "--force"]) == 2
    assert "--force only applies to --record" in capsys.readouterr().err
