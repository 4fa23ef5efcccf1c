"""``dnc-gateway`` command line: one entry point, one module per command.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Exit codes: 0 done (whatever the verdicts), 1 a check failed (``audit verify``),
2 bad input (message on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType

from gateway import __version__
from gateway.config import Config, ConfigError
from gateway.config import load as load_config

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("gateway.app", "run the FastAGI server, the web API and page (and the AMI watcher)"),
    "check": ("gateway.cli", "decide one call and print the verdict"),
    "scrub": ("gateway.scrub", "screen a call file in bulk: cleaned file, rejects, summary"),
    "registry": ("gateway.registry.cli", "build, inspect, diff and merge registry snapshots"),
    "replay": ("gateway.replay.cli", "replay SIP captures or call files through a gateway over FastAGI"),
    "audit": ("gateway.audit_cli", "verify, query and export the audit trail"),
}


class UsageError(Exception):
    """Bad input from the command line: exit 2 with the message."""


def load_runtime_config(args: argparse.Namespace) -> Config:
    """The --config file, or the embedded demo (generating its data on first run)."""
    if args.config:
        return load_config(Path(args.config), data_dir=Path(args.data_dir) if args.data_dir else None)
    from gateway.config import DEMO_CONFIG
    from gateway.demo.generate import demo_dir, ensure_demo_data

    root = Path(args.data_dir) if args.data_dir else demo_dir()
    ensure_demo_data(root)
    return load_config(DEMO_CONFIG, data_dir=root)


def parse_at(text: str | None) -> datetime | None:
    """ISO-8601 with an offset; a naive time is refused: the rules depend on the callee's zone."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r}: not an ISO-8601 date and time (e.g. 2026-03-10T11:30:00+01:00)") from None
    if at.tzinfo is None:
        raise UsageError(f"--at {text!r}: add the UTC offset (e.g. {text}+01:00): hours rules need it")
    return at


# -- check ---------------------------------------------------------------------------------------

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
    from gateway.service import Gateway

    gw = Gateway(config)
    result = gw.holder.load_all()
    for name, err in result.failed.items():
        print(f"warning: list {name}: {err}", file=sys.stderr)

    async def go() -> int:
        audit = None
        if args.record and config.gateway.audit is not None:
            # A recorded attempt is a decision like a call's: it goes to the audit trail too.
            from gateway.audit import AuditLog

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
        return 0

    return asyncio.run(go())


# -- entry point ---------------------------------------------------------------------------------

def _load(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnc-gateway", description="Real-time do-not-call gateway for Asterisk.")
    parser.add_argument("--version", action="version", version=f"dnc-gateway {__version__}")
    parser.add_argument("--config", "-c", help="TOML config file (default: the embedded demo)")
    parser.add_argument("--data-dir", help="where relative paths point (default: the config's folder, or the demo's)")
    parser.add_argument("--log-level", default=None, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        mod = sys.modules[__name__] if module == __name__ else _load(module)
        if mod is None:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(handler=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level or ("INFO" if args.command == "serve" else "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.handler(args)
        return code
    except (UsageError, ConfigError) as e:
        print(f"dnc-gateway {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    # Re-import: run as ``python -m gateway.cli`` this module is __main__, and command modules
    # raise gateway.cli.UsageError, which must be the class main() catches.
    from gateway.cli import main as _main

    sys.exit(_main())
