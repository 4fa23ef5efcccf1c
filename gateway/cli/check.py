"""``dnc-gateway check NUMBER --campaign NAME``: decide one call and print the verdict (DESIGN §7)."""

from __future__ import annotations

import argparse
import asyncio
import json

from gateway.audit import AuditLog
from gateway.cli.exits import DONE
from gateway.cli.options import parse_at
from gateway.cli.runtime import load_gateway, load_runtime_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("number", help="the number as dialled (0612345678, +33612345678, ...)")
    p.add_argument("--campaign", required=True, help="campaign name from the config")
    p.add_argument("--at", help="ISO-8601 date and time with offset (default: now)")
    p.add_argument("--caller-id", help="presented number (default: the campaign's caller_id)")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.add_argument("--record", action="store_true", help="count an allowed call as an attempt in the state store")


def run(args: argparse.Namespace) -> int:
    at = parse_at(args.at)
    config = load_runtime_config(args)
    gw = load_gateway(config)

    async def go() -> int:
        audit = None
        if args.record and config.gateway.audit is not None:
            # A recorded attempt is a decision like a call's: it goes to the audit trail too.
            audit = AuditLog(config.gateway.audit, config.audit)
            await audit.start()
            gw.audit = audit
        try:
            outcome = await gw.check(args.number, args.campaign, args.caller_id, source="cli", record=args.record,
                                     now=at)
        finally:
            await gw.close()
            if audit is not None:
                await audit.close()
        d = outcome.decision
        if args.json:
            out = d.as_json()
            if args.record:
                out["decision_id"] = outcome.decision_id
            print(json.dumps(out, ensure_ascii=False))
        else:
            why = f" ({d.reason})" if d.reason else ""
            would = " — would block in enforce mode" if d.would_block and d.verdict == "ALLOW" else ""
            print(f"{d.verdict}{why} {d.number or args.number} campaign={d.campaign}: {d.detail}{would}")
        return DONE

    return asyncio.run(go())
