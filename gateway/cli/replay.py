"""``dnc-gateway replay FILE --gateway HOST:PORT | --offline``: what would the gateway have refused on this traffic?

Online (``--gateway``), each call goes to a running gateway over FastAGI, which decides it at its own time
(now), with its own state; the report says so.

Offline (``--offline [--config C]``), each call is decided in-process by the same engine, at the time the
trace recorded for it, with a fresh history of its own (:mod:`gateway.replay.offline`): no gateway, no audit
trail, no shared state. ``--shift-to DATE`` moves the whole trace by whole weeks (same weekdays and local
times) to the first DATE-or-later day with the trace's first weekday; ``--compare B.toml`` decides every
call under ``--config`` (A) and B and reports the calls whose verdict or reason differs.

A dry run by default: the calls go to the FastAGI ``dryrun`` route, which decides as ``check`` does but
counts no attempt and audits each decision as a dry run, so replaying against a production gateway does not
make its real calls ``frequency_cap``. ``--count-attempts`` uses ``check`` instead: every allowed call is then
counted in the gateway's state store as a real one would be (a test gateway, or a load test of the cap).

Exit codes: 0 replayed (whatever the verdicts), 1 protocol errors (gateway
unreachable, malformed replies, timeouts; never offline), 2 bad input (unreadable trace, bad flags, a call
without a time offline and no ``--at``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import date, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.agi.routes import Route, route_for
from gateway.cli.exits import DONE, FAILED, UsageError
from gateway.cli.options import campaign_named, parse_at
from gateway.cli.output import error, warn
from gateway.cli.runtime import load_lists, load_runtime_config, normaliser_of
from gateway.config import Config, GatewaySection
from gateway.config import load as load_config
from gateway.registry.holder import RegistryHolder
from gateway.replay import report, sipp_csv
from gateway.replay.offline import (
    OfflineDecider,
    differences,
    no_cycle_collection,
    replay_offline,
    shift_weeks,
    untimed,
)
from gateway.replay.runner import Result, Target, replay
from gateway.replay.sources import Call, Event, InputError, Trace, read_trace
from gateway.service import engine_for

__all__ = ["add_arguments", "parse_hostport", "run"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="pcap/pcapng capture, SIPp injection CSV or plain CSV "
                                                 "(time,number,campaign,caller_id)")
    p.add_argument("--gateway", metavar="HOST:PORT", help="the FastAGI listener to replay against")
    p.add_argument("--campaign", metavar="NAME", help="campaign for every call (default: from the trace)")
    p.add_argument("--campaign-header", metavar="HEADER", default="X-Campaign",
                   help="SIP header naming a call's campaign in captures (default: X-Campaign)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_positive, metavar="N", help="N times the recorded pace (default: 1)")
    pace.add_argument("--fast", action="store_true", help="as fast as --concurrency allows")
    p.add_argument("--concurrency", type=_count, default=10, metavar="N",
                   help="FastAGI sessions open at once (default: 10)")
    p.add_argument("--timeout", type=_positive, default=5.0, metavar="S",
                   help="seconds a session may last before it counts as a timeout (default: 5)")
    route = p.add_mutually_exclusive_group()
    route.add_argument("--count-attempts", action="store_true",
                       help="use the check route: every allowed call is counted as an attempt in the gateway's "
                            "state store, as a real call is (default: the dryrun route, nothing counted)")
    route.add_argument("--script", help="AGI route to ask (default: dryrun, or check with --count-attempts)")
    p.add_argument("--ignore-caller-id", action="store_true",
                   help="do not pass the trace's caller IDs: the campaign's configured caller_id applies")
    p.add_argument("--format", choices=report.FORMATS, default="text", help="report format (default: text)")
    p.add_argument("--show-numbers", action="store_true", help="print numbers in full (default: masked)")
    p.add_argument("--to-sipp", metavar="OUT.csv",
                   help="write the calls as a SIPp injection file for tests/sipp/uac.xml (no gateway needed)")
    p.add_argument("--timezone", metavar="ZONE",
                   help="how to read CSV times written without an offset (default: the config's [gateway] timezone)")
    off = p.add_argument_group("offline: decide in-process at the recorded times, no gateway")
    off.add_argument("--offline", action="store_true",
                     help="decide every call in-process at the time the trace recorded for it, with a fresh "
                          "history of its own (no gateway, no audit trail, no shared state)")
    # SUPPRESS: unset here, the global --config (before the command) stays; set here, it wins.
    off.add_argument("--config", "-c", default=argparse.SUPPRESS, metavar="C",
                     help="the configuration to decide under (A with --compare; default: the global --config, "
                          "else the embedded demo)")
    off.add_argument("--compare", metavar="B.toml",
                     help="also decide every call under B; report the calls whose verdict or reason differs")
    off.add_argument("--shift-to", metavar="DATE",
                     help="move the trace by whole weeks so that its first day is the first DATE-or-later day of "
                          "the same weekday (local times kept)")
    off.add_argument("--at", metavar="TIME",
                     help="the time of calls the trace gives none (a SIPp file without field3); without it such "
                          "calls are an error. ISO-8601 with an offset, a date or a local time in --timezone (else "
                          "the config's), or UNIX seconds")


def parse_hostport(text: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[([^\]]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", text.strip())
    if not m:
        raise InputError(f"--gateway {text!r}: expected HOST:PORT (e.g. 127.0.0.1:4573 or [::1]:4573)")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 < port < 65536:
        raise InputError(f"--gateway {text!r}: port out of range")
    return host, port


def _progress(total: int) -> tuple[Any, Any]:
    """A tqdm bar on stderr when it is a terminal; the callback feeding it."""
    if not sys.stderr.isatty() or total < 20:
        return None, None
    from tqdm import tqdm  # only on a terminal: a piped or scheduled run does not pay for its import

    bar = tqdm(total=total, unit="call", file=sys.stderr, leave=False)

    def tick(_: Result) -> None:
        bar.update(1)

    return bar, tick


def _script(args: argparse.Namespace) -> str:
    if args.script:
        return str(args.script)
    return str(Route.CHECK if args.count_attempts else Route.DRYRUN)


def counts_attempts(script: str) -> bool | None:
    """Whether the route counts the replayed calls as attempts: None for a route that is not a decision."""
    handler = route_for(script.partition("?")[0])  # the gateway's own reading of the name: case, slashes
    name = handler.name if handler is not None else None
    return True if name == Route.CHECK else False if name == Route.DRYRUN else None


def _zone(args: argparse.Namespace, config: Config | None) -> tzinfo:
    """--timezone, else the config's [gateway] timezone (the default one when no config is loaded)."""
    name = args.timezone or (config.gateway.timezone if config is not None else GatewaySection().timezone)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--timezone {name!r}: not a time zone (e.g. Europe/Paris, UTC)") from None


