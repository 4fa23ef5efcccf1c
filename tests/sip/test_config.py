"""``[sip]``: read on its own, every error naming its key."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from gateway.config import ConfigError, HostPort, SipCallerId, parse
from tests.conftest import SAMPLE_TOML


def sip(body: str) -> str:
    return SAMPLE_TOML + "\n[sip]\n" + body


def test_a_sip_section() -> None:
    cfg = parse(sip('listen = "127.0.0.1:5065"\nroute = "sip:carrier@10.0.0.2:5080"\n'
                    'allow = ["10.0.0.0/8"]\ncaller_id = "campaign"\n'
                    '[sip.campaigns]\n"10.1.0.0/16" = "legacy"\n"10.1.2.3" = "prospect"\n'), base=Path("."))
    s = cfg.sip
    assert s is not None and s.listen == HostPort("127.0.0.1", 5065) and s.route == "sip:carrier@10.0.0.2:5080"
    assert s.allow == (ipaddress.ip_network("10.0.0.0/8"),) and s.caller_id is SipCallerId.CAMPAIGN
    # the most specific network first
    assert [name for _net, name in s.campaigns] == ["prospect", "legacy"]


def test_without_a_sip_section_no_sip_server() -> None:
    assert parse(SAMPLE_TOML).sip is None


@pytest.mark.parametrize(("body", "message"), [
    ('listen = "127.0.0.1:5065"\n', "needs 'route'"),
    ('route = "http://carrier"\n', "is not a sip: URI"),
    ('route = "sip:c@h"\nlisten = "nowhere"\n', "is not HOST:PORT"),
    ('route = "sip:c@h"\nallow = ["not-a-net"]\n', "is not an address or network"),
    ('route = "sip:c@h"\ncaller_id = "from"\n', "is not one of"),
    ('route = "sip:c@h"\nread_timeout = 0\n', "must be positive"),
    ('route = "sip:c@h"\nrout = "x"\n', "did you mean 'route'"),
    ('route = "sip:c@h"\n[sip.campaigns]\n"10.0.0.1" = "nope"\n', "no campaign named 'nope'"),
    ('route = "sip:c@h"\n[sip.campaigns]\n"x.y" = "legacy"\n', "is not an address or network"),
])
def test_errors_name_the_key(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        parse(sip(body))
    assert "[sip]" in str(e.value)
