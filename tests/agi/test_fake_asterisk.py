"""The tests' fake Asterisk is the product's FastAGI client (gateway/replay/fastagi.py) plus Asterisk's way of
writing on the socket: no second copy of the protocol to drift from the first."""

from __future__ import annotations

from gateway.replay import fastagi
from tests.agi import fake_asterisk
from tests.agi.fake_asterisk import answer, channel_info, recorded_sessions


def test_replies_are_the_product_clients() -> None:
    variables = {"DNC_CAMPAIGN": "legacy"}
    assert answer('SET VARIABLE DNC_VERDICT "BLOCK"', variables, False) == "200 result=1\n"
    assert answer("GET VARIABLE DNC_CAMPAIGN", variables, False) == "200 result=1 (legacy)\n"
    assert answer('EXEC MSet "A=1,B=2"', variables, True) == "200 result=0\n"  # EXEC works on a dead channel
    assert variables == {"DNC_CAMPAIGN": "legacy", "DNC_VERDICT": "BLOCK", "A": "1", "B": "2"}
    assert answer("ANSWER", variables, True) == fastagi.DEAD_CHANNEL
    assert answer("FOO", variables, False) == "510 Invalid or unknown command\n"
    assert not hasattr(fake_asterisk, "parse_args")  # one parser: gateway.replay.fastagi.parse_args


def test_channel_info_read_back_from_a_recorded_block() -> None:
    rec = recorded_sessions()[0]
    info = channel_info(rec.env)
    assert (info.script, info.args, info.channel, info.uniqueid) == (
        "check", ("0612000001", "prospect"), "PJSIP/sipp-00000005", "1795418477.5")
    assert fastagi.env_block(info) == rec.env  # the product's client writes the same block back

