"""``dnc-gateway registry build | info | diff | merge | proof | entries``: registry files for operators.

Inputs may be any format the loaders read (plain lists, Bloctel CSV, prefix lists,
snapshots); outputs are snapshots (``snapshot.write``: atomic, digest-checked). These
commands read no config unless ``--config`` is given (``proof`` uses it to say which
loaded lists hold the number).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyroaring import BitMap64, FrozenBitMap64

from gateway.cli import remote
from gateway.cli.exits import DONE, FAILED, UsageError
from gateway.cli.options import parse_at, parse_date
from gateway.cli.runtime import load_gateway, load_runtime_config, normaliser_of, safe_url, state_loop
from gateway.config import Config, GatewaySection
from gateway.numbers import Normaliser, Number
from gateway.proof.gather import Request, gather
from gateway.registry import national, snapshot
from gateway.registry.deltas import write_delta
from gateway.registry.loaders import FORMATS, detect_format, load_list
from gateway.registry.model import KeyRanges, ListKind, ListMeta, RegistryError, RegistryList
from gateway.registry.report import LoadReport
from gateway.registry.sidestore import EntryKind, SideStore, default_path
from gateway.state.model import History, StateUnavailable

KINDS = tuple(k.value for k in ListKind)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="registry_command", required=True, metavar="SUBCOMMAND")

    b = sub.add_parser("build", help="build a snapshot from one or several list files, with a validation report")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="list files (text, bloctel-csv, prefixes, snapshot)")
    b.add_argument("-o", "--output", required=True, help="snapshot to write")
    b.add_argument("--name", help="list name (default: the output file's stem)")
    b.add_argument("--kind", choices=KINDS, default="opposition")
    _input_options(b)
    b.add_argument("--report-json", metavar="FILE", help="also write the validation report as JSON")

    i = sub.add_parser("info", help="name, kind, count, as-of date, SHA-256, source and size of list files")
    i.add_argument("inputs", nargs="+", metavar="FILE")
    i.add_argument("--kind", choices=KINDS, default="opposition", help="kind of non-snapshot inputs")
    i.add_argument("--json", action="store_true")

    sh = sub.add_parser("show", help="how each line of a list file is read: the number or prefixes it becomes")
    sh.add_argument("file", metavar="FILE", help="a list file, or the name of a configured list (with --config)")
    sh.add_argument("--kind", choices=KINDS, help="kind of the file (default: the configured list's, else detected: "
                                                 "prefixes when a line is too short to be a number)")
    sh.add_argument("--limit", type=int, default=100, help="lines to show (0: all)")
    sh.add_argument("--json", action="store_true")

    d = sub.add_parser("diff", help="numbers added and removed from A to B")
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    d.add_argument("--kind", choices=KINDS, default="opposition", help="kind of non-snapshot inputs")
    d.add_argument("--list", action="store_true", help="print the numbers too, as a delta file (+N / -N lines)")
    d.add_argument("--json", action="store_true")

    m = sub.add_parser("merge", help="union of several lists into one snapshot")
    m.add_argument("inputs", nargs="+", metavar="INPUT")
    m.add_argument("-o", "--output", required=True)
    m.add_argument("--name", help="list name (default: the first input's, else the output's stem)")
    m.add_argument("--kind", choices=KINDS, help="kind (default: the first snapshot's, else opposition)")
    _input_options(m)

    pr = sub.add_parser("proof", help="everything that decides a call to one number: lists, side store, state store "
                                      "(opt-outs, refusals, attempts) and each campaign's decision")
    pr.add_argument("number")
    pr.add_argument("--store", help=f"side store (default: DATA_DIR/{default_path(Path('.')).name})")
    pr.add_argument("--at", help="when the decisions are made (default: now): ISO-8601 with an offset, a date or a "
                                 "local time in the config's timezone, or UNIX seconds")
    pr.add_argument("--json", action="store_true")

    ac = sub.add_parser("accept", help="put in service the version of a list that the running gateway held back "
                                       "for dropping more than max_shrink of its numbers")
    ac.add_argument("list_name", metavar="LIST")
    ac.add_argument("--url", help="the gateway's web address (default: http://[web] listen of the config)")

    e = sub.add_parser("entries", help="record consents, opt-outs and business relationships with their date and "
                                       "source (side store)")
    e.add_argument("action", choices=("import", "add", "revoke"))
    e.add_argument("target", metavar="FILE|NUMBER", help="CSV (number;date;source[;evidence]) for import, "
                                                        "else the number")
    e.add_argument("--list", required=True, dest="list_name", help="list the entries belong to")
    e.add_argument("--kind", choices=[k.value for k in EntryKind], default=None,
                   help="consent or optout (default: the list's: consent for a consent, customers or inquiries "
                        "list, optout for an internal_dnc list)")
    e.add_argument("--date", help="date given or revoked (YYYY-MM-DD, default today); for a customers or inquiries "
                                  "list, the last purchase or the inquiry")
    e.add_argument("--source", default="", help="where it comes from (form URL, recording id, …)")
    e.add_argument("--evidence", default="", help="reference to the evidence itself")
    e.add_argument("--store", help="side store (default: DATA_DIR/registry-side.db)")


def _input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="auto")
    p.add_argument("--as-of", help="as-of date of the result (default: the newest input's)")
    p.add_argument("--max-bad-share", type=float, default=0.05, help="fail when more lines than this are bad")
    p.add_argument("--home-country", default=None, help="how to read national numbers (default: config, else FR)")


def run(args: argparse.Namespace) -> int:
    try:
        handler = {"build": _build, "info": _info, "show": _show, "diff": _diff, "merge": _merge, "proof": _proof,
                   "entries": _entries, "accept": remote.accept}[args.registry_command]
        return handler(args)
    except RegistryError as e:
        raise UsageError(str(e)) from None
    except ValueError as e:
        raise UsageError(str(e)) from None


# -- helpers --------------------------------------------------------------------------------------

def _config(args: argparse.Namespace) -> Config | None:
    """The --config file when one is given: these commands never load (nor generate) the demo."""
    return load_runtime_config(args) if getattr(args, "config", None) else None


def _normaliser(args: argparse.Namespace) -> Normaliser:
    home = getattr(args, "home_country", None)
    if home:
        return Normaliser(home)
    config = _config(args)
    # Without a config, numbers are read as a default [gateway] section reads them (its home country).
    return normaliser_of(config.gateway if config is not None else GatewaySection())


def _kind_of(path: Path, default: ListKind) -> ListKind:
    try:
        header, _ = snapshot.read_header(path)
        return ListKind(header["kind"])
    except (RegistryError, OSError, KeyError, ValueError):
        return default


def _load(path: Path, kind: ListKind, normaliser: Normaliser, fmt: str = "auto",
          max_bad_share: float = 1.0) -> tuple[RegistryList, LoadReport]:
    return load_list(path, name=path.stem, kind=_kind_of(path, kind), normaliser=normaliser, fmt=fmt,
                     max_bad_share=max_bad_share)


def _union(lists: list[RegistryList]) -> FrozenBitMap64 | KeyRanges:
    ranges = [lst.members for lst in lists if isinstance(lst.members, KeyRanges)]
    bitmaps = [lst.members for lst in lists if isinstance(lst.members, FrozenBitMap64)]
    if ranges and bitmaps:
        raise RegistryError("cannot merge a prefix list with a number list")
    if ranges:
        return KeyRanges(iv for r in ranges for iv in r)
    acc = BitMap64()
    for bm in bitmaps:
        acc |= bm
    acc.run_optimize()
    return FrozenBitMap64(acc)


def _count(members: FrozenBitMap64 | KeyRanges, reports: list[LoadReport]) -> int:
    return len(members) if isinstance(members, FrozenBitMap64) else sum(r.accepted for r in reports)


def _combine(args: argparse.Namespace, kind: ListKind, name: str) -> tuple[dict[str, Any], int]:
    """Load every input, union them and write the snapshot; the report says what each input held."""
    normaliser = _normaliser(args)
    lists, reports, inputs = [], [], []
    for text in args.inputs:
        path = Path(text)
        lst, report = _load(path, kind, normaliser, args.fmt, args.max_bad_share)
        if lst.kind is not kind:
            raise RegistryError(f"{path}: holds a {lst.kind} list, the output is a {kind} list")
        lists.append(lst)
        reports.append(report)
        inputs.append({"input": str(path), "format": report.format, "lines": report.lines,
                       "numbers": report.accepted, "distinct": lst.meta.count, "bad": report.bad_count,
                       "bad_lines": [{"line": n, "why": why} for n, why in report.bad],
                       "as_of": lst.meta.as_of.isoformat() if lst.meta.as_of else None})
        if report.consents is not None:  # consent-csv: rows that are no proof, or dated after today
            inputs[-1]["undated"] = report.consents.undated
            inputs[-1]["future"] = [{"line": n, "collected_at": d} for n, d in report.consents.future]
    members = _union(lists)
    as_of = parse_date(args.as_of, "--as-of") or max((lst.meta.as_of for lst in lists if lst.meta.as_of), default=None)
    source = ", ".join(lst.meta.source for lst in lists)
    meta = ListMeta(name, kind, source, as_of, _count(members, reports), snapshot.digest(members))
    header = snapshot.write(RegistryList(meta, members), Path(args.output))
    return {"output": args.output, "name": name, "kind": str(kind), "count": meta.count,
            "as_of": header["as_of"], "sha256": header["sha256"], "inputs": inputs,
            "bad_lines": sum(r.bad_count for r in reports)}, DONE


def _print_build(report: dict[str, Any]) -> None:
    print(f"wrote {report['output']}: {report['name']} ({report['kind']}), {report['count']} numbers, "
          f"as of {report['as_of'] or 'undated'}, sha256 {report['sha256'][:16]}…")
    for i in report["inputs"]:
        print(f"  {i['input']} ({i['format']}): {i['lines']} lines, {i['numbers']} numbers, {i['bad']} bad")
        if "undated" in i:
            print(f"    {i['undated']} consents without a collection date (no proof: see undated_consent)")
            for f in i["future"][:10]:
                print(f"    line {f['line']}: collected_at {f['collected_at']} is in the future")
        for b in i["bad_lines"][:10]:
            print(f"    line {b['line']}: {b['why']}")
        if i["bad"] > 10:
            print(f"    … {i['bad'] - 10} more bad lines")


# -- subcommands ----------------------------------------------------------------------------------

def _build(args: argparse.Namespace) -> int:
    name = args.name or Path(args.output).stem
    report, code = _combine(args, ListKind(args.kind), name)
    if args.report_json:
        Path(args.report_json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print_build(report)
    return code


def _merge(args: argparse.Namespace) -> int:
    first = Path(args.inputs[0])
    kind = ListKind(args.kind) if args.kind else _kind_of(first, ListKind.OPPOSITION)
    name = args.name
    if not name:
        try:
            name = str(snapshot.read_header(first)[0].get("name") or "")
        except (RegistryError, OSError):
            name = ""
    report, code = _combine(args, kind, name or Path(args.output).stem)
    _print_build(report)
    return code


def _show(args: argparse.Namespace) -> int:
    """Each line of a list as the gateway reads it: ``0590`` -> ``+590590…`` (issue: a prefix read as +33 590)."""
    normaliser = _normaliser(args)
    config = _config(args)
    spec = config.lists.get(args.file) if config is not None else None
    path = spec.path if spec is not None and spec.path is not None else Path(args.file)
    if not path.is_file():
        raise UsageError(f"{args.file}: no such file{' or configured list' if config is not None else ''}")
    kind = ListKind(args.kind) if args.kind else spec.kind if spec is not None else None
    fmt = str(spec.format) if spec is not None and spec.format != "auto" else detect_format(
        path, kind or ListKind.OPPOSITION, normaliser.home_country)
    layout = national.LAYOUTS.get(fmt)  # a national registry file: its records, read by its country's plan
    if layout is not None and kind is None:
        kind = ListKind.OPPOSITION
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        for line_no, raw in enumerate(f, 1):
            if layout is not None and (record := raw.strip()) and not record.startswith("#"):
                key = layout.line(record.encode())
                rows.append({"line": line_no, "text": record, "read": [f"+{key}"] if key else None})
                if args.limit and len(rows) >= args.limit:
                    break
                continue
            text = raw.strip().split(";")[0].split(",")[0].strip().strip('"')
            if not text or text.startswith("#"):
                continue
            if kind is None:
                kind = ListKind.BLOCKED_PREFIXES if len(text.lstrip("+0")) < 8 else ListKind.OPPOSITION
            if kind is ListKind.BLOCKED_PREFIXES:
                prefixes = normaliser.prefix(text)
                read = ["+" + d for d in prefixes] if prefixes is not None else None
            else:
                number = normaliser.parse(text)
                read = [number.e164] if number.key else None
            rows.append({"line": line_no, "text": text, "read": read})
            if args.limit and len(rows) >= args.limit:
                break
    if args.json:
        print(json.dumps({"file": str(path), "kind": str(kind), "lines": rows}, indent=2, ensure_ascii=False))
        return DONE
    shown_fmt = f", {fmt}" if layout else ""
    print(f"{path} ({kind}{shown_fmt}{', first ' + str(args.limit) + ' lines' if args.limit else ''}):")
    for row in rows:
        shown = ", ".join(row["read"]) if row["read"] else "NOT READ (not a number)"
        print(f"  line {row['line']}: {row['text']} -> {shown}")
    return DONE


def _info(args: argparse.Namespace) -> int:
    normaliser = _normaliser(args)
    out = []
    for text in args.inputs:
        path = Path(text)
        if not path.is_file():
            raise RegistryError(f"{path}: no such file")
        lst, report = _load(path, ListKind(args.kind), normaliser)
        row: dict[str, Any] = {"file": str(path), "name": lst.meta.name, "kind": str(lst.kind),
                               "count": lst.meta.count, "as_of": lst.meta.as_of.isoformat() if lst.meta.as_of else None,
                               "sha256": lst.meta.sha256, "version": lst.meta.version, "source": lst.meta.source,
                               "size": path.stat().st_size, "format": report.format}
        if report.format == "snapshot":
            header, _ = snapshot.read_header(path)
            row["name"] = header.get("name") or row["name"]
            row["source"] = header.get("source") or row["source"]
            row["created"] = header.get("created")
        else:
            row["lines"], row["bad_lines"] = report.lines, report.bad_count
        out.append(row)
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
        return DONE
    for row in out:
        print(f"{row['file']}")
        for k in ("name", "kind", "count", "as_of", "sha256", "version", "source", "size", "format", "created",
                  "lines", "bad_lines"):
            if k in row:
                print(f"  {k + ':':10} {row[k] if row[k] is not None else '-'}")
    return DONE


def _diff(args: argparse.Namespace) -> int:
    normaliser = _normaliser(args)
    a, _ = _load(Path(args.a), ListKind(args.kind), normaliser)
    b, _ = _load(Path(args.b), ListKind(args.kind), normaliser)
    if not (isinstance(a.members, FrozenBitMap64) and isinstance(b.members, FrozenBitMap64)):
        raise RegistryError("diff compares number lists, not prefix lists")
    added = b.members - a.members
    removed = a.members - b.members
    summary = {"a": {"file": args.a, "count": a.meta.count, "version": a.meta.version},
               "b": {"file": args.b, "count": b.meta.count, "version": b.meta.version},
               "added": len(added), "removed": len(removed), "unchanged": len(a.members & b.members)}
    if args.list:
        out = sys.stdout
        for line in write_delta(None, added, removed, b.meta.as_of):
            out.write(line + "\n")
        print(f"{args.a} -> {args.b}: +{len(added)} -{len(removed)}", file=sys.stderr)
    elif args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.a} ({a.meta.count}, {a.meta.version}) -> {args.b} ({b.meta.count}, {b.meta.version}): "
              f"{len(added)} added, {len(removed)} removed, {summary['unchanged']} unchanged")
    return DONE


def _store_path(args: argparse.Namespace, config: Config | None = None) -> Path:
    """The side store of the config the command reads (the one ``serve`` and ``proof`` read): DATA_DIR's, or
    ``--store``. Without a config, ``--data-dir``'s, else the working directory's."""
    if args.store:
        return Path(args.store)
    config = config or _config(args)
    if config is not None:
        return default_path(config.gateway.data_dir)
    return default_path(Path(args.data_dir) if getattr(args, "data_dir", None) else Path("."))


def _proof(args: argparse.Namespace) -> int:
    """What decides a call to the number now: the part of the proof dossier (``dnc-gateway proof``) that needs no
    audit trail, read by the same code, printed as this command always printed it."""
    normaliser = _normaliser(args)
    number = normaliser.parse(args.number)
    if not number.key:
        raise UsageError(f"{args.number!r} is not a phone number with an E.164 form")
    store_path = _store_path(args)
    config = _config(args)
    report: dict[str, Any] = {"number": number.e164, "store": str(store_path), "entries": [], "lists": {}}
    if config is None:
        if store_path.is_file():
            with SideStore(store_path) as store:
                report["entries"] = [e.as_json() for e in store.entries(number.key)]
    else:
        report.update(_what_decides(config, number, parse_at(args.at, config.gateway.timezone) or datetime.now(UTC),
                                     store_path))
    entries = report["entries"]
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return DONE
    print(f"{number.e164}: {len(entries)} recorded entr{'y' if len(entries) == 1 else 'ies'} in {store_path}")
    for e in entries:
        state = f"revoked on {e['revoked_on']} ({e['revoked_source']})" if e["revoked_on"] else "active"
        print(f"  {e['kind']} for list {e['list']}: given on {e['given_on']}, source {e['source']}"
              f"{', evidence ' + e['evidence'] if e['evidence'] else ''}; recorded {e['recorded_at']}; {state}")
    for name, info in report["lists"].items():
        print(f"  list {name} ({info['kind']}, {info['version']}): {'holds' if info['member'] else 'does not hold'}"
              f" the number")
    if "state" in report:
        st = report["state"]
        print(f"  state store {st['store']}: opted out {st['opted_out_at'] or 'never'}; last refusal "
              f"{st['last_refusal'] or 'none'}; {len(st['attempts'])} counted attempt(s)"
              + (f", last {st['attempts'][-1]}" if st["attempts"] else ""))
        for campaign, d in report["decisions"].items():
            why = d["reason"] or d["basis"]
            print(f"  campaign {campaign} at {report['at']}: {d['verdict']} {why} ({d['rule']}): {d['detail']}")
    print(f"  the whole dossier (every decision, checked against the audit chain): dnc-gateway proof {number.e164}")
    return DONE


def _what_decides(config: Config, number: Number, at: datetime, store: Path) -> dict[str, Any]:
    """The side store's entries, the lists, the state store's history and each campaign's decision for ``number``
    at ``at``: the dossier's sources without the audit trail (``gateway.proof.gather``)."""
    gw = load_gateway(config)
    with state_loop(gw, start=False) as loop:
        try:
            s = loop.run_until_complete(gather(gw, Request(number, audit=False, side_store=store), at))
        except StateUnavailable as e:
            raise UsageError(f"state store unavailable: {e}") from None
    history = s.history or History()
    state: dict[str, Any] = {
        "store": safe_url(config.gateway.state),
        "opted_out_at": history.opted_out_at.isoformat() if history.opted_out_at else None,
        "last_refusal": history.last_refusal.isoformat() if history.last_refusal else None,
        "attempts": [t.isoformat() for t in history.attempts]}
    lists = {x.name: {"kind": x.kind, "member": bool(x.member), "version": x.version} for x in s.lists}
    return {"entries": [e.as_json() for e in s.entries], "lists": lists, "state": state, "at": at.isoformat(),
            "decisions": {k: dict(v) for k, v in s.outlook.items()}}


