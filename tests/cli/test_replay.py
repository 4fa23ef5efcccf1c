"""``dnc-gateway replay`` end to end: generated captures through the real FastAGI server.

The gateway runs on its own event loop in a thread, as it would in another process; the
command runs in the test's thread exactly as from a shell. Every call's verdict must be
the one ``check`` gives for the same number, campaign and caller ID.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.replay import parse_hostport
from gateway.config import load as load_config
from gateway.replay.sources import InputError, read_trace
from gateway.service import Gateway
from tests.replay.captures import T0, ether, invite, tcp_segments, udp_ip, write
from tests.replay.conftest import Live

# (number, campaign, caller ID) -> one call each; covers every kind of answer the sample config gives.
CALLS = [
    ("0612000001", "legacy", "0162000000"),  # opposition list
    ("0612000002", "prospect", "0162000000"),  # consent regime: no consent
    ("0612000009", "prospect", "0162000000"),  # consent: allowed
    ("0612000100", "legacy", "0162000000"),  # customer: contract exemption
    ("0612000200", "prospect", "0162000000"),  # company DNC
    ("0612000300", "legacy", "0162000000"),  # litigator
    ("0899123456", "legacy", "0162000000"),  # premium prefix
    ("112", "prospect", "0162000000"),  # emergency: always allowed
    ("0612000777", "prospect", "0162000000"),  # no consent
    ("0612000200", "survey", "0162000002"),  # monitor mode: allowed, would block
    ("0612000010", "nope", "0162000000"),  # unknown campaign
    ("0612000011", "prospect", ""),  # no caller ID in the trace: the campaign's applies
]


def mixed_capture(path: Path) -> Path:
    """The CALLS over UDP, TCP split in segments, compact headers and IPv6, with retransmissions and noise."""
    frames: list[tuple[float, bytes]] = []
    for i, (number, campaign, caller) in enumerate(CALLS):
        msg = invite(number, call_id=f"call-{i}", campaign=campaign, caller=caller or "anonymous",
                     compact=i % 3 == 1)
        ts = T0 + i * 0.01
        if i % 4 == 2:  # TCP, cut in three segments
            frames += [(ts, ether(s)) for s in tcp_segments(msg, [60, 250], isn=1000 * i, sport=40000 + i)]
        elif i % 4 == 3:  # IPv6
            frames.append((ts, ether(udp_ip(msg, src="::1", dst="::1"))))
        else:
            frames.append((ts, ether(udp_ip(msg))))
            frames.append((ts + 0.5, ether(udp_ip(msg))))  # retransmission
        frames.append((ts, ether(udp_ip(b"\x80\x00rtp" * 20, sport=7000, dport=7002))))
    return write(path, sorted(frames, key=lambda f: f[0]), ng=True)


def _replay(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["replay", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_replay_gives_the_same_verdicts_as_check(live: Live, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cap = mixed_capture(tmp_path / "mixed.pcapng")
    code, out, err = _replay(capsys, str(cap), "--gateway", f"127.0.0.1:{live.port}", "--fast",
                             "--format", "csv", "--show-numbers")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(CALLS)
    for row, (number, campaign, caller) in zip(rows, CALLS, strict=True):
        expected = live.check(number, campaign, caller).decision
        assert row["number"] == number and row["campaign"] == campaign
        assert (row["verdict"], row["reason"], row["would_block"]) == (
            str(expected.verdict), str(expected.reason or ""), str(int(expected.would_block))), (number, campaign)
        assert row["error"] == "" and row["decision_id"]
    reasons = {r["reason"] for r in rows}
    assert {"opposition_list", "internal_dnc", "litigator", "blocked_prefix", "emergency", "no_consent",
            "unknown_campaign"} <= reasons


def test_json_report_has_totals_by_verdict_and_reason(live: Live, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cap = mixed_capture(tmp_path / "mixed.pcapng")
    code, out, _ = _replay(capsys, str(cap), "--gateway", f"127.0.0.1:{live.port}", "--speed", "100",
                           "--format", "json", "--concurrency", "4")
    assert code == 0
    report = json.loads(out)
    assert report["total"] == len(CALLS) == report["answered"]
    assert sum(report["by_verdict"].values()) == len(CALLS)
    assert sum(report["by_reason"].values()) == len(CALLS)
    outcomes = [live.check(*c).decision for c in CALLS]
    assert report["by_verdict"]["BLOCK"] == sum(1 for d in outcomes if d.blocked)
    assert report["would_block"] == sum(1 for d in outcomes if d.blocked or d.would_block)
    assert report["by_reason"]["opposition_list"] == 1
    assert report["latency_ms"]["p99"] >= report["latency_ms"]["p50"] > 0
    assert report["input"]["stats"]["duplicate_invites"] > 0
    blocked = report["blocked"]
    assert len(blocked) == report["would_block"]
    assert all("•" in b["number"] for b in blocked if len(b["number"]) > 4)  # masked by default
    assert report["errors"] == {}


def test_campaign_flag_overrides_the_trace(live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = write(tmp_path / "c.pcap", [(T0, ether(udp_ip(invite("0612000200", call_id="a", campaign=None))))])
    code, out, _ = _replay(capsys, str(cap), "--gateway", f"127.0.0.1:{live.port}", "--campaign", "survey",
                           "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["by_verdict"] == {"ALLOW": 1}  # survey is a monitor campaign
    assert report["blocked"][0]["campaign"] == "survey"


def test_text_report_and_plain_csv(live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "calls.csv"
    src.write_text("time,number,campaign,caller_id\n2026-11-24T10:30:00+01:00,0612000001,legacy,0162000000\n"
                   "2026-11-24T10:30:00.05+01:00,0612000009,prospect,\n")
    code, out, _ = _replay(capsys, str(src), "--gateway", f"127.0.0.1:{live.port}")
    assert code == 0
    assert "replayed 2 calls from a csv trace" in out
    assert "opposition_list" in out and "0612000001" not in out and "0612•" in out


def test_header_named_campaign(live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = invite("0612000001", call_id="h", campaign=None).replace(b"Max-Forwards", b"X-Dialer-List: legacy\r\nMax-F")
    cap = write(tmp_path / "h.pcap", [(T0, ether(udp_ip(msg)))])
    code, out, _ = _replay(capsys, str(cap), "--gateway", f"127.0.0.1:{live.port}", "--campaign-header",
                           "x-dialer-list", "--format", "json", "--show-numbers")
    assert code == 0 and json.loads(out)["blocked"][0]["campaign"] == "legacy"


def test_unreachable_gateway_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        cap = mixed_capture(tmp_path / "m.pcapng")
        code, out, err = _replay(capsys, str(cap), "--gateway", f"127.0.0.1:{port}", "--format", "json")
    assert code == 1
    assert "cannot connect" in err
    report = json.loads(out)
    assert report["errors"]["unreachable"] == 1 and report["answered"] == 0


@pytest.mark.parametrize(("content", "message"), [
    (b"\xd4\xc3\xb2\xa1\x02\x00\x04", "not a readable capture"),
    (b"", "empty file"),
    (b"SEQUENTIAL\n", "no call line"),
])
def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    code, out, err = _replay(capsys, str(bad), "--gateway", "127.0.0.1:4573")
    assert code == 2 and out == ""
    assert err.startswith("dnc-gateway replay: ") and message in err


def test_bad_flags_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = mixed_capture(tmp_path / "m.pcapng")
    assert _replay(capsys, str(cap))[0] == 2  # neither --gateway nor --to-sipp
    code, _, err = _replay(capsys, str(cap), "--gateway", "nohostport")
    assert code == 2 and "HOST:PORT" in err
    with pytest.raises(SystemExit) as e:
        main(["replay", str(cap), "--gateway", "h:1", "--speed", "-1"])
    assert e.value.code == 2


def test_to_sipp_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = mixed_capture(tmp_path / "m.pcapng")
    out_csv = tmp_path / "inject.csv"
    code, _, err = _replay(capsys, str(cap), "--to-sipp", str(out_csv))
    assert code == 0 and f"wrote {len(CALLS)} calls" in err
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "SEQUENTIAL" and lines[1] == "0612000001;legacy;0162000000"
    assert lines[-1] == "0612000011;prospect;anonymous"
    back = read_trace(out_csv)
    assert [(c.number, c.campaign, c.caller_id) for c in back.calls] == CALLS


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:4573", ("127.0.0.1", 4573)),
    ("[::1]:4573", ("::1", 4573)),
    ("gw.example:1", ("gw.example", 1)),
])
def test_gateway_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text", ["4573", "::1:4573", "h:0", "h:99999", "h:"])
def test_bad_gateway_address(text: str) -> None:
    with pytest.raises(InputError):
        parse_hostport(text)


def test_ipv6_gateway(live6: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = write(tmp_path / "c.pcap", [(T0, ether(udp_ip(invite("0612000001", call_id="a", campaign="legacy"))))])
    code, out, err = _replay(capsys, str(cap), "--gateway", f"[::1]:{live6.port}", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["by_reason"] == {"opposition_list": 1}


# -- issue 15 #11: a replay does not touch the gateway's state unless asked ------------------------------

def five_calls(path: Path, number: str = "0612000009") -> Path:
    path.write_text("time,number,campaign,caller_id\n" + "".join(
        f"2026-11-24T10:30:0{i}+01:00,{number},prospect,0162000000\n" for i in range(5)))
    return path


def test_replay_is_a_dry_run_by_default(live_audited: Live, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Five replayed calls to one number made the fifth frequency_cap on the production gateway."""
    live = live_audited
    code, out, err = _replay(capsys, str(five_calls(tmp_path / "five.csv")), "--gateway", f"127.0.0.1:{live.port}",
                             "--fast", "--concurrency", "1", "--format", "json", "--show-numbers")
    assert code == 0, err
    report = json.loads(out)
    expected = live.check("0612000009", "prospect", "0162000000").decision
    assert (str(expected.verdict), expected.reason) == ("ALLOW", None)
    assert report["by_verdict"] == {"ALLOW": 5} and report["by_reason"] == {"none": 5}
    assert (report["route"], report["attempts_counted"]) == ("dryrun", False)
    # Nothing counted in the gateway's state store ...
    key = live.gateway.normaliser.parse("0612000009").key
    assert live.run(live.gateway.state.history("acme", key)).attempts == ()
    # ... and every decision audited, as a dry run.
    assert live.audit is not None
    records = live.audit.query(number="+33612000009")
    assert [r["source"] for r in records] == ["dry_run"] * 5 and [r["verdict"] for r in records] == ["ALLOW"] * 5
    assert live.audit.verify().ok