def _online_config(args: argparse.Namespace) -> Config | None:
    """The config an online replay reads its timezone from, when one is named (the gateway has its own)."""
    if args.timezone or not getattr(args, "config", None):
        return None
    return load_config(Path(args.config), data_dir=Path(args.data_dir) if args.data_dir else None)


ONLINE_ONLY = (("speed", "--speed"), ("fast", "--fast"), ("count_attempts", "--count-attempts"),
               ("script", "--script"), ("to_sipp", "--to-sipp"))
OFFLINE_ONLY = (("compare", "--compare"), ("shift_to", "--shift-to"), ("at", "--at"))


def run(args: argparse.Namespace) -> int:
    if args.offline:
        return run_offline(args)
    given = [flag for dest, flag in OFFLINE_ONLY if getattr(args, dest)]
    if given:
        raise UsageError(f"{', '.join(given)}: only with --offline")
    return run_online(args)


def run_online(args: argparse.Namespace) -> int:
    try:
        target = None
        if args.gateway:
            host, port = parse_hostport(args.gateway)
            target = Target(host, port, _script(args), timeout=args.timeout)
        elif not args.to_sipp:
            raise UsageError("--gateway HOST:PORT is required (or --to-sipp OUT.csv to convert only)")
        trace = read_trace(Path(args.file), campaign_header=args.campaign_header,
                           timezone=_zone(args, _online_config(args)))
    except InputError as e:
        raise UsageError(str(e)) from None
    for w in trace.warnings:
        warn(w)
    calls = list(trace.calls)
    events = sum(1 for c in calls if c.event is not Event.CALL)
    if events:  # the online replay asks for decisions only: it must not record refusals in a live gateway
        warn(f"{events} refusal/optout lines not replayed: an online replay only asks for decisions "
             "(--offline builds the history from them)")
        calls = [c for c in calls if c.event is Event.CALL]
    if args.campaign:
        # The gateway asked has its own config; the one named here (--config) is the same as a rule: a name it
        # does not define is a typo that would only come back as unknown_campaign for every call.
        named = getattr(args, "config", None)
        if named:
            campaign_named(args.campaign, load_config(Path(named), data_dir=Path(args.data_dir) if args.data_dir
                                                      else None).campaigns)
        calls = [c._replace(campaign=args.campaign) for c in calls]
    if not calls:
        raise UsageError(f"{args.file}: no call to replay")
    if args.to_sipp:
        text, warnings = sipp_csv.write(calls)
        for w in warnings:
            warn(w)
        try:
            Path(args.to_sipp).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"{args.to_sipp}: cannot write: {e.strerror or e}") from None
        print(f"wrote {len(calls)} calls to {args.to_sipp} (SIPp injection file: number;campaign;caller_id)",
              file=sys.stderr)
        if target is None:
            return DONE
    assert target is not None
    no_campaign = sum(1 for c in calls if not c.campaign)
    if no_campaign:
        warn(f"{no_campaign} calls have no campaign (no --campaign, no {args.campaign_header} header or "
             "campaign column): the gateway will answer unknown_campaign")
    speed = None if args.fast or all(c.at is None for c in calls) else (args.speed or 1.0)
    bar, tick = _progress(len(calls))
    try:
        results = asyncio.run(replay(calls, target, speed=speed, concurrency=args.concurrency,
                                     ignore_caller_id=args.ignore_caller_id, on_result=tick))
    finally:
        if bar is not None:
            bar.close()
    gateway = f"{'[' + target.host + ']' if ':' in target.host else target.host}:{target.port}"
    counted = counts_attempts(target.script)
    if args.format == "csv":  # one row per call, nowhere to say it: stderr does
        print(report.route_line(target.script, counted), file=sys.stderr)
        print(report.GATEWAY_TIME, file=sys.stderr)
    sys.stdout.write(report.render(args.format, results, trace, gateway, show_numbers=args.show_numbers,
                                   route=target.script, counted=counted))
    errors = [r for r in results if r.error]
    if errors:
        unreachable = next((r for r in errors if r.error_kind == "unreachable"), None)
        first = unreachable or errors[0]
        error("replay", f"{len(errors)} of {len(results)} calls failed at the protocol level; first: {first.error}")
        return FAILED
    return DONE