# Which configured lists each kind of side-store entry belongs to: a consent entry on a customers or inquiries
# list is a business relationship dated by its --date (the last purchase or transaction, or the inquiry).
_ENTRY_LISTS = {EntryKind.CONSENT: (ListKind.CONSENT, ListKind.CUSTOMERS, ListKind.INQUIRIES),
                EntryKind.OPTOUT: (ListKind.INTERNAL_DNC,)}
_RELATIONSHIP = (ListKind.CUSTOMERS, ListKind.INQUIRIES)


def _entry_list(args: argparse.Namespace) -> tuple[Config, EntryKind]:
    """Entries name a configured list of the matching kind: an entry for a list nobody reads would be
    evidence of nothing (the config is --config, else the embedded demo's). Without --kind, the list's kind
    says which entry it takes."""
    config = load_runtime_config(args)
    spec = config.lists.get(args.list_name)
    kind = EntryKind(args.kind) if args.kind else \
        EntryKind.OPTOUT if spec is not None and spec.kind is ListKind.INTERNAL_DNC else EntryKind.CONSENT
    wants = _ENTRY_LISTS[kind]
    fits = sorted(n for n, s in config.lists.items() if s.kind in wants)
    named = " or ".join(str(w) for w in wants)
    if spec is None:
        raise UsageError(f"--list {args.list_name!r}: no such list in the config (its {named} lists: "
                         f"{', '.join(fits) or 'none'})")
    if spec.kind not in wants:
        raise UsageError(f"--list {args.list_name!r} is of kind {spec.kind}: {kind} entries belong to a list of "
                         f"kind {named} ({', '.join(fits) or 'none configured'})")
    return config, kind


