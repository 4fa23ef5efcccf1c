"""End to end with a real Asterisk, the other home countries: asterisk-config/nanp/ (a US gateway) and gb/.

The same harness as test_asterisk.py (SIPp agents and carrier, ``dnc-gateway serve`` of this checkout), on each
country's dialplan with only the README's edits. NANP: ten-digit local dialling, ``1`` + ten digits, ``011`` + an
international number, 911 and 988 never screened. GB: ``0`` + national number, ``00`` + international, 999 and
112 never screened. What is checked is what a compliance officer would: a number on the national list is refused
in every form an agent may dial it and never reaches the carrier, the others ring through, and the emergency
numbers reach the trunk even when no gateway answers, without being reported as a bypass. Skipped unless a real
Asterisk and sipp are found (``DNC_ASTERISK``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.pbx import SIPP_DIR, Asterisk, asterisk_config, free_tcp_port, free_udp_port, stop, wait_until
from tests.e2e.test_asterisk import AMI_SECRET, ASTERISK, SIPP, Gateway, Stack, launch_gateway

pytestmark = pytest.mark.skipif(
    not (ASTERISK and SIPP),
    reason="needs a real Asterisk (DNC_ASTERISK=/path/to/sbin/asterisk or asterisk on PATH) and sipp")

LISTED = "2125550123"  # on the national Do-Not-Call list (New York)
COMPANY_DNC = "+442079460001"  # a London number on the company's own do-not-call list, dialled 011 44 ...
CALLER_ID = "2025550100"  # asterisk-config/nanp/pjsip.conf's DNC_CALLER_ID
GB_LISTED = "+442079460123"  # on the TPS extract (London)
GB_COMPANY_DNC = "+12125550199"  # a New York number on the company's own list, dialled 00 1 ...
GB_CALLER_ID = "02079460000"  # asterisk-config/gb/pjsip.conf's DNC_CALLER_ID


def gateway_config(root: Path, ami_port: int, home: str, zone: str, national: tuple[str, str, str],
                   company_dnc: str, caller_id: str) -> Path:
    """A gateway as an operator of ``home`` would write it: the national list (``national``: name, country, its
    numbers; an extract of today), the company's own list; hours and holidays off, since the suite runs at any
    hour (they are tested elsewhere)."""
    root.mkdir(parents=True)
    name, country, numbers = national
    (root / f"{name}.txt").write_text(numbers)
    (root / "company-dnc.txt").write_text(f"{company_dnc}\n")
    today = datetime.now(UTC).date().isoformat()
    campaigns = "".join(f"""
[campaigns.{campaign}]
lists = ["{name}", "company-dnc"]
caller_id = "{caller_id}"
check_hours = false
check_holidays = false
""" for campaign in ("prospect", "legacy"))  # agent1's and agent2's campaigns in pjsip.conf
    conf = root / "gateway.toml"
    conf.write_text(f"""
[gateway]
home_country = "{home}"
professional = "acme"
state = "memory://"
audit = "audit.db"
timezone = "{zone}"

[agi]
listen = "127.0.0.1:0"
allow = ["127.0.0.0/8", "::1"]

[web]
listen = "127.0.0.1:0"
admin_token = "test-token"

[lists.{name}]
kind = "opposition"
country = "{country}"
path = "{name}.txt"
as_of = "{today}"
max_age_days = 31

