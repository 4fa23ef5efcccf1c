"""``serve`` starts the SIP redirect server when ``[sip]`` is configured, with its metrics, and drains it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.app import start
from gateway.config import load
from tests.sip.messages import request, status_of


async def test_serve_starts_sip_and_exports_its_metrics(sample_config_path: Path) -> None:
    sample_config_path.write_text(sample_config_path.read_text() + '\n[sip]\nlisten = "127.0.0.1:0"\n'
                                  'route = "sip:carrier@127.0.0.1:5080"\n')
    running = await start(load(sample_config_path), web=False)
    try:
        assert running.sip is not None and running.metrics is not None
        loop = asyncio.get_running_loop()
        got: asyncio.Queue[bytes] = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                got.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", running.sip.port))
        transport.sendto(request(number="0612000001", extra="P-Asserted-Identity: <sip:0162000000@x>"))
        assert status_of(await asyncio.wait_for(got.get(), 5)) == 603
        transport.close()
        text = running.metrics.exposition().decode()
        assert 'dnc_sip_responses_total{method="INVITE",retransmission="false",status="603"} 1.0' in text
        # (the reason depends on the real date: opposition_list, or registry_stale once the sample list ages)
        assert any(line.startswith('dnc_decisions_total{campaign="legacy"') and 'source="sip"' in line
                   for line in text.splitlines())
        assert "0612000001" not in text and "33612000001" not in text
    finally:
        await running.close()
    assert running.sip._udp is None
