"""``dnc-gateway scrub``: screen a call file in bulk, with the same engine, rules and state as ``check``.

The file is read in blocks and never held whole (:mod:`gateway.scrub`). Numbers the state store knows
(opt-outs, refusals, counted attempts, embedded or Redis) are decided with their history, as ``check``
would decide them; ``--no-state`` screens against the lists and rules only, and says so.

``--ignore-hours`` (planning a campaign ahead) turns off the campaign's ``check_hours``
and ``check_holidays`` switches for this run: the same rules as ``check`` minus those two,
evaluated at ``--at`` (default now) so the regime and list freshness are still those of
that date.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from gateway.cli.exits import DONE, UsageError
from gateway.cli.options import campaign_named, parse_at
from gateway.cli.runtime import load_gateway, load_runtime_config, safe_url, state_loop
from gateway.config import Config
from gateway.policy.engine import Engine
from gateway.scrub import AtomicFile, Screener, planning_engine, scrub_stream, summary_text
from gateway.scrub.screener import HistoryLookup
from gateway.service import Gateway
from gateway.state.model import History, StateUnavailable


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="call file: CSV, Bloctel (Telephone;Identifiant) or one number a line;"
                                               " - for stdin")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="cleaned file (same layout as IN)")
    p.add_argument("--campaign", required=True, help="campaign name from the config")
    p.add_argument("--at", help="when the calls will be placed, for the hours rules (default: now): ISO-8601 with "
                                "an offset, a date or a local time in the config's timezone, or UNIX seconds")
    p.add_argument("--ignore-hours", action="store_true",
                   help="planning: do not apply the hours and public-holiday rules (the date still sets the regime)")
    p.add_argument("--caller-id", help="presented number (default: the campaign's caller_id)")
    p.add_argument("--rejects", metavar="FILE", help="removed lines with reason, detail and line number "
                                                    "(default: OUT.rejects.csv)")
    p.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON to FILE")
    p.add_argument("--format", dest="fmt", choices=("auto", "lines", "csv", "bloctel"), default="auto")
    p.add_argument("--delimiter", help="CSV delimiter (default: detected); 'tab' for a tab")
    p.add_argument("--column", help="number column: 1-based index or header name (default: detected)")
    p.add_argument("--no-state", action="store_true",
                   help="ignore the state store (opt-outs, refusals, attempts): lists and rules only")


def run(args: argparse.Namespace) -> int:
    config = load_runtime_config(args)
    at = parse_at(args.at, config.gateway.timezone) or datetime.now(UTC)
    campaign_named(args.campaign, config.campaigns)
    src_path = None if args.input == "-" else Path(args.input)
    if src_path is not None and not src_path.is_file():
        raise UsageError(f"{args.input}: no such file")
    out_path = Path(args.output)
    rejects_path = Path(args.rejects) if args.rejects else out_path.with_name(out_path.name + ".rejects.csv")
    if src_path is not None and src_path.resolve() in (out_path.resolve(), rejects_path.resolve()):
        raise UsageError("the output would overwrite the input: choose another -o")
    gw = load_gateway(config)
    engine = planning_engine(gw.engine) if args.ignore_hours else gw.engine
    with state_loop(gw, start=not args.no_state) as loop:

        def histories(keys: Sequence[int]) -> Mapping[int, History]:
            """One batch of histories per block of the file."""
            try:
                return loop.run_until_complete(gw.state.histories(gw.professional, keys))
            except StateUnavailable as e:
                raise UsageError(f"state store unavailable ({e}): cannot screen against the recorded opt-outs, "
                                 "refusals and attempts; retry, or --no-state to screen against the lists and "
                                 "rules only") from e

        return _scrub(args, config, gw, engine, at, None if args.no_state else histories)


def _scrub(args: argparse.Namespace, config: Config, gw: Gateway, engine: Engine, at: datetime,
           histories: HistoryLookup | None) -> int:
    src_path = None if args.input == "-" else Path(args.input)
    out_path = Path(args.output)
    rejects_path = Path(args.rejects) if args.rejects else out_path.with_name(out_path.name + ".rejects.csv")
    known = gw.state.known_keys(gw.professional) if histories is not None else None
    screener = Screener(engine, gw.holder.current, gw.normaliser, args.campaign, at, args.caller_id, histories,
                        known)
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm  # only on a terminal: a piped or scheduled run does not pay for its import

        progress = tqdm(total=src_path.stat().st_size if src_path else None, unit="B", unit_scale=True,
                        file=sys.stderr, desc="scrub")
    src: IO[bytes] = src_path.open("rb") if src_path else sys.stdin.buffer
    try:
        with src, AtomicFile(out_path) as out, AtomicFile(rejects_path) as rejects:
            summary, layout = scrub_stream(src, out, rejects, screener, fmt=args.fmt, delimiter=args.delimiter,
                                           column=args.column, progress=progress)
    except ValueError as e:
        raise UsageError(str(e)) from None
    finally:
        if progress is not None:
            progress.close()
    report = {
        "input": args.input, "output": str(out_path), "rejects": str(rejects_path), "campaign": args.campaign,
        "at": at.isoformat(), "ignore_hours": args.ignore_hours, "layout": layout.describe(),
        "lists": {n: gw.holder.current.version(n) for n in screener.list_names},
        "state": "ignored (--no-state)" if histories is None else safe_url(config.gateway.state),
        **summary.as_json(),
    }
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(summary_text(report))
    return DONE


