"""``dnc-gateway state migrate [URL]``: convert a Redis call history to the current key layout;
``dnc-gateway state rebuild``: restore a lost call history from the audit trail and the consent store.

A gateway that finds a Redis history written in an older key layout refuses to count (calls fail closed,
``state_unavailable``) and its log names this command. Stop every gateway first: an old gateway still running
would keep writing names nothing reads. The conversion keeps each key's remaining TTL and may be run again if
interrupted (docs/call-history.md, "Upgrading a Redis history to layout 2").
"""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.exits import UsageError
from gateway.cli.runtime import load_runtime_config, safe_url

_REDIS = ("redis://", "rediss://", "redis+sentinel://", "redis+cluster://")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    m = sub.add_parser("migrate", help="convert a Redis history to the current key layout (stop the gateways first)",
                       description=__doc__.split("\n\n")[0])
    m.add_argument("url", nargs="?", help="the Redis state URL (default: the config's [gateway] state)")
    sub.add_parser("rebuild", help="restore attempts, refusals and opt-outs of a lost call history from the audit "
                   "trail and the consent store (stop an embedded-history gateway first)")


def run(args: argparse.Namespace) -> int:
    if args.action == "rebuild":
        return _rebuild(args)
    url = args.url or load_runtime_config(args).gateway.state
    if not url.startswith(_REDIS):
        raise UsageError(f"{safe_url(url)}: not a Redis state (redis://, rediss://, redis+sentinel://, "
                         "redis+cluster://): an embedded history needs no migration")
    # lazy: redis-py is imported only by the commands that talk to Redis (start-up time of every other command).
    from gateway.state import redis_migrate
    from gateway.state.redis_store import LAYOUT

    try:
        done = asyncio.run(redis_migrate.migrate(url))
    except (OSError, TimeoutError) as e:
        raise UsageError(f"{safe_url(url)}: {e}") from None
    print(f"{safe_url(url)}: converted {done.get('a', 0)} attempt, {done.get('r', 0)} refusal, "
          f"{done.get('o', 0)} opt-out and {done.get('c', 0)} consent keys of {done.get('professionals', 0)} "
          f"professionals to layout {LAYOUT}")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    # lazy: the rebuild's imports (the audit reader, the whole service) for this one action (start-up time).
    from gateway.cli.rebuild import run_rebuild

    config = load_runtime_config(args)
    if config.gateway.state.startswith("memory://"):
        raise UsageError("memory://: an in-memory history has nothing to rebuild into")
    done = run_rebuild(config)
    print(f"{safe_url(config.gateway.state)}: rebuilt {done.attempts} attempts from the audit trail "
          f"({done.skipped_attempts} already there), {done.optouts} opt-outs, {done.consents} consents and "
          f"{done.refusals} refusals from the consent store; marker {done.marker[:8] or '-'} written back")
    print("note: a refusal recorded for a number with no consent on record is kept only in the history: those "
          "cannot be rebuilt")
    return 0