def _decider(config: Config, ignore_caller_id: bool) -> OfflineDecider:
    """The engine ``serve`` would build for ``config``, with its lists loaded (a list that fails: a warning)."""
    holder = RegistryHolder(config.lists, normaliser_of(config.gateway))  # no side store: nothing written
    load_lists(holder)
    return OfflineDecider(engine_for(config), holder.current, holder.normaliser, config.gateway.professional,
                          ignore_caller_id=ignore_caller_id)


def _offline_calls(args: argparse.Namespace, trace: Trace, config: Config) -> list[Call]:
    """The trace's calls, each placed in time (``--at`` for those the trace gives none)."""
    calls = list(trace.calls)
    if args.campaign:
        calls = [c._replace(campaign=args.campaign) for c in calls]
    missing = untimed(calls)
    if missing:
        at = parse_at(args.at, args.timezone or config.gateway.timezone)
        if at is None:
            raise UsageError(f"{args.file}: {len(missing)} of {len(calls)} calls have no time (first: "
                             f"{missing[0].origin or missing[0].call_id}); an offline replay decides each call at "
                             "its time: add one (CSV time column, SIPp field3) or give --at ISO for them")
        calls = [c if c.at is not None else c._replace(at=at.timestamp()) for c in calls]
    return calls


def run_offline(args: argparse.Namespace) -> int:
    given = [flag for dest, flag in ONLINE_ONLY if getattr(args, dest)]
    if args.gateway:
        given.insert(0, "--gateway")
    if given:
        raise UsageError(f"{', '.join(given)}: not with --offline (no gateway is asked)")
    config = load_runtime_config(args)
    if args.campaign:
        campaign_named(args.campaign, config.campaigns)
    other = load_config(Path(args.compare), data_dir=Path(args.data_dir) if args.data_dir else None) \
        if args.compare else None
    zone = _zone(args, config)
    shift_to = None
    if args.shift_to:
        try:
            shift_to = date.fromisoformat(args.shift_to)
        except ValueError:
            raise UsageError(f"--shift-to {args.shift_to!r}: not a date (YYYY-MM-DD)") from None
    with no_cycle_collection():
        return _offline(args, config, other, zone, shift_to)


def _offline(args: argparse.Namespace, config: Config, other: Config | None, zone: tzinfo,
             shift_to: date | None) -> int:
    try:
        trace = read_trace(Path(args.file), campaign_header=args.campaign_header, timezone=zone)
    except InputError as e:
        raise UsageError(str(e)) from None
    for w in trace.warnings:
        warn(w)
    calls = _offline_calls(args, trace, config)
    shifted = ""
    if shift_to is not None:
        calls, shift = shift_weeks(calls, shift_to, ZoneInfo(config.gateway.timezone))
        shifted = shift.describe()
    if not any(c.event is Event.CALL for c in calls):
        raise UsageError(f"{args.file}: no call to replay")
    deciders = [_decider(config, args.ignore_caller_id)]
    if other is not None:
        deciders.append(_decider(other, args.ignore_caller_id))
    name = str(getattr(args, "config", None) or "the embedded demo config")
    info = report.Offline(name, shifted, args.compare or "", ZoneInfo(config.gateway.timezone))
    bar, tick = _progress(len(calls))
    try:
        results = replay_offline(calls, deciders, on_result=tick)
    finally:
        if bar is not None:
            bar.close()
    if other is None:
        sys.stdout.write(report.render(args.format, results[0], trace, name, show_numbers=args.show_numbers,
                                       offline=info))
        return DONE
    a, b = results
    diffs = differences(a, b)
    sys.stdout.write(report.render_compare(args.format, a, b, diffs, trace, (name, args.compare), info,
                                           show_numbers=args.show_numbers))
    return DONE
