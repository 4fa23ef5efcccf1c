"""Drives the calls of a trace through a gateway over FastAGI, at a chosen pace.

Pace: the recorded one (gaps between call times), N times faster, or as fast as
the concurrency bound allows. The schedule is a pure function of the call times
(:func:`start_offsets`), so pacing is tested without waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from gateway.faults import FaultKind
from gateway.replay.fastagi import AgiProtocolError, ChannelInfo, Session, run_session
from gateway.replay.trace import Call

__all__ = ["Result", "Target", "replay", "result_of", "start_offsets"]

VERDICTS = ("ALLOW", "BLOCK")


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    # The route: AGI(agi://host:port/dryrun,...). A dry run by default: decided as check decides, audited as a
    # dry run, no attempt counted (replaying against a production gateway must not cap its real calls).
    script: str = "dryrun"
    timeout: float = 5.0  # whole session
    connect_timeout: float = 2.0  # MAX_AGI_CONNECT of res_agi.c

    @property
    def request(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"agi://{host}:{self.port}/{self.script}"


class Result(NamedTuple):
    """What one call got. A NamedTuple rather than a frozen dataclass: an offline replay builds hundreds of
    thousands a second (a tuple is built several times faster, and as immutable)."""

    seq: int  # 1-based position in the trace
    call: Call
    verdict: str = ""  # ALLOW | BLOCK | "" (no answer)
    reason: str = ""
    would_block: bool = False
    decision_id: str = ""
    seconds: float | None = None  # session time, connect to close
    error: str = ""  # what went wrong at the protocol level ("" when nothing)
    error_kind: str = ""  # unreachable | timeout | reset | malformed | failure | not_replayed
    late: float = 0.0  # seconds the start slipped behind the schedule (concurrency bound)

    @property
    def blocked(self) -> bool:
        """Would this call have been refused: blocked, or allowed only because of monitor mode."""
        return self.verdict == "BLOCK" or self.would_block


def start_offsets(times: Sequence[float | None], speed: float | None) -> list[float]:
    """Seconds after the replay starts at which each call begins.

    ``speed`` None means as fast as possible (all at 0: the concurrency bound paces
    them). A call without a time starts with the previous one. Times going backwards
    (several captures merged out of order) never make the schedule go backwards.
    """
    if speed is None:
        return [0.0] * len(times)
    if speed <= 0:
        raise ValueError("speed must be positive")
    known = [t for t in times if t is not None]
    if not known:
        return [0.0] * len(times)
    first = known[0]
    out: list[float] = []
    last = 0.0
    for t in times:
        if t is not None:
            last = max(last, (t - first) / speed)
        out.append(last)
    return out


def result_of(seq: int, call: Call, session: Session) -> Result:
    """Read the dialplan variables as the dialplan would, and say what is wrong with them."""
    v = session.variables
    verdict = v.get("DNC_VERDICT", "")
    problems = list(session.errors)
    # FAILURE: the gateway said it is overloaded or failed inside; the dialplan fails closed at once.
    kind = "failure" if v.get("AGISTATUS") == "FAILURE" else "malformed"
    if verdict not in VERDICTS:
        if kind != "failure":
            problems.append("no DNC_VERDICT set" if not verdict else f"DNC_VERDICT is {verdict!r}, "
                            "not ALLOW or BLOCK: the dialplan's GotoIf would fail closed")
        verdict = ""
    would = v.get("DNC_WOULD_BLOCK", "")
    if would not in ("", "0", "1"):
        problems.append(f"DNC_WOULD_BLOCK is {would!r}, not 0 or 1")
    return Result(seq, call, verdict, v.get("DNC_REASON", ""), would == "1", v.get("DNC_DECISION_ID", ""),
                  session.seconds, "; ".join(problems), kind if problems else "")


def channel_info(seq: int, call: Call, target: Target, *, ignore_caller_id: bool, epoch: int) -> ChannelInfo:
    caller = "" if ignore_caller_id else call.caller_id
    args = (call.number, call.campaign, caller) if caller else (call.number, call.campaign)
    return ChannelInfo(request=target.request, script=target.script, args=args,
                       channel=f"PJSIP/replay-{seq:08x}", uniqueid=f"{epoch}.{seq}", callerid=caller,
                       dnid=call.number, extension=call.number)


async def replay(calls: Sequence[Call], target: Target, *, speed: float | None = None, concurrency: int = 10,
                 ignore_caller_id: bool = False, on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Replay every call; a gateway that refuses connections stops the replay (the rest are
    reported ``not_replayed``) since every further call would fail the same way."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    offsets = start_offsets([c.at for c in calls], speed)
    order = sorted(range(len(calls)), key=lambda i: offsets[i])
    results: list[Result | None] = [None] * len(calls)
    sem = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    epoch = int(time.time())
    stop = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, late: float) -> None:
        call = calls[i]
        try:
            session = await run_session(target.host, target.port,
                                        channel_info(i + 1, call, target, ignore_caller_id=ignore_caller_id,
                                                     epoch=epoch),
                                        session_timeout=target.timeout, connect_timeout=target.connect_timeout)
            res = result_of(i + 1, call, session)
        except AgiProtocolError as e:
            res = Result(i + 1, call, error=str(e), error_kind=e.kind)
            if e.kind is FaultKind.UNREACHABLE:
                stop.set()
        finally:
            sem.release()
        if late:
            res = Result(res.seq, res.call, res.verdict, res.reason, res.would_block, res.decision_id, res.seconds,
                         res.error, res.error_kind, late)
        results[i] = res
        if on_result is not None:
            on_result(res)

    for i in order:
        if stop.is_set():
            break
        delay = t0 + offsets[i] - loop.time()
        if delay > 0:
            # Wake early if the gateway goes away, rather than sleeping through a long recorded gap.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        await sem.acquire()
        if stop.is_set():
            sem.release()
            break
        late = max(0.0, loop.time() - (t0 + offsets[i])) if speed is not None else 0.0
        task = asyncio.create_task(one(i, late if late > 0.05 else 0.0))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    out: list[Result] = []
    for i, r in enumerate(results):
        out.append(r if r is not None else Result(i + 1, calls[i], error="not replayed: gateway unreachable",
                                                  error_kind="not_replayed"))
    return out

