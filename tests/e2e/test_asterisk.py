"""End to end with a real Asterisk: asterisk-config/ as shipped, two ``dnc-gateway serve``, SIPp on both sides.

Asterisk runs the four files of asterisk-config/ with only the edits its README asks for (the gateways'
addresses in ``[globals]``, the SIP bind address, the carrier's address, the AMI port), plus one context a
careless administrator might add: ``8`` + number dials the trunk without screening (the bypass the AMI
watcher must catch). SIPp plays an agent's softphone (digest authentication, as pjsip.conf requires) and
the carrier behind the trunk. What is checked is what a compliance officer would: a listed number never
reaches the carrier, the others do, every decision is in the gateway's audit log with the id the dialplan
saw, the attempt is confirmed over AMI, and a call that skips the screening is flagged and hung up.

Asterisk cannot be installed from this project's package sources, so the module is skipped unless one is
found: ``DNC_ASTERISK=/path/to/sbin/asterisk`` (or ``asterisk`` on PATH), with sipp. asterisk-config/README.md
says how it was run for the record (Asterisk 23.4.1 built from source).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import write_sample
from tests.e2e.pbx import (
    ROOT,
    SERVE,
    SIPP_DIR,
    Asterisk,
    asterisk_config,
    free_tcp_port,
    free_udp_port,
    listening,
    stop,
    wait_until,
)
from tests.e2e.pbx import edit as _edit

ASTERISK = os.environ.get("DNC_ASTERISK") or shutil.which("asterisk")
SIPP = shutil.which("sipp")
TOKEN = "test-token"  # the sample config's admin token
AMI_SECRET = "change-me-to-a-long-random-secret"  # manager.conf's, as shipped

pytestmark = pytest.mark.skipif(
    not (ASTERISK and SIPP),
    reason="needs a real Asterisk (DNC_ASTERISK=/path/to/sbin/asterisk or asterisk on PATH) and sipp")

# The screening must not depend on the hour the suite runs at: hours and holidays are tested elsewhere.
CAMPAIGN_EDIT = "\ncheck_hours = false\ncheck_holidays = false\n"

# What a careless administrator might add: a prefix that dials the trunk directly.
BYPASS_CONTEXT = """
[agents](+)
exten => _8X.,1,NoOp(Unscreened call to ${EXTEN:1}: a bypass the AMI watcher must catch)
 same => n,Dial(PJSIP/${EXTEN:1}@${DNC_TRUNK},30)
 same => n,Hangup()