def _entries(args: argparse.Namespace) -> int:
    normaliser = _normaliser(args)
    config, kind = _entry_list(args)
    relationship = config.lists[args.list_name].kind in _RELATIONSHIP
    on = parse_date(args.date, "--date") or date.today()
    # The store of the config the list was checked against (the demo's without -c): where serve and proof look.
    with SideStore(_store_path(args, config)) as store:
        if args.action == "import":
            path = Path(args.target)
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as e:
                raise UsageError(f"{path}: cannot read: {e}") from None
            report = store.import_csv(text, args.list_name, kind, normaliser, args.source)
            print(f"imported {report.imported} of {report.lines} {kind} entries into {store.path}")
            if report.bad_count:
                # Some lines were not imported: the operator must see which, and a script must not go on.
                print(f"{path}: {report.bad_count} line{'s' if report.bad_count > 1 else ''} rejected:",
                      file=sys.stderr)
                for line_no, why in (report.bad or [])[:20]:
                    print(f"  line {line_no}: {why}", file=sys.stderr)
                if report.bad_count > 20:
                    print(f"  … {report.bad_count - 20} more", file=sys.stderr)
                return FAILED
            return DONE
        number = normaliser.parse(args.target)
        if not number.key:
            raise UsageError(f"{args.target!r} is not a phone number")
        if args.action == "add":
            store.add(args.list_name, number.key, kind, on, args.source, args.evidence)
            if relationship:
                print(f"recorded a business relationship of {number.e164} on list {args.list_name}, dated {on}")
            else:
                print(f"recorded {kind} of {number.e164} for list {args.list_name}, given on {on}")
        else:
            if not args.source:
                raise UsageError("revoke: say where the revocation comes from (--source)")
            return _revoke(store, args, number.e164, number.key, kind, on)
    return DONE


