"""What a replay found: totals by verdict and reason, latency, the calls that would be refused.

Numbers are masked (``gateway.numbers.mask``) unless the operator asks for them:
a replay report is mailed around, the trace it came from usually is not.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from gateway.numbers import mask
from gateway.replay.offline import Difference, group_differences, label
from gateway.replay.runner import Result
from gateway.replay.trace import Trace

__all__ = ["FORMATS", "Offline", "Summary", "dump_json", "percentile", "render", "render_compare", "route_line",
           "summarise"]

GATEWAY_TIME = ("decisions made at the gateway's time (when each call reached it), not at the trace's times: "
                "--offline decides each call at its recorded time")


@dataclass(frozen=True, slots=True)
class Offline:
    """What an offline replay was: the configuration(s) and where in time the calls were decided."""

    config: str  # the --config file, or "the embedded demo config"
    shift: str = ""  # Shift.describe(), "" when not shifted
    compare: str = ""  # the --compare file
    zone: tzinfo = UTC  # times in the report: the config's [gateway] timezone, the one the rules were read in

    def lines(self) -> list[str]:
        out = [f"each call decided at its recorded time{'; ' + self.shift if self.shift else ''}",
               "history of its own, built over the trace in memory: no gateway, audit record or shared state touched"]
        return out

    def as_json(self) -> dict[str, Any]:
        return {"config": self.config, "shift": self.shift or None, **({"compare": self.compare} if self.compare
                                                                          else {})}

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


# Result fields read whole-list by summarise(): itemgetter in a map is counted in C, where a generator over a
# million results cost a third of an offline replay's report.
_OUTCOME = operator.itemgetter(2, 3, 4)  # verdict, reason, would_block
_ERROR = operator.itemgetter(7, 8)  # error, error_kind
_SECONDS = operator.itemgetter(6)
_LATE = operator.itemgetter(9)


def summarise(results: Sequence[Result]) -> Summary:
    outcomes = Counter(map(_OUTCOME, results))  # a few distinct outcomes, however many calls
    by_verdict: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    answered = would_block = 0
    for (verdict, reason, blocks), n in outcomes.items():
        if not verdict:
            continue
        answered += n
        by_verdict[verdict] += n
        by_reason[reason or "none"] += n
        if verdict == "BLOCK" or blocks:  # Result.blocked
            would_block += n
    errors: Counter[str] = Counter()
    for (error, kind), n in Counter(map(_ERROR, results)).items():
        if error:
            errors[kind] += n
    seconds = list(map(_SECONDS, results))
    lat = sorted(t * 1000 for t, r in zip(seconds, results, strict=True) if t is not None and r.verdict) \
        if seconds.count(None) < len(seconds) else []  # offline: no call has a latency
    latency = {"p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
               "max": lat[-1] if lat else 0.0, "mean": sum(lat) / len(lat) if lat else 0.0}
    return Summary(
        total=len(results), answered=answered,
        by_verdict=dict(sorted(by_verdict.items())),
        by_reason=dict(sorted(by_reason.items())),
        would_block=would_block,
        errors=dict(sorted(errors.items())),
        latency_ms={k: round(v, 3) for k, v in latency.items()},
        late=sum(map(bool, map(_LATE, results))))


def dump_json(report: dict[str, Any]) -> str:
    """The report indented, except its lists of calls: one call a line. ``json.dumps(indent=2)`` runs the
    pure-Python encoder and took longer than deciding a million calls offline; a row per line is also what a
    reader of a long report scrolls through (and the same JSON to a parser)."""
    out = []
    for key, value in report.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n    ".join(json.dumps(v, ensure_ascii=False) for v in value)
            text = f"[\n    {rows}\n  ]"
        else:
            text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  ")
        out.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(out) + "\n}\n"


def _when(at: float | None, zone: tzinfo = UTC) -> str:
    return datetime.fromtimestamp(at, zone).isoformat(timespec="milliseconds") if at is not None else ""


def _num(n: str, show: bool) -> str:
    return n if show else mask(n)


def _row(r: Result, show: bool, zone: tzinfo = UTC) -> dict[str, Any]:
    return {"seq": r.seq, "at": _when(r.call.at, zone), "number": _num(r.call.number, show),
            "campaign": r.call.campaign, "caller_id": _num(r.call.caller_id, show) if r.call.caller_id else "",
            "verdict": r.verdict,
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
            route: str = "dryrun", counted: bool | None = False, offline: Offline | None = None) -> dict[str, Any]:
    s = summarise(results)
    zone = offline.zone if offline is not None else UTC
    where: dict[str, Any] = {"mode": "online", "decided_at": "gateway_time", "gateway": gateway, "route": route,
                             "attempts_counted": counted} if offline is None else \
        {"mode": "offline", "decided_at": "recorded_time", "offline": offline.as_json()}
    return {
        **where,
        "input": trace.as_json(),
        "total": s.total,
        "answered": s.answered,
        "by_verdict": s.by_verdict,
        "by_reason": s.by_reason,
        "would_block": s.would_block,
        "errors": s.errors,
        "latency_ms": s.latency_ms,
        "late_starts": s.late,
        "blocked": [_row(r, show_numbers, zone) for r in results if r.verdict and r.blocked],
        "failed": [_row(r, show_numbers) for r in results if r.error][:100],
    }


def as_text(results: Sequence[Result], trace: Trace, gateway: str, *, show_numbers: bool = False,
            limit: int = 50, route: str = "dryrun", counted: bool | None = False,
            offline: Offline | None = None) -> str:
    s = summarise(results)
    zone = offline.zone if offline is not None else UTC
    if offline is None:
        out = [f"replayed {s.total} calls from a {trace.kind} trace through {gateway}: {s.answered} answered",
               route_line(route, counted), GATEWAY_TIME]
    else:
        out = [f"decided {s.total} calls from a {trace.kind} trace offline under {offline.config}",
               *offline.lines()]
    if s.by_verdict:
        out.append("verdicts: " + ", ".join(f"{k} {v}" for k, v in s.by_verdict.items())
                   + f" (would block: {s.would_block})")
    if s.by_reason:
        out.append("reasons:")
        out += [f"  {k:<20} {v}" for k, v in sorted(s.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))]
    lat = s.latency_ms
    if offline is None:  # offline, no call crosses a network: no latency to report
        out.append(f"latency ms: p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  "
                   f"max {lat['max']:.2f}")
    if s.late:
        out.append(f"{s.late} calls started behind the recorded pace (raise --concurrency)")
    if s.would_block:  # the answered calls that are blocked: only the first ``limit`` are listed
        out.append(f"would be refused ({s.would_block}):")
        for r in itertools.islice((r for r in results if r.verdict and r.blocked), limit):
            mode = "" if r.verdict == "BLOCK" else " (monitor)"
            out.append(f"  {_when(r.call.at, zone) or r.call.origin:<29} {_num(r.call.number, show_numbers):<16} "
                       f"{r.call.campaign or '-':<12} {r.reason or '-'}{mode}")
        if s.would_block > limit:
            out.append(f"  ... {s.would_block - limit} more (use --format csv for all)")
    if s.errors:
        out.append("protocol errors: " + ", ".join(f"{k} {v}" for k, v in s.errors.items()))
        out += [f"  call {r.seq} ({r.call.origin}): {r.error}" for r in results if r.error][:10]
    return "\n".join(out) + "\n"


def as_csv(results: Sequence[Result], *, show_numbers: bool = False, zone: tzinfo = UTC) -> str:
    """One row per call, for spreadsheets and diffs between two runs."""
    buf = io.StringIO()
    fields = ["seq", "at", "number", "campaign", "caller_id", "verdict", "reason", "would_block", "decision_id",
              "latency_ms", "error", "origin"]
    # csv.writer, not DictWriter: DictWriter checks every row's keys against the header (a set difference a row).
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in results:
        row = _row(r, show_numbers, zone)
        row["would_block"] = int(row["would_block"])
        w.writerow([row[f] for f in fields])
    return buf.getvalue()


def render(fmt: str, results: Sequence[Result], trace: Trace, gateway: str, *, show_numbers: bool = False,
           route: str = "dryrun", counted: bool | None = False, offline: Offline | None = None) -> str:
    """The report; ``route`` and ``counted`` (None: not a decision route) say what the replay did to the
    gateway's state (the text and JSON say it; the CSV has one row per call and no place for it).
    ``offline``: the calls were decided in-process at their recorded times (no gateway, route or latency)."""
    if fmt == "json":
        return dump_json(as_json(results, trace, gateway, show_numbers=show_numbers, route=route, counted=counted,
                                 offline=offline))
    if fmt == "csv":
        return as_csv(results, show_numbers=show_numbers, zone=offline.zone if offline is not None else UTC)
    return as_text(results, trace, gateway, show_numbers=show_numbers, route=route, counted=counted,
                   offline=offline)


# -- --compare: the calls two configurations decide differently ----------------------------------------------------

COMPARE_FIELDS = ["seq", "at", "number", "campaign", "caller_id", "verdict_a", "reason_a", "verdict_b", "reason_b",
                  "origin"]


def _diff_row(d: Difference, show: bool, zone: tzinfo = UTC) -> dict[str, Any]:
    c = d.a.call
    return {"seq": d.a.seq, "at": _when(c.at, zone), "number": _num(c.number, show), "campaign": c.campaign,
            "caller_id": _num(c.caller_id, show) if c.caller_id else "", "verdict_a": d.a.verdict,
            "reason_a": label(d.a), "verdict_b": d.b.verdict, "reason_b": label(d.b), "origin": c.origin}


def compare_csv(diffs: Sequence[Difference], *, show_numbers: bool = False, zone: tzinfo = UTC) -> str:
    """One row per call decided differently (verdict or reason) under A and B."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COMPARE_FIELDS)
    for d in diffs:
        row = _diff_row(d, show_numbers, zone)
        w.writerow([row[f] for f in COMPARE_FIELDS])
    return buf.getvalue()