"""


@dataclass
class Gateway:
    name: str
    agi_port: int
    web_port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> str:
        req = urllib.request.Request(f"http://127.0.0.1:{self.web_port}{path}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return str(resp.read().decode())

    def audit(self, number: str) -> list[dict[str, object]]:
        records: list[dict[str, object]] = json.loads(self.get(f"/api/audit?number={number}"))["records"]
        return records

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.get("/metrics").splitlines():
            if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


@dataclass
class Stack:
    root: Path
    pbx: Asterisk
    sip_port: int
    trunk_log: Path
    gateways: list[Gateway]
    dead_port: int
    calls: int = 0

    def cli(self, command: str) -> str:
        return self.pbx.cli(command)

    def use(self, a: int | None, b: int | None) -> None:
        """Point [globals] DNC_GW_A / DNC_GW_B at these gateways (None: a port nothing listens on)."""
        for var, i in (("DNC_GW_A", a), ("DNC_GW_B", b)):
            port = self.gateways[i].agi_port if i is not None else self.dead_port
            self.cli(f"dialplan set global {var} 127.0.0.1:{port}")

    def dial(self, number: str, agent: str = "agent1") -> str:
        """One call from an agent's softphone; the final answer it got: "200" (connected) or the refusal's code."""
        return self.dial_many([number], agent)[number]

    def dial_many(self, numbers: list[str], agent: str = "agent1", rate: float = 10.0) -> dict[str, str]:
        """Calls from one agent's softphone, ``rate`` new calls a second: each number's final answer."""
        assert SIPP is not None and len(set(numbers)) == len(numbers)
        self.calls += 1
        work = self.root / f"call-{self.calls}"
        work.mkdir()
        (work / "calls.csv").write_text("SEQUENTIAL\n" + "".join(f"{n};{agent};\n" for n in numbers))
        trace = work / "messages.log"
        out = subprocess.run(
            [SIPP, f"127.0.0.1:{self.sip_port}", "-sf", str(SIPP_DIR / "agent.xml"), "-inf", str(work / "calls.csv"),
             "-au", agent, "-ap", f"change-me-{agent}", "-i", "127.0.0.1", "-p", str(free_udp_port()),
             "-m", str(len(numbers)), "-r", f"{rate:g}", "-l", "500", "-nostdin", "-timeout", "60s", "-trace_msg",
             "-message_file", str(trace)],
            cwd=work, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"sipp agent calls failed: {out.stdout[-1500:]}{out.stderr[-1500:]}"
        called: dict[str, str] = {}  # Call-ID -> number
        finals: dict[str, str] = {}
        for received, msg in messages(trace):
            call_id = re.search(r"^Call-ID:\s*(\S+)", msg, re.M | re.I)
            if call_id is None:
                continue
            if not received and (m := re.match(r"INVITE sip:([^@]+)@", msg)):
                called[call_id.group(1)] = m.group(1)
            elif (received and (m := re.match(r"SIP/2\.0 ([2-6]\d\d) ", msg))
                  and re.search(r"^CSeq: 2 INVITE", msg, re.M)):
                finals.setdefault(call_id.group(1), m.group(1))
        answers = {called[c]: code for c, code in finals.items()}
        assert set(answers) == set(numbers), f"no final answer for {set(numbers) - set(answers)} in {trace}"
        return answers

    def trunk_requests(self, method: str) -> list[str]:
        """Call-IDs of the requests of ``method`` the carrier received."""
        return [m.group(1) for received, msg in messages(self.trunk_log) if received and msg.startswith(f"{method} ")
                and (m := re.search(r"^Call-ID:\s*(\S+)", msg, re.M | re.I))]

    def trunk_invites(self) -> list[str]:
        """Request-URI users of the INVITEs the carrier received, in order (retransmissions once)."""
        seen: dict[str, str] = {}
        for received, msg in messages(self.trunk_log):
            if received and (m := re.match(r"INVITE sip:([^@;>\s]+)@", msg)):
                call_id = re.search(r"^Call-ID:\s*(\S+)", msg, re.M | re.I)
                seen.setdefault(call_id.group(1) if call_id else msg, m.group(1))
        return list(seen.values())


def messages(trace: Path) -> list[tuple[bool, str]]:
    """SIPp's -trace_msg file as (received, message) pairs."""
    text = trace.read_text(errors="replace") if trace.exists() else ""
    out = []
    for block in re.split(r"^-{20,} .*\n", text, flags=re.M)[1:]:
        head, _, body = block.partition("\n\n")
        out.append(("received" in head, body.lstrip("\n")))
    return out


def start_gateway(root: Path, name: str, answer: str, ami_port: int | None) -> Gateway:
    conf = write_sample(root / name)
    text = conf.read_text()
    text = _edit(text, 'allow = ["127.0.0.0/8", "::1"]', f'allow = ["127.0.0.0/8", "::1"]\nanswer = "{answer}"')
    text = _edit(text, 'state = "memory://"', 'state = "memory://"\naudit = "audit.db"')
    for campaign in ("prospect", "legacy"):
        text = _edit(text, f"[campaigns.{campaign}]\n", f"[campaigns.{campaign}]{CAMPAIGN_EDIT}")
    if ami_port is not None:
        text += (f'\n[ami]\nhost = "127.0.0.1"\nport = {ami_port}\nusername = "dncgw"\nsecret = "{AMI_SECRET}"\n'
                 'trunk_prefix = "PJSIP/trunk"\nhangup_bypass = true\nping_interval = 1\n')
    conf.write_text(text)
    return launch_gateway(root, name, conf)


