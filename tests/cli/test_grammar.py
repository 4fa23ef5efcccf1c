"""One grammar for every command: an unknown campaign, a time option, a list's warnings.

- ``--campaign`` naming no configured campaign is bad input (exit 2) with the closest names, in every command that
  takes one, instead of a run whose every answer is ``unknown_campaign``;
- every time option reads the same forms, and its hint shows them in the config's own zone;
- a list's warnings (bad lines, age) are ``config check``'s and ``serve``'s; other commands do not repeat them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import write_sample

NEW_YORK = 'home_country = "FR"\nprofessional = "acme"\nstate = "memory://"\ntimezone = "America/New_York"'


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def calls_csv(tmp_path: Path) -> Path:
    src = tmp_path / "calls.csv"
    src.write_text("time,number,campaign\n2026-11-24T10:30:00+01:00,0612000001,legacy\n")
    return src


def test_an_unknown_campaign_is_exit_2_with_did_you_mean_in_every_command(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    conf = write_sample(tmp_path / "conf")
    conf.write_text(conf.read_text().replace('state = "memory://"', 'state = "memory://"\naudit = "audit.db"'))
    c = str(conf)
    src = calls_csv(tmp_path)
    commands = {
        "check": ["check", "0612000001", "--campaign", "legcy"],
        "scrub": ["scrub", str(src), "-o", str(tmp_path / "out.csv"), "--campaign", "legcy"],
        "replay": ["replay", str(src), "--offline", "--campaign", "legcy"],
        "audit query": ["audit", "query", "--campaign", "legcy"],
        "audit export": ["audit", "export", "--campaign", "legcy"],
    }
    # An audit trail with one decision, so that the audit commands have something to look in.
    assert main(["--config", c, "check", "0612000001", "--campaign", "legacy", "--record"]) == 0
    capsys.readouterr()
    for name, argv in commands.items():
        code, out, err = run(capsys, "--config", c, *argv)
        assert code == 2, (name, out, err)
        assert "'legcy'" in err and "(did you mean 'legacy'?)" in err, (name, err)
        assert out == "", name
    # A campaign far from every name lists those defined.
    code, _, err = run(capsys, "--config", c, "check", "0612000001", "--campaign", "zzz")
    assert code == 2 and "(defined: legacy, prospect, survey)" in err
    # The audit trail keeps a campaign a later config removed: still found by its decisions.
    conf.write_text(conf.read_text().replace("[campaigns.legacy]", "[campaigns.legacy-2026]"))
    code, _, err = run(capsys, "--config", c, "audit", "query", "--campaign", "legacy")
    assert code == 0 and "1 record(s)" in err


def test_time_hints_are_in_the_configs_own_zone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    conf = write_sample(tmp_path / "conf")
    conf.write_text(conf.read_text().replace('home_country = "FR"\nprofessional = "acme"\nstate = "memory://"\n'
                                             'timezone = "Europe/Paris"', NEW_YORK + '\naudit = "audit.db"'))
    c = str(conf)
    assert main(["--config", c, "check", "0612000001", "--campaign", "legacy", "--record"]) == 0
    for argv, option in ((["check", "0612000001", "--campaign", "legacy", "--at", "soon"], "--at"),
                         (["audit", "query", "--since", "soon"], "--since"),
                         (["proof", "0612000001", "--until", "soon"], "--until"),
                         (["config", "check", c, "--at", "soon"], "--at")):
        capsys.readouterr()
        code, _, err = run(capsys, "--config", c, *argv)
        assert code == 2, argv
        assert f"{option} 'soon': not a time: use ISO-8601 with an offset (2026-03-10T11:30:00-04:00), a date " \
               "(2026-03-10, its midnight) or a local time (2026-03-10T11:30) read in America/New_York, or UNIX " \
               "seconds" in err, (argv, err)
        assert "+01:00" not in err


def test_a_lists_warnings_are_config_checks_not_every_commands(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    conf = write_sample(tmp_path / "conf")
    with (tmp_path / "conf" / "bloctel.txt").open("a") as f:
        f.write("not a number\n")
    c = str(conf)
    code, out, err = run(capsys, "--config", c, "config", "check")
    assert code == 0 and "warning: list bloctel" in out and "not a phone number" in out
    src = calls_csv(tmp_path)
    for argv in (["check", "0612000001", "--campaign", "legacy"],
                 ["scrub", str(src), "-o", str(tmp_path / "out.csv"), "--campaign", "legacy",
                  "--at", "2026-11-24T10:30"],
                 ["replay", str(src), "--offline"],
                 ["registry", "proof", "0612000001"]):
        code, out, err = run(capsys, "--config", c, *argv)
        assert code == 0, (argv, err)
        assert "bloctel" not in err and "not a phone number" not in err, (argv, err)
    # A list that cannot be loaded at all changes the answers: one line says so.
    (tmp_path / "conf" / "litigators.txt").unlink()
    code, out, err = run(capsys, "--config", c, "check", "0612000001", "--campaign", "legacy")
    assert code == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and re.match(r"warning: list litigators: .*litigators\.txt: no such file \(not loaded: "
                                        r"see dnc-gateway config check\)$", lines[0]), err