def _totals(results: Sequence[Result]) -> dict[str, int]:
    return dict(sorted(Counter(label(r) for r in results).items(), key=lambda kv: (-kv[1], kv[0])))


VERDICTS = ("ALLOW", "BLOCK")


def _verdict(r: Result) -> str:
    """ALLOW, BLOCK, or ``no answer`` (a monitor campaign's would-block is an ALLOW: the call went through)."""
    return r.verdict or "no answer"


def verdict_totals(a: Sequence[Result], b: Sequence[Result]) -> list[tuple[str, int, int]]:
    """(verdict, calls under A, calls under B), ALLOW then BLOCK, then any other (no answer) when there is one."""
    ca, cb = Counter(_verdict(r) for r in a), Counter(_verdict(r) for r in b)
    keys = [*VERDICTS, *sorted((set(ca) | set(cb)) - set(VERDICTS))]
    return [(k, ca[k], cb[k]) for k in keys]


def campaign_totals(a: Sequence[Result], b: Sequence[Result]) -> dict[str, dict[str, tuple[int, int]]]:
    """{campaign: {verdict: (calls under A, calls under B)}}, campaigns by volume: who gains or loses calls."""
    counts: dict[str, dict[str, list[int]]] = {}
    for side, results in ((0, a), (1, b)):
        for r in results:
            per = counts.setdefault(r.call.campaign or "-", {})
            per.setdefault(_verdict(r), [0, 0])[side] += 1
    order = sorted(counts, key=lambda c: (-sum(v[0] for v in counts[c].values()), c))
    return {c: {v: (n[0], n[1]) for v, n in sorted(counts[c].items(), key=lambda kv: (kv[0] not in VERDICTS,
                                                                                     kv[0]))} for c in order}


