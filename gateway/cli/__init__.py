"""``dnc-gateway`` command line: one entry point, one module per command.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``; the helpers they share
are ``runtime`` (config and demo loading, a loaded gateway), ``options`` (``--at`` and other times),
``output`` (warnings and errors on stderr) and ``exits`` (exit codes, :class:`UsageError`).
Exit codes: 0 done (whatever the verdicts), 1 a check failed (``audit verify``, ``replay``'s protocol
errors), 2 bad input (message on stderr). Nothing outside this package imports it: it imports the rest.
Every command module is imported up front: the parser needs each one's options anyway, and their heavy
dependencies (aiohttp, tqdm) are imported where they are used.
"""

from __future__ import annotations

import argparse
import logging
from typing import Protocol

from gateway import __version__
from gateway.aio import ListenError
from gateway.cli import audit, backup, check, config, law, proof, registry, remote, replay, scrub, serve, state
from gateway.cli.exits import BAD_INPUT, FAILED, INTERRUPTED, UsageError
from gateway.cli.output import error
from gateway.config import ConfigError
from gateway.redact import RedactingFormatter, redact_text

__all__ = ["COMMANDS", "Command", "UsageError", "build_parser", "main"]


class Command(Protocol):
    """What a command module provides."""

    def add_arguments(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: dict[str, tuple[Command, str]] = {
    "serve": (serve, "run the FastAGI server, the web API and page (and the AMI watcher)"),
    "check": (check, "decide one call and print the verdict"),
    "scrub": (scrub, "screen a call file in bulk: cleaned file, rejects, summary"),
    "registry": (registry, "build, inspect, diff and merge registry snapshots"),
    "replay": (replay, "replay SIP captures or call files through a gateway over FastAGI"),
    "audit": (audit, "verify, query and export the audit trail"),
    "proof": (proof, "the proof dossier of one number: consents, decisions checked against the audit chain, "
                     "refusals, opt-outs, attempts (text, JSON, HTML, PDF)"),
    "config": (config, "validate a config file and its lists without serving"),
    "law": (law, "each jurisdiction pack's rules from its own data, with sources and whether verified"),
    "reload": (remote, "ask the running gateway to reload its config and lists, wait for the result (exit 1 when "
                       "anything was refused)"),
    "state": (state, "maintain the call history store (migrate a Redis history to the current key layout, "
                     "rebuild a lost one)"),
    "backup": (backup, "consistent online copies of the audit trail, consent store and call history, verified"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnc-gateway", description="Real-time do-not-call gateway for Asterisk.")
    parser.add_argument("--version", action="version", version=f"dnc-gateway {__version__}")
    parser.add_argument("--config", "-c", help="TOML config file (default: the embedded demo)")
    parser.add_argument("--data-dir", help="where relative paths point (default: the config's folder, or the demo's)")
    parser.add_argument("--log-level", default=None, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (command, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        command.add_arguments(p)
        p.set_defaults(handler=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level or ("INFO" if args.command == "serve" else "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # a list URL's password never reaches the log
        handler.setFormatter(RedactingFormatter(handler.formatter._fmt if handler.formatter else None))
    try:
        code: int = args.handler(args)
        return code
    except (UsageError, ConfigError) as e:
        error(args.command, redact_text(str(e)))
        return BAD_INPUT
    except ListenError as e:  # a port taken at `serve` start: one line, no traceback
        error(args.command, str(e))
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