[lists.company-dnc]
kind = "internal_dnc"
path = "company-dnc.txt"
{campaigns}
[ami]
host = "127.0.0.1"
port = {ami_port}
username = "dncgw"
secret = "{AMI_SECRET}"
trunk_prefix = "PJSIP/trunk"
ping_interval = 1
""")
    return conf


def nanp_config(root: Path, ami_port: int) -> Path:
    return gateway_config(root, ami_port, "US", "America/New_York", ("national-dnc", "US", f"+1{LISTED}\n"),
                          COMPANY_DNC, CALLER_ID)


def gb_config(root: Path, ami_port: int) -> Path:
    return gateway_config(root, ami_port, "GB", "Europe/London", ("tps", "GB", f"{GB_LISTED}\n"), GB_COMPANY_DNC,
                          GB_CALLER_ID)


@contextmanager
def country_stack(root: Path, variant: str, config: Callable[[Path, int], Path]) -> Iterator[Stack]:
    """asterisk-config/``variant``/ on a real Asterisk, one gateway (both [globals] point at it), SIPp around."""
    assert ASTERISK is not None and SIPP is not None
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
        gateways.append(launch_gateway(root, "gw1", config(root / "gw1", ami_port)))
        # One gateway is enough here (A then B is the French test's subject): both globals point at it.
        conf = asterisk_config(root / "asterisk", sip_port, trunk_port, ami_port, gateways[0].agi_port,
                               gateways[0].agi_port, variant=variant)
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


@pytest.fixture(scope="module")
def nanp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with country_stack(tmp_path_factory.mktemp("pbx-nanp"), "nanp", nanp_config) as s:
        yield s


@pytest.fixture(scope="module")
def gb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with country_stack(tmp_path_factory.mktemp("pbx-gb"), "gb", gb_config) as s:
        yield s


def test_a_listed_number_is_refused_in_ten_digits_and_with_1(nanp: Stack) -> None:
    nanp.use(0, 0)
    before = nanp.trunk_invites()
    assert nanp.dial(LISTED, "agent2") == "403"
    assert nanp.dial("1" + LISTED, "agent2") == "403"
    assert nanp.trunk_invites() == before  # the carrier never saw either
    records = nanp.gateways[0].audit(LISTED)  # the API reads the number as the gateway does (+1 212 ...)
    assert [(r["verdict"], r["reason"], r["campaign"]) for r in records] == [("BLOCK", "opposition_list", "legacy")] * 2


def test_an_allowed_number_rings_through_with_the_agents_caller_id(nanp: Stack) -> None:
    nanp.use(0, 0)
    assert nanp.dial("2125550124", "agent1") == "200"
    assert nanp.dial("12125550125", "agent1") == "200"
    assert nanp.trunk_invites()[-2:] == ["2125550124", "12125550125"]  # dialled as the agent dialled them
    rec = nanp.gateways[0].audit("2125550124")[-1]
    assert (rec["verdict"], rec["campaign"], rec["caller_id"]) == ("ALLOW", "prospect", CALLER_ID)


def test_011_international_numbers_are_screened(nanp: Stack) -> None:
    nanp.use(0, 0)
    dialled = "011" + COMPANY_DNC[1:]
    assert nanp.dial(dialled, "agent2") == "403"
    assert nanp.gateways[0].audit(dialled)[-1]["reason"] == "internal_dnc"  # 011 44 ...: +44 ...
    assert nanp.dial("011442079460002", "agent2") == "200"
    assert nanp.trunk_invites()[-1] == "011442079460002"
    assert dialled not in nanp.trunk_invites()


def test_no_gateway_fails_closed(nanp: Stack) -> None:
    nanp.use(None, None)
    before = nanp.trunk_invites()
    assert nanp.dial("2125550126", "agent2") == "403"
    assert nanp.trunk_invites() == before


def test_911_and_988_reach_the_trunk_unscreened_even_with_no_gateway(nanp: Stack) -> None:
    nanp.use(None, None)
    gw = nanp.gateways[0]
    decisions = gw.metric("dnc_decisions_total")
    for number in ("911", "988"):
        assert nanp.dial(number, "agent1") == "200"
        assert nanp.trunk_invites()[-1] == number
    assert gw.metric("dnc_decisions_total") == decisions  # never asked
    # Not mistaken for calls that skipped the screening: AMI events arrive in order, so once a later screened
    # call is confirmed, the watcher has seen both emergency calls' DialBegin.
    nanp.use(0, 0)
    confirmed = gw.metric("dnc_attempts_confirmed_total")
    assert nanp.dial("2125550127", "agent1") == "200"
    wait_until(lambda: gw.metric("dnc_attempts_confirmed_total") > confirmed, "the AMI watcher to confirm the attempt")
    assert gw.metric("dnc_bypasses_total") == 0


# -- United Kingdom -----------------------------------------------------------------------------------------------

def test_gb_a_listed_number_is_refused_as_dialled_nationally_and_internationally(gb: Stack) -> None:
    gb.use(0, 0)
    before = gb.trunk_invites()
    assert gb.dial("02079460123", "agent2") == "403"
    assert gb.dial("00442079460123", "agent2") == "403"
    assert gb.trunk_invites() == before
    records = gb.gateways[0].audit("02079460123")
    assert [(r["verdict"], r["reason"]) for r in records] == [("BLOCK", "opposition_list")] * 2
    assert gb.dial("0012125550199", "agent2") == "403"  # 00 1 212 ...: the company's own list
    assert gb.gateways[0].audit("0012125550199")[-1]["reason"] == "internal_dnc"


def test_gb_an_allowed_number_rings_through(gb: Stack) -> None:
    gb.use(0, 0)
    assert gb.dial("02079460124", "agent1") == "200"
    assert gb.trunk_invites()[-1] == "02079460124"
    rec = gb.gateways[0].audit("02079460124")[-1]
    assert (rec["verdict"], rec["caller_id"]) == ("ALLOW", GB_CALLER_ID)


def test_gb_999_and_112_reach_the_trunk_unscreened_even_with_no_gateway(gb: Stack) -> None:
    gb.use(None, None)
    gw = gb.gateways[0]
    assert gb.dial("02079460125", "agent2") == "403"  # no gateway: fail closed
    for number in ("999", "112"):
        assert gb.dial(number, "agent1") == "200"
        assert gb.trunk_invites()[-1] == number
    gb.use(0, 0)
    confirmed = gw.metric("dnc_attempts_confirmed_total")
    assert gb.dial("02079460126", "agent1") == "200"
    wait_until(lambda: gw.metric("dnc_attempts_confirmed_total") > confirmed, "the AMI watcher to confirm the attempt")
    assert gw.metric("dnc_bypasses_total") == 0