def _change(x: int, y: int) -> str:
    return f"{x} -> {y}" + (f" ({y - x:+d})" if y != x else "")


def compare_json(a: Sequence[Result], b: Sequence[Result], diffs: Sequence[Difference], trace: Trace,
                 names: tuple[str, str], offline: Offline, *, show_numbers: bool = False) -> dict[str, Any]:
    return {
        "mode": "offline", "decided_at": "recorded_time", "offline": offline.as_json(), "input": trace.as_json(),
        "a": names[0], "b": names[1], "total": len(a),
        "by_reason_a": _totals(a), "by_reason_b": _totals(b),
        "by_verdict_a": {v: x for v, x, _ in verdict_totals(a, b)},
        "by_verdict_b": {v: y for v, _, y in verdict_totals(a, b)},
        "by_campaign": {c: {v: {"a": x, "b": y} for v, (x, y) in per.items()}
                        for c, per in campaign_totals(a, b).items()},
        "differing": len(diffs),
        "changes": [{"a": x, "b": y, "calls": n} for x, y, n in group_differences(diffs)],
        "calls": [_diff_row(d, show_numbers, offline.zone) for d in diffs],
    }


def compare_text(a: Sequence[Result], b: Sequence[Result], diffs: Sequence[Difference], trace: Trace,
                 names: tuple[str, str], offline: Offline, *, show_numbers: bool = False, limit: int = 20) -> str:
    out = [f"compared {len(a)} calls from a {trace.kind} trace offline: A = {names[0]}, B = {names[1]}",
           *offline.lines(), "(one history per configuration: each counts the calls it allows)",
           "calls by verdict (A -> B):"]
    totals = verdict_totals(a, b)
    width = max(len(v) for v, _, _ in totals)
    out += [f"  {v:<{width}}  {_change(x, y)}" for v, x, y in totals if x or y or v in VERDICTS]
    by_campaign = campaign_totals(a, b)
    if by_campaign:
        out.append("by campaign (A -> B):")
        cw = max(len(c) for c in by_campaign)
        for campaign, per in by_campaign.items():
            cells = "   ".join(f"{v} {_change(x, y)}" for v, (x, y) in per.items())
            out.append(f"  {campaign:<{cw}}  {cells}")
    out.append(f"decided differently (verdict or reason): {len(diffs)} of {len(a)}")
    changes = group_differences(diffs)
    if changes:
        width = max(len(f"{x} -> {y}") for x, y, _ in changes)
        out.append("changes (reason under A -> reason under B):")
        out += [f"  {f'{x} -> {y}':<{width}}  {n}" for x, y, n in changes]
        out.append("calls:")
        for d in diffs[:limit]:
            c = d.a.call
            out.append(f"  {_when(c.at, offline.zone) or c.origin:<29} {_num(c.number, show_numbers):<16} "
                       f"{c.campaign or '-':<12} {label(d.a)} -> {label(d.b)}")
        if len(diffs) > limit:
            out.append(f"  ... {len(diffs) - limit} more (use --format csv for all)")
    return "\n".join(out) + "\n"


def render_compare(fmt: str, a: Sequence[Result], b: Sequence[Result], diffs: Sequence[Difference], trace: Trace,
                   names: tuple[str, str], offline: Offline, *, show_numbers: bool = False) -> str:
    """The comparison: text and JSON group the differing calls by (reason under A -> under B); CSV lists them."""
    if fmt == "json":
        return dump_json(compare_json(a, b, diffs, trace, names, offline, show_numbers=show_numbers))
    if fmt == "csv":
        return compare_csv(diffs, show_numbers=show_numbers, zone=offline.zone)
    return compare_text(a, b, diffs, trace, names, offline, show_numbers=show_numbers)
