"""What a replay found: totals by verdict and reason, latency, the calls that would be refused.

Numbers are masked (``gateway.numbers.mask``) unless the operator asks for them:
a replay report is mailed around, the trace it came from usually is not.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.numbers import mask
from gateway.replay.runner import Result
from gateway.replay.trace import Trace

__all__ = ["FORMATS", "Summary", "percentile", "render", "route_line", "summarise"]

FORMATS = ("text", "json", "csv")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a latency that happened)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    total: int
    answered: int
    by_verdict: dict[str, int]
    by_reason: dict[str, int]
    would_block: int  # BLOCK, or ALLOW in monitor mode with DNC_WOULD_BLOCK=1
    errors: dict[str, int]  # by kind
    latency_ms: dict[str, float]
    late: int  # calls that started behind schedule (concurrency bound too low for the pace)


def summarise(results: Sequence[Result]) -> Summary:
    answered = [r for r in results if r.verdict]
    lat = sorted(r.seconds * 1000 for r in results if r.seconds is not None and r.verdict)
    latency = {"p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
               "max": lat[-1] if lat else 0.0, "mean": sum(lat) / len(lat) if lat else 0.0}
    return Summary(
        total=len(results), answered=len(answered),
        by_verdict=dict(sorted(Counter(r.verdict for r in answered).items())),
        by_reason=dict(sorted(Counter(r.reason or "none" for r in answered).items())),
        would_block=sum(1 for r in answered if r.blocked),
        errors=dict(sorted(Counter(r.error_kind for r in results if r.error).items())),
        latency_ms={k: round(v, 3) for k, v in latency.items()},
        late=sum(1 for r in results if r.late))


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds") if at is not None else ""


def _num(n: str, show: bool) -> str:
    return n if show else mask(n)


def _row(r: Result, show: bool) -> dict[str, Any]:
    return {"seq": r.seq, "at": _when(r.call.at), "number": _num(r.call.number, show), "campaign": r.call.campaign,
            "caller_id": _num(r.call.caller_id, show) if r.call.caller_id else "", "verdict": r.verdict,
            "reason": r.reason, "would_block": r.would_block, "decision_id": r.decision_id,
            "latency_ms": round(r.seconds * 1000, 3) if r.seconds is not None else None,
            "error": r.error, "origin": r.call.origin}


def route_line(route: str, counted: bool | None) -> str:
    """What the replay did to the gateway's state: a dry run, or real attempts counted."""
    if counted is False:
        return (f"route {route}: dry run, each decision audited as a dry run (source dry_run); "
                "no attempt counted in the gateway's state store")
    if counted:
        return (f"route {route}: every allowed call counted as an attempt in the gateway's state store, "
                "as a real call is (--count-attempts)")
    return f"route {route}"


def as_json(results: Sequence[Result], trace: Trace, gateway: str, *, show_numbers: bool = False,
            route: str = "dryrun", counted: bool | None = False) -> dict[str, Any]:
    s = summarise(results)
    return {
        "gateway": gateway,
        "route": route,
        "attempts_counted": counted,
        "input": trace.as_json(),
        "total": s.total,
        "answered": s.answered,
        "by_verdict": s.by_verdict,
        "by_reason": s.by_reason,
        "would_block": s.would_block,
        "errors": s.errors,
        "latency_ms": s.latency_ms,
        "late_starts": s.late,
        "blocked": [_row(r, show_numbers) for r in results if r.verdict and r.blocked],
        "failed": [_row(r, show_numbers) for r in results if r.error][:100],
    }


def as_text(results: Sequence[Result], trace: Trace, gateway: str, *, show_numbers: bool = False,
            limit: int = 50, route: str = "dryrun", counted: bool | None = False) -> str:
    s = summarise(results)
    out = [f"replayed {s.total} calls from a {trace.kind} trace through {gateway}: {s.answered} answered",
           route_line(route, counted)]
    if s.by_verdict:
        out.append("verdicts: " + ", ".join(f"{k} {v}" for k, v in s.by_verdict.items())
                   + f" (would block: {s.would_block})")
    if s.by_reason:
        out.append("reasons:")
        out += [f"  {k:<20} {v}" for k, v in sorted(s.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))]
    lat = s.latency_ms
    out.append(f"latency ms: p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  "
               f"max {lat['max']:.2f}")
    if s.late:
        out.append(f"{s.late} calls started behind the recorded pace (raise --concurrency)")
    blocked = [r for r in results if r.verdict and r.blocked]
    if blocked:
        out.append(f"would be refused ({len(blocked)}):")
        for r in blocked[:limit]:
            mode = "" if r.verdict == "BLOCK" else " (monitor)"
            out.append(f"  {_when(r.call.at) or r.call.origin:<29} {_num(r.call.number, show_numbers):<16} "
                       f"{r.call.campaign or '-':<12} {r.reason or '-'}{mode}")
        if len(blocked) > limit:
            out.append(f"  ... {len(blocked) - limit} more (use --format csv for all)")
    if s.errors:
        out.append("protocol errors: " + ", ".join(f"{k} {v}" for k, v in s.errors.items()))
        out += [f"  call {r.seq} ({r.call.origin}): {r.error}" for r in results if r.error][:10]
    return "\n".join(out) + "\n"


def as_csv(results: Sequence[Result], *, show_numbers: bool = False) -> str:
    """One row per call, for spreadsheets and diffs between two runs."""
    buf = io.StringIO()
    fields = ["seq", "at", "number", "campaign", "caller_id", "verdict", "reason", "would_block", "decision_id",
              "latency_ms", "error", "origin"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in results:
        row = _row(r, show_numbers)
        row["would_block"] = int(row["would_block"])
        w.writerow(row)
    return buf.getvalue()


def render(fmt: str, results: Sequence[Result], trace: Trace, gateway: str, *, show_numbers: bool = False,
           route: str = "dryrun", counted: bool | None = False) -> str:
    """The report; ``route`` and ``counted`` (None: not a decision route) say what the replay did to the
    gateway's state (the text and JSON say it; the CSV has one row per call and no place for it)."""
    if fmt == "json":
        return json.dumps(as_json(results, trace, gateway, show_numbers=show_numbers, route=route, counted=counted),
                          ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return as_csv(results, show_numbers=show_numbers)
    return as_text(results, trace, gateway, show_numbers=show_numbers, route=route, counted=counted)
