"""SIPp material: the checked-in capture of tests/sipp/uac.xml against uas.xml, and the same scenarios run
for real on loopback, captured, and replayed through the gateway."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.replay.sources import read_trace
from tests.replay.captures import T0, ether, invite, udp_ip, write
from tests.replay.conftest import Live

SIPP_DIR = Path(__file__).parent.parent / "sipp"
CAPTURE = SIPP_DIR / "capture.pcapng"  # tshark -i lo while uac.xml called uas.xml with calls.csv


def _calls(path: Path) -> list[tuple[str, str, str]]:
    return [(c.number, c.campaign, c.caller_id) for c in read_trace(path).calls]


def test_checked_in_capture_holds_the_injected_calls() -> None:
    trace = read_trace(CAPTURE)
    assert trace.kind == "pcapng" and not trace.warnings
    assert _calls(CAPTURE) == _calls(SIPP_DIR / "calls.csv")
    assert [c.at for c in trace.calls] == sorted(c.at for c in trace.calls if c.at is not None)
    assert trace.stats["sip_messages"] == trace.stats["frames"]  # nothing but SIP in it


def _replay_matches_check(live: Live, capture: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    code = main(["replay", str(capture), "--gateway", f"127.0.0.1:{live.port}", "--speed", "50", "--format", "csv",
                 "--show-numbers"])
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = list(csv.DictReader(io.StringIO(out.out)))
    for row in rows:
        d = live.check(row["number"], row["campaign"], row["caller_id"]).decision
        assert (row["verdict"], row["reason"]) == (str(d.verdict), str(d.reason or "")), row
    return rows


def test_checked_in_capture_replays_like_check(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _replay_matches_check(live, CAPTURE, capsys)
    assert [r["reason"] for r in rows] == ["opposition_list", "", "internal_dnc", "emergency"]
    assert [r["would_block"] for r in rows] == ["1", "0", "1", "0"]  # survey is in monitor mode


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _capture(path: Path, ports: tuple[int, int]) -> Iterator[None]:
    """Capture loopback UDP on the ports with dumpcap (tshark's capture engine) for the block's duration."""
    tool = shutil.which("dumpcap") or shutil.which("tshark")
    if tool is None:
        pytest.skip("neither dumpcap nor tshark installed (Debian: tshark): cannot record the SIPp traffic")
    proc = subprocess.Popen([tool, "-i", "lo", "-f", f"udp port {ports[0]} or udp port {ports[1]}", "-w", str(path),
                             "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    ready = False
    deadline = time.monotonic() + 10
    err = ""
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stderr.readline()
        err += line
        if "Capturing on" in line:
            ready = True
            break
    if not ready:
        proc.kill()
        proc.wait(5)
        pytest.skip(f"cannot capture on the loopback interface (needs root or CAP_NET_RAW): {err.strip()[-200:]}")
    try:
        yield
    finally:
        time.sleep(0.2)  # let the last datagrams reach the capture buffer
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_sipp_uac_against_uas_on_loopback_then_replay(live: Live, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.skip("sipp not installed (Debian: sip-tester): the live SIPp scenario cannot run")
    # The injection file comes from a capture, through --to-sipp: the round trip the README describes.
    calls = [("0612000001", "legacy", "0162000000"), ("0612000009", "prospect", "0162000000"),
             ("0899123456", "legacy", "0162000000"), ("0612000777", "prospect", "")]
    source = write(tmp_path / "source.pcap", [
        (T0 + i, ether(udp_ip(invite(n, call_id=f"s{i}", campaign=c, caller=cid or "anonymous"))))
        for i, (n, c, cid) in enumerate(calls)])
    inject = tmp_path / "calls.csv"
    assert main(["replay", str(source), "--to-sipp", str(inject)]) == 0
    capsys.readouterr()

    uas_port, uac_port = _free_udp_port(), _free_udp_port()
    captured = tmp_path / "live.pcapng"
    common = ["-i", "127.0.0.1", "-nostdin", "-timeout", "15s", "-m", str(len(calls))]
    with _capture(captured, (uas_port, uac_port)):
        uas = subprocess.Popen([sipp, "-sf", str(SIPP_DIR / "uas.xml"), "-p", str(uas_port), *common],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            time.sleep(0.3)  # the UAC retransmits its INVITE anyway should the UAS bind late
            uac = subprocess.run([sipp, f"127.0.0.1:{uas_port}", "-sf", str(SIPP_DIR / "uac.xml"), "-inf",
                                  str(inject), "-p", str(uac_port), "-r", "20", *common],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=30,
                                 cwd=tmp_path)
            assert uac.returncode == 0, f"sipp UAC failed: {uac.stderr[-500:]}"
            assert uas.wait(20) == 0, "sipp UAS failed"
        finally:
            if uas.poll() is None:
                uas.kill()
                uas.wait(5)
    assert _calls(captured) == calls
    rows = _replay_matches_check(live, captured, capsys)
    assert [r["reason"] for r in rows] == ["opposition_list", "", "blocked_prefix", "no_consent"]
