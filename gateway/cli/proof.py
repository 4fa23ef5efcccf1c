"""``dnc-gateway proof NUMBER``: the proof dossier of one number (DESIGN §7), as text, JSON, HTML or PDF.

Everything that proves or explains the calls to a number: its consents and revocations with their proof, its
opt-outs, the lists that hold it, every decision the audit trail holds (each checked against the hash chain),
the refusal, opt-out and attempts the state store counts, and a summary in French and English. The number is
printed in full: like ``audit query``, this is for whoever holds the config and the databases.

Exit 0 with the dossier; 1 when one of the number's audit records does not check against the hash chain, or
(``--whole-chain``) the whole trail does not (the dossier is still written, and says which); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gateway.audit import AuditError
from gateway.cli.exits import DONE, FAILED, UsageError
from gateway.cli.options import parse_time
from gateway.cli.runtime import load_gateway, load_runtime_config, normaliser_of, state_loop
from gateway.proof import html
from gateway.proof.dossier import Dossier
from gateway.proof.gather import Request, dossier
from gateway.service import utc_now
from gateway.state.model import StateUnavailable

FORMATS = ("text", "json", "html", "pdf")

# The command's wall clock: when the dossier says it was made, and the time of "if called now" (tests fix it).
clock: Callable[[], datetime] = utc_now


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("number", help="the number, any spelling (0612345678, +33 6 12 34 56 78, ...)")
    p.add_argument("--since", help="decisions from this time, inclusive: ISO-8601 (without offset: the config's "
                                   "[gateway] timezone), a date (its midnight), or UNIX seconds")
    p.add_argument("--until", help="decisions up to this time, exclusive (same forms as --since)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text (default), json (stable schema), html (a page to read and print), pdf (needs the "
                        "pdf extra: fpdf2)")
    p.add_argument("-o", "--output", help="write to this file (created mode 0600: personal data) instead of stdout")
    p.add_argument("--store", help="side store (default: DATA_DIR/registry-side.db)")
    p.add_argument("--whole-chain", action="store_true",
                   help="also walk the whole audit trail, as audit verify does (slow on years of calls)")


def build(args: argparse.Namespace) -> Dossier:
    config = load_runtime_config(args)
    g = config.gateway
    number = normaliser_of(g).parse(args.number)
    if not number.key:
        raise UsageError(f"{args.number!r} is not a phone number with an E.164 form")
    since = parse_time(args.since, g.timezone, "--since") if args.since else None
    until = parse_time(args.until, g.timezone, "--until") if args.until else None
    if since is not None and until is not None and until <= since:
        raise UsageError(f"--until {args.until!r} is not after --since {args.since!r}")
    request = Request(number, datetime.fromtimestamp(since, UTC) if since is not None else None,
                      datetime.fromtimestamp(until, UTC) if until is not None else None,
                      whole_chain=args.whole_chain, side_store=Path(args.store) if args.store else None)
    gw = load_gateway(config)
    with state_loop(gw, start=False) as loop:
        try:
            return loop.run_until_complete(dossier(gw, request, clock()))
        except StateUnavailable as e:
            raise UsageError(f"state store unavailable: {e}") from None
        except AuditError as e:
            raise UsageError(str(e)) from None


def text(d: Dossier) -> str:
    """The terminal form: the summary, then one line per record and decision."""
    j = d.as_json()
    out = [f"Proof dossier for {d.number} (shown in full: admin use only), generated {j['generated_at']}, "
           f"times in {d.zone}", "", "Summary:", f"  {d.summary['en']}", "", "Résumé :", f"  {d.summary['fr']}", ""]
    for title, records in (("consents", d.consents), ("opt-outs", d.optouts)):
        out.append(f"{len(records)} {title} recorded in {d.side_store}")
        for r in records:
            e = r.as_json()
            state = f"revoked on {e['revoked_on']} ({e['revoked_source']})" if e["revoked_on"] else "active"
            out.append(f"  #{e['id']} list {e['list']}: given on {e['given_on']}, source {e['source']}"
                       f"{', evidence ' + str(e['evidence']) if e['evidence'] else ''}; {state}; "
                       f"{e['allowed_calls']} allowed call(s); purged after {e['purge_after'] or '-'}")
    if j["retention"]["text"]:
        prefix = "retention: " if d.retention_configured else ""
        out.append(f"  {prefix}{j['retention']['text']}")
    for s in d.lists:
        held = "not loaded" if s.member is None else "holds" if s.member else "does not hold"
        out.append(f"list {s.name} ({s.kind}, {s.version}): {held} the number")
    if d.audit is None:
        out.append("no audit trail configured: no decision to show")
    for x in d.decisions:
        lists = ",".join(f"{k}@{v}" for k, v in x.lists.items()) if isinstance(x.lists, dict) else x.lists
        chain = "" if x.link == "intact" else f"  CHAIN {str(x.link).upper()}: {x.problem}"
        out.append(f"  {x.local_time}  {x.verdict:<5} {x.reason or x.ground:<17} campaign={x.campaign} rule={x.rule} "
                   f"id={x.decision_id} seq={x.seq} lists={lists or '-'}"
                   f"{' consent=#' + str(x.consent_id) if x.consent_id else ''}"
                   f"{', valid until ' + x.valid_until.isoformat() if x.valid_until else ''}"
                   f"{' written=' + x.written_local if x.written_local else ''}{chain}")
    st = j["state"]
    if st is not None:
        out.append(f"state store {st['store']}: opted out {st['opted_out_at'] or 'never'}; last refusal "
                   f"{st['last_refusal'] or 'none'}; {len(st['attempts'])} attempt(s) counted in the period")
    return "\n".join(out) + "\n"


def _write(path: str | None, data: bytes) -> None:
    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:  # personal data: readable by the owner only, like the audit database
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as e:
        raise UsageError(f"-o {path}: {e.strerror}") from None
    with open(fd, "wb") as f:
        f.write(data)


def render(d: Dossier, fmt: str) -> bytes:
    if fmt == "json":
        return (json.dumps(d.as_json(), ensure_ascii=False, indent=1) + "\n").encode()
    if fmt == "html":
        return html.render(d).encode()
    if fmt == "pdf":
        try:
            # optional: fpdf2 is the pdf extra, imported only when a PDF is asked for.
            from gateway.proof import pdf
        except ImportError:
            raise UsageError("--format pdf needs fpdf2: pip install 'dnc-gateway[pdf]' "
                             "(or use --format html and print the page)") from None
        return pdf.render(d)
    return text(d).encode()


def run(args: argparse.Namespace) -> int:
    if args.format == "pdf" and args.output is None and sys.stdout.isatty():
        raise UsageError("--format pdf writes binary data: give -o FILE.pdf")
    d = build(args)
    data = render(d, args.format)
    _write(args.output, data)
    if args.output:
        n = len(d.decisions)
        print(f"proof dossier of {d.number} written to {args.output} ({n} decision{'' if n == 1 else 's'})",
              file=sys.stderr)
    whole = d.audit.whole if d.audit is not None else None
    if whole is not None and not whole.ok:
        print(f"dnc-gateway proof: {whole.message}", file=sys.stderr)
    if d.broken:
        print(f"dnc-gateway proof: {len(d.broken)} audit record(s) of {d.number} do not check against the hash "
              "chain", file=sys.stderr)
    return FAILED if d.broken or (whole is not None and not whole.ok) else DONE
