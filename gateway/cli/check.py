"""``dnc-gateway check NUMBER --campaign NAME``: decide one call and print the verdict (DESIGN §7).

``--record`` makes the decision real: the attempt is counted in the state store (the frequency cap of the
calls placed today sees it) and the decision goes to the audit trail. Dated with ``--at`` away from now, that
would count an attempt at a time no call was made (attempts dated next week made real calls ``frequency_cap``
today): refused unless ``--force``; forced, the audit record keeps both times, ``at`` (the ``--at``) and
``written_at`` (when it was written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.audit import AuditLog
from gateway.cli.exits import DONE, UsageError
from gateway.cli.options import campaign_named, parse_at, span
from gateway.cli.runtime import load_gateway, load_runtime_config
from gateway.service import utc_now

# How far --at may be from now for --record without --force: a clock a little off, or a time typed to the
# minute, is still "now"; a date in another hour or day is not.
RECORD_SKEW = timedelta(minutes=5)

# The wall clock --at is compared with, and that dates when the audit record is written (tests replace it).
clock: Callable[[], datetime] = utc_now


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("number", help="the number as dialled (0612345678, +33612345678, ...)")
    p.add_argument("--campaign", required=True, help="campaign name from the config")
    p.add_argument("--at", help="when the call is placed (default: now): ISO-8601 with an offset, a date or a local "
                                "time read in the config's [gateway] timezone, or UNIX seconds")
    p.add_argument("--caller-id", help="presented number (default: the campaign's caller_id)")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.add_argument("--record", action="store_true",
                   help="count an allowed call as an attempt in the state store, and audit the decision")
    p.add_argument("--force", action="store_true",
                   help=f"with --record: record even with an --at more than {_minutes(RECORD_SKEW)} from now")


def _minutes(d: timedelta) -> str:
    return f"{int(d.total_seconds() // 60)} minutes"


def refuse_skewed_record(at: datetime | None, now: datetime, *, force: bool) -> None:
    """--record with an --at away from now writes a decision and counts an attempt at a time no call was made
    (the cap and cooldowns of the real calls placed now would count it): refused, unless forced."""
    if at is None or force or abs(at - now) <= RECORD_SKEW:
        return
    when = f"{span(at - now)} {'after' if at > now else 'before'} now"
    raise UsageError(
        f"--record --at {at.isoformat()} is {when}: it would write a decision to the audit trail and count an "
        f"attempt in the state store at a time that is not now, and the frequency cap and cooldowns of the real "
        f"calls would count it. Drop --record to see the decision at that time without recording anything, or "
        f"add --force to record it anyway (its audit record then shows both times: at = the --at, "
        f"written_at = now). --record without --force takes an --at within {_minutes(RECORD_SKEW)} of now.")


def run(args: argparse.Namespace) -> int:
    if args.force and not args.record:
        raise UsageError("--force only applies to --record (a check without --record records nothing)")
    config = load_runtime_config(args)
    at = parse_at(args.at, config.gateway.timezone)
    campaign_named(args.campaign, config.campaigns)
    if args.record:
        refuse_skewed_record(at, clock(), force=args.force)
    gw = load_gateway(config)

    async def go() -> int:
        audit = None
        if args.record and config.gateway.audit is not None:
            # A recorded attempt is a decision like a call's: it goes to the audit trail too, its written_at
            # from the clock --at was compared with.
            audit = AuditLog(config.gateway.audit, config.audit, clock=lambda: clock().timestamp())
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
