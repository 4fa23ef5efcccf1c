"""``dnc-gateway audit verify | query | export``: what a compliance officer runs, months later.

All three read the database read-only (safe while a gateway is writing it) and
never create one: a mistyped path is an error, not an empty, "intact" log.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from gateway.audit import COLUMNS, WRITTEN_AT, AuditError, AuditReader, row_dict
from gateway.cli.exits import DONE, FAILED, UsageError
from gateway.cli.options import did_you_mean, parse_time
from gateway.cli.runtime import load_runtime_config, normaliser_of
from gateway.config import GatewaySection

# When a record was written comes last: the columns before it keep their places for existing readers.
EXPORT_FIELDS = ("seq", "decision_id", "time", *(c for c in COLUMNS if c != "decision_id"), "prev_hash", "hash",
                 WRITTEN_AT, "written_time")
# Beyond this, the text line of ``audit query`` says when a record was written: a decision dated away from
# its writing (``check --record --at … --force``) must not read as a call made at that time.
SHOW_WRITTEN_AFTER = 60.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    v = sub.add_parser("verify", help="check the hash chain: exit 0 intact, 1 changed/removed/reordered records",
                       description="Walk the hash chain from the retention anchor to the head.")
    v.add_argument("--db", help="audit database (default: [gateway] audit of the config)")
    q = sub.add_parser("query", help="records by number, campaign and time range",
                       description="Print the decisions matching every filter given, oldest first.")
    _filters(q)
    q.add_argument("--limit", type=int, default=1000, help="at most this many records (default 1000)")
    q.add_argument("--format", choices=("text", "json"), default="text")
    e = sub.add_parser("export", help="every matching decision as CSV or JSON lines, one row per DNC_DECISION_ID",
                       description="Export decisions for a regulator (stdout, or -o FILE created mode 0600).")
    _filters(e)
    e.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    e.add_argument("-o", "--output", help="write to this file instead of stdout")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="audit database (default: [gateway] audit of the config)")
    p.add_argument("--number", help="the called number, any spelling (0612345678, +33 6 12 34 56 78, ...)")
    p.add_argument("--campaign", help="campaign name")
    p.add_argument("--since", help="from this time, inclusive: ISO-8601 (a time without offset is in the config's "
                                   "[gateway] timezone), a date (its midnight), or UNIX seconds")
    p.add_argument("--until", help="up to this time, exclusive (same forms as --since)")


def _gateway_section(args: argparse.Namespace) -> GatewaySection:
    # With --db and no --config, do not touch (or generate) the demo data just to learn the home country.
    if args.db and not args.config:
        return GatewaySection()
    return load_runtime_config(args).gateway


def _db_path(args: argparse.Namespace, g: GatewaySection) -> Path:
    if args.db:
        return Path(args.db)
    if g.audit is None:
        raise UsageError("no audit database: set [gateway] audit in the config, or pass --db PATH")
    return g.audit


def _open(path: Path) -> AuditReader:
    try:
        return AuditReader(path)
    except AuditError as e:
        raise UsageError(str(e)) from None


def _number(text: str, g: GatewaySection) -> str:
    """The number as the gateway stores it: E.164 (or the short number), whatever the spelling typed."""
    n = normaliser_of(g).parse(text)
    return n.e164 or n.short or text.strip()[:32]


def _query_args(args: argparse.Namespace, g: GatewaySection) -> dict[str, Any]:
    since = parse_time(args.since, g.timezone, "--since") if args.since else None
    until = parse_time(args.until, g.timezone, "--until") if args.until else None
    if since is not None and until is not None and until <= since:
        raise UsageError(f"--until {args.until!r} is not after --since {args.since!r}")
    return {"number": _number(args.number, g) if args.number else None, "campaign": args.campaign,
            "since": since, "until": until}


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    try:  # personal data: readable by the owner only, like the database
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as e:
        raise UsageError(f"-o {path}: {e.strerror}") from None
    with open(fd, "w", encoding="utf-8", newline="") as f:
        yield f


def _text_line(d: dict[str, Any]) -> str:
    lists = ",".join(f"{k}@{v}" for k, v in d["lists"].items()) if isinstance(d["lists"], dict) else d["lists"]
    would = " (would block)" if d["would_block"] and d["verdict"] == "ALLOW" else ""
    written = d[WRITTEN_AT]
    late = (f" written={d['written_time']}" if isinstance(written, float) and isinstance(d["at"], float)
            and abs(written - d["at"]) > SHOW_WRITTEN_AFTER else "")
    return (f"{d['time']}  {d['verdict']:<5} {d['reason'] or '-':<17} {d['number']:<16} campaign={d['campaign']} "
            f"rule={d['rule']} id={d['decision_id']} channel={d['channel'] or '-'} lists={lists or '-'}{would}"
            f"{late} source={d['source']}")


_UPTO = re.compile(r"seq \d+\.\.(\d+)")


def run(args: argparse.Namespace) -> int:
    g = _gateway_section(args)
    path = _db_path(args, g)
    action = args.audit_command
    filters = _query_args(args, g) if action in ("query", "export") else {}
    reader = _open(path)
    try:
        if filters.get("campaign"):
            _known_campaign(args, reader)
        if action == "verify":
            result = reader.verify()
            print(result.message, file=sys.stdout if result.ok else sys.stderr)
            _print_purges(reader, result.anchor_seq)
            return DONE if result.ok else FAILED
        if action == "query":
            if args.limit <= 0:
                raise UsageError(f"--limit {args.limit}: must be positive")
            found = reader.query(limit=args.limit, **filters)
            if args.format == "json":
                print(json.dumps(found, ensure_ascii=False, indent=1))
            else:
                for d in found:
                    print(_text_line(d))
                more = " (limit reached: narrow the query or raise --limit)" if len(found) == args.limit else ""
                print(f"{len(found)} record(s){more}", file=sys.stderr)
            return DONE
        with _output(args.output) as out:
            count = _export(reader, filters, args.format, out)
        if args.output:
            print(f"{count} record(s) written to {args.output}", file=sys.stderr)
        return DONE
    except BrokenPipeError:  # `audit export | head`: the reader left, nothing to report
        sys.stderr.close()
        return DONE
    finally:
        reader.close()


def _print_purges(reader: AuditReader, anchor_seq: int) -> None:
    """Each retention purge the chain records; a purged prefix no PURGE record accounts for, said as such."""
    purges = reader.purges()
    for d in purges:
        print(f"purge record seq {d['seq']} at {d['written_time'] or d['time']}: {d['detail']}")
    covered = max((int(m.group(1)) for d in purges if (m := _UPTO.search(d["detail"] or ""))), default=0)
    if anchor_seq > covered:
        print(f"warning: seq {covered + 1}..{anchor_seq} purged with no purge record in the chain (a purge by an "
              "older release, or records deleted outside the gateway's retention)", file=sys.stderr)
def _known_campaign(args: argparse.Namespace, reader: AuditReader) -> None:
    """A --campaign neither configured nor in the trail is a typo (exit 2, did you mean): not an empty answer.
    A campaign the config no longer defines is still found by its decisions in the trail."""
    if reader.query(campaign=args.campaign, limit=1):
        return
    names = [] if args.db and not args.config else list(load_runtime_config(args).campaigns)
    if args.campaign in names:
        return  # configured, no decision yet: an empty answer is the truth
    raise UsageError(f"--campaign {args.campaign!r}: no campaign of that name in the config nor in the audit trail"
                     f"{did_you_mean(args.campaign, names)}")


def _export(reader: AuditReader, filters: dict[str, Any], fmt: str, out: IO[str]) -> int:
    count = 0
    if fmt == "csv":
        w = csv.writer(out)
        w.writerow(EXPORT_FIELDS)
        for row in reader.rows(**filters):
            d = row_dict(row)
            d["lists"] = json.dumps(d["lists"], ensure_ascii=False, sort_keys=True)
            d["would_block"] = int(d["would_block"])
            w.writerow(["" if d[k] is None else d[k] for k in EXPORT_FIELDS])
            count += 1
    else:
        for row in reader.rows(**filters):
            out.write(json.dumps(row_dict(row), ensure_ascii=False) + "\n")
            count += 1
    out.flush()
    return count