def _revoke(store: SideStore, args: argparse.Namespace, e164: str, key: int, kind: EntryKind, on: date) -> int:
    """One withdrawal path: a consent is withdrawn from the professional, wherever it was recorded (this list,
    another, a consent file's rows, a call or the API), at the instant now unless ``--date`` says the day; the
    gateways apply it within a second (the side store's withdrawals end every consent collected before it). When
    nothing is on record to revoke, exit 1 and say what does end that consent."""
    when: date | datetime = on if args.date else datetime.now(UTC)
    if kind is EntryKind.CONSENT:
        n = store.revoke(None, key, when, args.source, channel="cli", kind=EntryKind.CONSENT)
        if n:
            print(f"revoked {n} consent entr{'y' if n == 1 else 'ies'} of {e164} (every list, and those recorded at "
                  f"a call or over the API): consent withdrawn on {when.isoformat()}")
            return DONE
        print(f"no consent of {e164} on record in {store.path}: nothing revoked. A number on a consent list file "
              f"without a record here is the file's: remove it from the file; or end its consent at once on every "
              f"gateway with a refusal (POST /api/refusals, or FastAGI refusal)", file=sys.stderr)
        return FAILED
    n = store.revoke(args.list_name, key, when, args.source, channel="cli", kind=EntryKind.OPTOUT)
    if n:
        print(f"revoked {n} opt-out entr{'y' if n == 1 else 'ies'} of {e164} in list {args.list_name}")
        return DONE
    print(f"no opt-out of {e164} on record for list {args.list_name} in {store.path}: nothing revoked", file=sys.stderr)
    return FAILED
