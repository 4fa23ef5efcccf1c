"""``dnc-gateway scrub``: files in, cleaned file, rejects and summary out; bad input exits 2."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway import cli
from gateway.config import load
from gateway.service import Gateway
from tests.conftest import write_sample


def test_cli(sample_config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "calls.csv"
    src.write_bytes(b"0612000001\n0612345678\nabc\n")
    out = tmp_path / "clean.csv"
    code = cli.main(["--config", str(sample_config_path), "scrub", str(src), "-o", str(out), "--campaign", "legacy",
                     "--at", "2026-11-24T10:30:00+01:00", "--summary-json", str(tmp_path / "s.json")])
    assert code == 0
    assert out.read_bytes() == b"0612345678\n"
    assert (tmp_path / "clean.csv.rejects.csv").read_bytes().count(b"\n") == 3
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["by_reason"] == {"opposition_list": 1, "invalid_number": 1}
    assert report["invalid"]["lines"] == [{"line": 3, "detail": "letters in the number"}]
    captured = capsys.readouterr()
    assert "3 lines: 1 kept, 2 removed" in captured.out
    assert "scrub:" not in captured.err  # no progress bar outside a terminal
    assert cli.main(["--config", str(sample_config_path), "scrub", str(src), "-o", str(out), "--campaign", "nope"]) == 2
    assert cli.main(["--config", str(sample_config_path), "scrub", str(src), "-o", str(out), "--campaign", "legacy",
                     "--at", "next tuesday"]) == 2
    assert cli.main(["--config", str(sample_config_path), "scrub", str(src), "-o", str(src), "--campaign",
                     "legacy"]) == 2


PRESS = """
[campaigns.presse]
category = "press"
lists = ["bloctel", "company-dnc"]
caller_id = "0162000000"
"""
AT = "2026-11-24T10:30:00+01:00"



@pytest.mark.parametrize("spelling", ["national", "international"])  # the block path, the line path
@pytest.mark.parametrize("campaign", ["legacy", "presse"])
def test_scrub_decides_as_check_with_what_the_state_store_knows(
        tmp_path: Path, state_url: str, campaign: str, spelling: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15 #1: a number opted out, refused or called four times was kept by scrub (``kept exempt_category``
    for a press campaign) while ``check`` blocked it: scrub now reads the same state store, per number."""
    monkeypatch.setenv("DNC_GATEWAY_STATE_SECRET", "scrub-test")
    conf = write_sample(tmp_path / "conf", PRESS)
    conf.write_text(conf.read_text().replace('state = "memory://"', f'state = "{state_url}"'))
    config = load(conf)
    at = datetime.fromisoformat(AT)

    async def record() -> None:
        gw = Gateway(config, clock=lambda: at - timedelta(days=2))
        await gw.start()
        await gw.optout("0612000061")  # over the API or the FastAGI optout route in production
        await gw.refusal("0612000062")
        for _ in range(4):
            await gw.state.record_attempt(gw.professional, gw.normaliser.parse("0612000063").key,
                                          at - timedelta(days=1))
        await gw.close()

    asyncio.run(record())
    numbers = ["0612000060", "0612000061", "0612000062", "0612000063", "0612000001"]
    src = tmp_path / "calls.txt"
    written = numbers if spelling == "national" else ["+33" + n[1:] for n in numbers]
    src.write_text("\n".join(written) + "\n")
    out = tmp_path / "clean.txt"
    summary = tmp_path / "s.json"
    assert cli.main(["--config", str(conf), "scrub", str(src), "-o", str(out), "--campaign", campaign,
                     "--at", AT, "--summary-json", str(summary)]) == 0
    report = json.loads(summary.read_text())
    rejects = (tmp_path / "clean.txt.rejects.csv").read_text().splitlines()[1:]
    by_number = {"0" + line.split(";")[0].removeprefix("+33").removeprefix("0"): line.split(";")[1]
                 for line in rejects}
    # Exactly what check says, number by number.
    for n in numbers:
        capsys.readouterr()
        assert cli.main(["--config", str(conf), "check", n, "--campaign", campaign, "--at", AT, "--json"]) == 0
        d = json.loads(capsys.readouterr().out)
        assert by_number.get(n) == (d["reason"] if d["verdict"] == "BLOCK" else None), n
    assert by_number["0612000061"] == "internal_dnc" and by_number["0612000062"] == "refusal_cooldown"
    assert by_number["0612000063"] == "frequency_cap"
    # A press campaign is exempt from the opposition list, not from what the callee said.
    kept = ["0612000060"] if campaign == "legacy" else ["0612000060", "0612000001"]
    assert out.read_text() == "".join(w + "\n" for n, w in zip(numbers, written, strict=True) if n in kept)
    assert report["by_state_rule"] == {"internal_dnc.optout": 1, "refusal_cooldown": 1, "frequency_cap": 1}
    assert report["state"].startswith(("sqlite://", "redis://"))
    # --no-state: lists and rules only, and the summary says so.
    assert cli.main(["--config", str(conf), "scrub", str(src), "-o", str(out), "--campaign", campaign,
                     "--at", AT, "--no-state", "--summary-json", str(summary)]) == 0
    assert json.loads(summary.read_text())["state"] == "ignored (--no-state)"
    assert written[1] in out.read_text()