def test_text_report_says_it_was_a_dry_run(live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _replay(capsys, str(five_calls(tmp_path / "five.csv")), "--gateway", f"127.0.0.1:{live.port}",
                           "--fast")
    assert code == 0 and "route dryrun: dry run" in out and "no attempt counted" in out
    assert "decisions made at the gateway's time" in out  # not at the trace's: --offline does that
    code, out, err = _replay(capsys, str(five_calls(tmp_path / "five.csv")), "--gateway", f"127.0.0.1:{live.port}",
                             "--fast", "--format", "csv")
    assert code == 0 and "route dryrun: dry run" in err and "route" not in out
    assert "decisions made at the gateway's time" in err
    code, out, _ = _replay(capsys, str(five_calls(tmp_path / "five.csv")), "--gateway", f"127.0.0.1:{live.port}",
                           "--fast", "--format", "json")
    assert code == 0 and json.loads(out)["decided_at"] == "gateway_time" and json.loads(out)["mode"] == "online"


def test_count_attempts_counts_them_as_calls(live_audited: Live, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    live = live_audited
    code, out, err = _replay(capsys, str(five_calls(tmp_path / "five.csv")), "--gateway", f"127.0.0.1:{live.port}",
                             "--fast", "--concurrency", "1", "--format", "csv", "--show-numbers", "--count-attempts")
    assert code == 0, err
    assert [r["reason"] for r in csv.DictReader(io.StringIO(out))] == ["", "", "", "", "frequency_cap"]
    assert "route check: every allowed call counted as an attempt" in err
    key = live.gateway.normaliser.parse("0612000009").key
    assert len(live.run(live.gateway.state.history("acme", key)).attempts) == 4
    code, out, _ = _replay(capsys, str(five_calls(tmp_path / "five.csv")), "--gateway", f"127.0.0.1:{live.port}",
                           "--fast", "--count-attempts", "--format", "json")
    assert (json.loads(out)["route"], json.loads(out)["attempts_counted"]) == ("check", True)


def test_count_attempts_and_script_exclude_each_other(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["replay", str(five_calls(tmp_path / "five.csv")), "--gateway", "127.0.0.1:4573", "--count-attempts",
              "--script", "dryrun"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_offline_replay_of_a_capture_decides_at_its_frame_times(sample_config_path: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The capture was recorded on Monday 23 November 2026 at 08:21 in Paris: offline, its calls get what
    ``check`` answers at that time (outside the hours), not what a gateway answers today."""
    cap = mixed_capture(tmp_path / "mixed.pcapng")
    code, out, err = _replay(capsys, str(cap), "--offline", "--config", str(sample_config_path), "--format", "csv",
                             "--show-numbers")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    config = load_config(sample_config_path)
    gw = Gateway(config)
    gw.holder.load_all()

    async def expected() -> list[tuple[str, str]]:
        found = []
        for i, (number, campaign, caller) in enumerate(CALLS):
            outcome = await gw.check(number, campaign, caller or None, now=datetime.fromtimestamp(T0 + i * 0.01, UTC))
            found.append((str(outcome.decision.verdict), str(outcome.decision.reason or "")))
        return found

    assert [(r["verdict"], r["reason"]) for r in rows] == asyncio.run(expected())
    assert "outside_hours" in {r["reason"] for r in rows}
    assert rows[0]["at"].startswith("2026-11-23T08:21:17")  # in the config's timezone
