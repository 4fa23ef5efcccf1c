"""``dnc-gateway config check``: every error of a config and its lists, without serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import write_sample

AT = "2026-11-24T10:30:00+01:00"


def test_a_good_config_is_ready_to_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write_sample(tmp_path / "conf")
    assert main(["config", "check", str(conf), "--at", AT]) == 0
    out = capsys.readouterr().out
    assert "ready to serve" in out and "bloctel (5)" in out and "legacy, prospect, survey" in out


def test_every_error_is_listed_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write_sample(tmp_path / "conf")
    text = conf.read_text()
    text = text.replace('mode = "monitor"', 'mode = "loud"').replace("max_age_days = 30", "max_age_days = -3")
    text = text.replace('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus"')
    text += '\n[campaign.presse]\ncategory = "press"\n'
    conf.write_text(text)
    (conf.parent / "litigators.txt").unlink()
    assert main(["config", "check", str(conf), "--at", AT, "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    errors = report["errors"]
    assert len(errors) == 4, errors  # the four config errors; the lists are not loaded from a bad config
    assert any("[campaigns.survey] mode: 'loud'" in e for e in errors)
    assert any("[lists.bloctel] max_age_days: must be positive" in e for e in errors)
    assert any("[gateway] timezone: unknown time zone" in e for e in errors)
    assert any("campaign: unknown table (did you mean 'campaigns'?" in e for e in errors)
    lines = text.splitlines()
    for e in errors:  # each names its own line
        line = int(e.split(":")[1])
        assert 1 <= line <= len(lines)


def test_lists_that_do_not_load_are_errors_and_stale_ones_warnings(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    conf = write_sample(tmp_path / "conf")
    (conf.parent / "litigators.txt").unlink()
    (conf.parent / "premium.txt").write_text("nonsense\n" * 20)
    assert main(["config", "check", str(conf), "--at", "2027-03-01T10:00:00+01:00"]) == 2
    out = capsys.readouterr().out
    assert "error: list litigators:" in out and "no such file" in out
    assert "error: list premium:" in out and "20 of 20 lines are not numbers" in out
    assert "warning: list bloctel is 101 days old (max_age_days 30)" in out
    assert "2 error(s)" in out


def test_a_list_that_does_not_load_is_said_once_with_its_name_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    conf = tmp_path / "gw.toml"
    conf.write_text('[lists.a]\nkind = "opposition"\npath = "nope.txt"\n[campaigns.x]\nlists = ["a"]\n')
    assert main(["config", "check", str(conf)]) == 2
    out = capsys.readouterr()
    err = out.out + out.err
    assert f"list a: {tmp_path / 'nope.txt'}: no such file" in err and "a: a:" not in err
    assert not [r for r in caplog.records if r.name.startswith("gateway.registry")]  # not logged a second time
