"""A fake Asterisk manager over real TCP that replays recorded event streams byte for byte.

Only what a client's actions change is not replayed verbatim: the ActionID of each response is the
client's (the recording used 1, 2, 3). Responses the recording does not hold (Hangup, an unknown
action, a refused Login, FullyBooted) are written the way main/manager.c writes them.

Each accepted connection follows the next :class:`Plan` (the last one repeats), so a test can script
"drop the first connection mid-stream, then behave".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.ami.recording import END, Recording, with_action_id

# main/manager.c, action_login (when the user may read "system" events and Asterisk is fully booted).
FULLY_BOOTED = (b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 10\r\nLastReload: 10\r\n"
                b"Status: Fully Booted\r\n\r\n")


def response(kind: str, action_id: str | None, message: str) -> bytes:
    """astman_send_response_full: Response, then ActionID when the action had one, then Message."""
    out = f"Response: {kind}\r\n"
    if action_id is not None:
        out += f"ActionID: {action_id}\r\n"
    return (out + f"Message: {message}\r\n\r\n").encode()


@dataclass(frozen=True)
class Plan:
    events: Sequence[bytes] | None = None  # None: the recording's events
    login_ok: bool = True
    silent: bool = False  # read actions, answer none (a frozen Asterisk behind a live TCP stack)
    answer_ping: bool = True
    answer_hangup: bool = True
    drop_after: int | None = None  # close after this many events, halfway through the next one
    drop_on: str = ""  # close, without answering, when the client sends this action
    chunk: int | None = None  # write in pieces of this many bytes
    fully_booted: bool = False  # send FullyBooted after the Login response
    hold: asyncio.Event | None = None  # start the events only once this is set (after a test's AGI calls)


@dataclass
class Connection:
    plan: Plan
    accepted_at: float
    actions: list[dict[str, str]] = field(default_factory=list)  # keys lower-cased, as Asterisk reads them
    sent: bytearray = field(default_factory=bytearray)
    streamed: asyncio.Event = field(default_factory=asyncio.Event)  # every event written
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def named(self, action: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("action", "").lower() == action.lower()]


def parse_action(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip().lower()] = v.strip()
    return out


class FakeAmi:
    def __init__(self, recording: Recording, plans: Sequence[Plan] = (Plan(),)) -> None:
        self.recording = recording
        self.plans = list(plans)
        self.connections: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self._accepted = asyncio.Event()

    async def start(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeAmi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_connections(self, n: int, within: float = 3.0) -> Connection:
        async with asyncio.timeout(within):
            while len(self.connections) < n:
                self._accepted.clear()
                await self._accepted.wait()
        return self.connections[n - 1]

    def actions(self, name: str) -> list[dict[str, str]]:
        return [a for c in self.connections for a in c.named(name)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        plan = self.plans[min(len(self.connections), len(self.plans) - 1)]
        conn = Connection(plan, time.monotonic())
        self.connections.append(conn)
        self._accepted.set()
        self._writers.add(writer)
        lock = asyncio.Lock()
        streaming: list[asyncio.Task[None]] = []

        async def write(data: bytes) -> None:
            async with lock:  # one message at a time, even when written in chunks
                step = plan.chunk or len(data) or 1
                for i in range(0, len(data), step):
                    writer.write(data[i:i + step])
                    conn.sent += data[i:i + step]
                    await writer.drain()

        async def stream() -> None:
            events = self.recording.events if plan.events is None else plan.events
            if plan.hold is not None:
                await plan.hold.wait()
            for i, ev in enumerate(events):
                if plan.drop_after is not None and i == plan.drop_after:
                    async with lock:
                        writer.write(ev[:len(ev) // 2])
                        conn.sent += ev[:len(ev) // 2]
                        await writer.drain()
                        writer.close()
                    return
                await write(ev)
            conn.streamed.set()

        try:
            await write(self.recording.banner)
            while True:
                try:
                    block = await reader.readuntil(END)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                action = parse_action(block)
                conn.actions.append(action)
                name = action.get("action", "").lower()
                aid = action.get("actionid")
                if plan.drop_on and name == plan.drop_on.lower():
                    break
                if plan.silent:
                    continue
                if name == "login":
                    if not plan.login_ok:
                        await write(response("Error", aid, "Authentication failed"))
                        break  # action_login returns -1: Asterisk ends the session
                    await write(with_action_id(self.recording.login, aid))
                    if plan.fully_booted:
                        await write(FULLY_BOOTED)
                    task = asyncio.create_task(stream())
                    streaming.append(task)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif name == "ping":
                    if plan.answer_ping:
                        await write(with_action_id(self.recording.pong, aid))
                elif name == "logoff":
                    await write(with_action_id(self.recording.goodbye, aid))
                    break
                elif name == "hangup":
                    if plan.answer_hangup:
                        await write(response("Success", aid, "Channel Hungup"))
                else:
                    await write(response("Error", aid, f"Invalid/unknown command: {action.get('action', '')}. "
                                                       "Use Action: ListCommands to show available commands."))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for t in streaming:
                t.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._writers.discard(writer)
            conn.closed.set()
