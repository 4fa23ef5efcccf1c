"""``dnc-gateway law [COUNTRY] [--format text|md|json]``: each pack's rules, printed from the pack's own data.

Hours, holidays, caps, windows, lifetimes, legal list ages, exemptions, states' rules, zones and emergency
numbers, each with its source and whether it was verified. ``--format md`` without a country prints the index
page of the docs' law pages (docs/law/index.md); with one, that country's page (docs/law/us.md, …).
"""

from __future__ import annotations

import argparse
import json

from gateway.cli.exits import DONE, UsageError
from gateway.policy import law
from gateway.policy.packs import PACKS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("country", nargs="?", help=f"one pack ({', '.join(PACKS)}; default: all)")
    p.add_argument("--format", dest="fmt", choices=("text", "md", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    if args.country is not None:
        code = args.country.strip().upper()
        code = "GB" if code == "UK" else code
        if code not in PACKS:
            raise UsageError(f"no jurisdiction pack for {args.country!r} (available: {', '.join(PACKS)})")
        codes = [code]
    else:
        codes = list(PACKS)
    summaries = {c: law.summary(PACKS[c]) for c in codes}
    if args.fmt == "json":
        body = [s.as_json() for s in summaries.values()]
        print(json.dumps(body[0] if args.country is not None else body, indent=2, ensure_ascii=False))
    elif args.fmt == "md":
        print(law.markdown(summaries[codes[0]]) if args.country is not None else law.index_markdown(summaries),
              end="")
    else:
        print("\n\n".join(law.text(s) for s in summaries.values()))
    return DONE