def launch_gateway(root: Path, name: str, conf: Path) -> Gateway:
    """``dnc-gateway serve`` of this checkout on ``conf`` (in ``root / name``), once its web port answers."""
    agi_port, web_port = free_tcp_port(), free_tcp_port()
    log = root / f"{name}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "--config", str(conf), "--log-level", "INFO", "serve",
             "--agi-listen", f"127.0.0.1:{agi_port}", "--web-listen", f"127.0.0.1:{web_port}"],
            cwd=root / name, env=dict(os.environ, DNC_GATEWAY_INSTANCE=name, PYTHONPATH=str(ROOT)),
            stdout=subprocess.DEVNULL, stderr=err)
    gw = Gateway(name, agi_port, web_port, proc, log)

    def up() -> bool:
        assert proc.poll() is None, f"{name} exited: {log.read_text()[-2000:]}"
        return listening(web_port)

    wait_until(up, f"{name} to listen", 30)
    return gw


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert ASTERISK is not None and SIPP is not None
    root = tmp_path_factory.mktemp("pbx")
    sip_port, trunk_port, ami_port, dead_port = free_udp_port(), free_udp_port(), free_tcp_port(), free_tcp_port()
    gateways: list[Gateway] = []
    trunk_log = root / "trunk-messages.log"
    trunk: subprocess.Popen[bytes] | None = None
    pbx: Asterisk | None = None
    try:
        trunk = subprocess.Popen(
            [SIPP, "-sf", str(SIPP_DIR / "trunk.xml"), "-i", "127.0.0.2", "-p", str(trunk_port), "-nostdin",
             "-trace_msg", "-message_file", str(trunk_log)], cwd=root, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        # gw1 answers with SET VARIABLE and watches AMI; gw2 answers with one EXEC MSet (the default).
        gateways.append(start_gateway(root, "gw1", "set_variable", ami_port))
        gateways.append(start_gateway(root, "gw2", "mset", None))
        conf = asterisk_config(root / "asterisk", sip_port, trunk_port, ami_port, gateways[0].agi_port,
                               gateways[1].agi_port, BYPASS_CONTEXT)
        pbx = Asterisk(ASTERISK, conf, root)
        s = Stack(root, pbx, sip_port, trunk_log, gateways, dead_port)
        pbx.wait_booted()
        wait_until(lambda: gateways[0].metric("dnc_ami_connected") == 1, "the AMI watcher to log in", 20)
        yield s
    finally:
        if pbx is not None:
            pbx.stop()
        for p in [q for q in (trunk,) if q is not None] + [g.proc for g in gateways]:
            stop(p)


def _one(records: list[dict[str, object]]) -> dict[str, object]:
    assert len(records) >= 1, "no audit record"
    return records[-1]


def test_a_listed_number_is_refused_and_never_reaches_the_carrier(stack: Stack) -> None:
    stack.use(0, 1)
    before = stack.trunk_invites()
    assert stack.dial("0612000001", "agent2") == "403"  # legacy campaign: the opposition list applies
    assert stack.trunk_invites() == before
    rec = _one(stack.gateways[0].audit("0612000001"))
    assert (rec["verdict"], rec["reason"], rec["campaign"]) == ("BLOCK", "opposition_list", "legacy")
    assert str(rec["channel"]).startswith("PJSIP/agent2-")


def test_an_allowed_number_rings_through_the_trunk_and_is_confirmed_over_ami(stack: Stack) -> None:
    stack.use(0, 1)
    confirmed = stack.gateways[0].metric("dnc_attempts_confirmed_total")
    assert stack.dial("0612000060", "agent2") == "200"
    assert stack.trunk_invites()[-1] == "0612000060"
    rec = _one(stack.gateways[0].audit("0612000060"))
    assert (rec["verdict"], rec["reason"], rec["campaign"]) == ("ALLOW", None, "legacy")
    wait_until(lambda: stack.gateways[0].metric("dnc_attempts_confirmed_total") > confirmed,
               "the AMI watcher to confirm the attempt")
    assert stack.gateways[0].metric("dnc_bypasses_total") == 0


def test_consent_regime_and_the_agents_caller_id(stack: Stack) -> None:
    """agent1's campaign is under the consent regime: only numbers with a recorded consent go through."""
    stack.use(0, 1)
    assert stack.dial("0612000070", "agent1") == "403"
    assert _one(stack.gateways[0].audit("0612000070"))["reason"] == "no_consent"
    assert stack.dial("0612000011", "agent1") == "200"
    rec = _one(stack.gateways[0].audit("0612000011"))
    assert (rec["verdict"], rec["caller_id"]) == ("ALLOW", "0162000000")  # pjsip.conf set_var DNC_CALLER_ID


def test_gateway_a_down_gateway_b_decides_with_one_mset(stack: Stack) -> None:
    stack.use(None, 1)
    assert stack.dial("0612000002", "agent2") == "403"
    assert _one(stack.gateways[1].audit("0612000002"))["reason"] == "opposition_list"
    assert stack.dial("0612000061", "agent2") == "200"
    assert stack.trunk_invites()[-1] == "0612000061"
    assert _one(stack.gateways[1].audit("0612000061"))["verdict"] == "ALLOW"
    assert stack.gateways[0].audit("0612000061") == []


def test_no_gateway_at_all_fails_closed(stack: Stack) -> None:
    stack.use(None, None)
    before = stack.trunk_invites()
    assert stack.dial("0612000062", "agent2") == "403"
    assert stack.trunk_invites() == before


def test_optout_feature_code_blocks_the_next_call_at_once(stack: Stack) -> None:
    stack.use(0, 1)
    assert stack.dial("0612000063", "agent2") == "200"
    assert stack.dial("*62", "agent2") == "200"  # answered, recorded, then Asterisk hangs up
    assert stack.dial("0612000063", "agent2") == "403"
    assert _one(stack.gateways[0].audit("0612000063"))["reason"] == "internal_dnc"


def test_refusal_feature_code_starts_the_cooldown(stack: Stack) -> None:
    stack.use(0, 1)
    assert stack.dial("0612000064", "agent2") == "200"
    assert stack.dial("*61", "agent2") == "200"  # the callee refused: recorded for the last number called
    assert stack.dial("0612000064", "agent2") == "403"
    assert _one(stack.gateways[0].audit("0612000064"))["reason"] == "refusal_cooldown"


def test_emergency_numbers_go_through_unscreened(stack: Stack) -> None:
    stack.use(None, None)  # even with no gateway at all
    assert stack.dial("112", "agent1") == "200"
    assert stack.trunk_invites()[-1] == "112"
    assert stack.gateways[0].metric("dnc_bypasses_total") == 0


def test_a_call_that_skips_the_screening_is_flagged_and_hung_up(stack: Stack) -> None:
    stack.use(0, 1)
    bypasses = stack.gateways[0].metric("dnc_bypasses_total")
    cancels = len(stack.trunk_requests("CANCEL"))
    # 0612000003 is on the opposition list; "8" + number reaches the trunk without the gateway being asked.
    # The watcher sees DialBegin on the trunk with no decision and sends an AMI Hangup (cause 21), which the
    # least-privilege user of manager.conf (write = call) is allowed to do: the carrier's phone stops ringing.
    assert stack.dial("80612000003", "agent2") == "403"
    assert stack.trunk_invites()[-1] == "0612000003"  # it did reach the carrier: that is the bypass
    assert len(stack.trunk_requests("CANCEL")) == cancels + 1
    assert stack.gateways[0].metric("dnc_bypasses_total") == bypasses + 1
    log = stack.gateways[0].log.read_text()
    assert "BYPASS (no_decision)" in log and "bypass hangup of PJSIP/agent2-" in log
    assert "0612000003" not in log and "612000003" not in log  # numbers are masked in the log


def test_a_burst_of_calls_is_screened_call_by_call(stack: Stack) -> None:
    """120 calls at 30 a second from one agent: every one decided and audited, the listed ones refused, the
    others through the trunk, each attempt confirmed over AMI, no FastAGI error, no bypass."""
    stack.use(0, 1)
    gw = stack.gateways[0]
    confirmed, bypasses = gw.metric("dnc_attempts_confirmed_total"), gw.metric("dnc_bypasses_total")
    errors = gw.metric("dnc_agi_errors_total")
    listed = [f"061200000{i}" for i in (4, 5)]  # on the opposition list, not dialled by the tests above
    numbers = [*listed, *(f"0612{1000 + i:06d}" for i in range(118))]
    answers = stack.dial_many(numbers, "agent2", rate=30)
    assert {n: answers[n] for n in listed} == dict.fromkeys(listed, "403")
    assert {answers[n] for n in numbers[2:]} == {"200"}
    assert set(numbers[2:]) <= set(stack.trunk_invites()) and not set(listed) & set(stack.trunk_invites())
    for n in numbers:
        rec = _one(gw.audit(n))
        assert rec["verdict"] == ("BLOCK" if n in listed else "ALLOW") and rec["campaign"] == "legacy"
    wait_until(lambda: gw.metric("dnc_attempts_confirmed_total") >= confirmed + 118, "118 confirmations")
    assert gw.metric("dnc_bypasses_total") == bypasses and gw.metric("dnc_agi_errors_total") == errors
