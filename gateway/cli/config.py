"""``dnc-gateway config check [FILE]``: validate a config and load its lists, without serving;
``dnc-gateway config reference``: every table and key of the config file (:mod:`gateway.configdoc`).

Every error is listed, not only the first (exit 2 when there is one): the config's own (each naming the
file, line, table and key), then each list that would not load. What would work but deserves a look is a
warning (exit 0): bad lines kept out of a list, a list already older than its ``max_age_days`` (its calls
would be ``registry_stale``), a list with a URL only (the poller fetches it when serving), no admin token.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import configdoc
from gateway.cli.exits import BAD_INPUT, DONE, UsageError
from gateway.cli.options import parse_at
from gateway.cli.runtime import normaliser_of
from gateway.config import DEMO_CONFIG, Config, ConfigError
from gateway.config import load as load_config
from gateway.demo.generate import demo_dir, ensure_demo_data
from gateway.registry.holder import RegistryHolder


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    c = sub.add_parser("check", help="validate a config file and load its lists, without serving",
                       description="List every error of a config file and its lists (exit 2), or say it is "
                                   "ready to serve (exit 0), with warnings.")
    c.add_argument("file", nargs="?", help="the config (default: --config, else the embedded demo)")
    c.add_argument("--at", help="judge list freshness at this ISO-8601 time with offset (default: now)")
    c.add_argument("--json", action="store_true", help="print the findings as JSON")
    r = sub.add_parser("reference", help="print every table and key of the config file, with its type, default "
                                         "and what it does (Markdown)",
                       description="The configuration reference, generated from the config's own definitions "
                                   "(docs/configuration.md holds it).")
    r.add_argument("--update", metavar="FILE",
                   help="rewrite the generated part of FILE (between its two marker lines) instead of printing")


def run(args: argparse.Namespace) -> int:
    if args.config_command == "reference":
        return _reference(args.update)
    at = parse_at(args.at) or datetime.now(UTC)
    path = args.file or args.config
    data_dir = Path(args.data_dir) if args.data_dir else None
    if path is None:  # the embedded demo, its data made on first use as for every other command
        data_dir = data_dir or demo_dir()
        ensure_demo_data(data_dir)
    source = Path(path) if path else DEMO_CONFIG
    errors: list[str] = []
    warnings: list[str] = []
    lists: dict[str, dict[str, Any]] = {}
    config: Config | None = None
    try:
        config = load_config(source, data_dir=data_dir)
    except ConfigError as e:
        errors.extend(e.errors)
    if config is not None:
        lists = _check_lists(config, at, errors, warnings)
    report = {"config": str(source), "ok": not errors, "errors": errors, "warnings": warnings, "lists": lists,
              "campaigns": sorted(config.campaigns) if config is not None else []}
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print(report)
    return DONE if not errors else BAD_INPUT


def _reference(update: str | None) -> int:
    text = configdoc.markdown()
    if update is None:
        print(text, end="")
        return DONE
    target = Path(update)
    try:
        target.write_text(configdoc.replace_generated(target.read_text(encoding="utf-8"), text), encoding="utf-8")
    except (OSError, ValueError) as e:
        raise UsageError(f"{update}: {e}") from None
    return DONE


def _check_lists(config: Config, at: datetime, errors: list[str], warnings: list[str]) -> dict[str, dict[str, Any]]:
    holder = RegistryHolder(config.lists, normaliser_of(config.gateway))
    # This command reports each list's problem itself (an error or a warning, below): the holder's own log
    # lines would say it a second time.
    quiet = logging.getLogger("gateway.registry")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        result = holder.load_all()
    finally:
        quiet.setLevel(level)
    for err in result.failed.values():
        errors.append(f"list {err}")
    today = at.astimezone(UTC).date()
    found: dict[str, dict[str, Any]] = {}
    for name, meta in result.loaded.items():
        found[name] = {"kind": str(meta.kind), "count": meta.count, "version": meta.version,
                       "as_of": meta.as_of.isoformat() if meta.as_of else None, "bad_lines": meta.bad_lines}
        report = result.reports[name]
        if report.bad_count:
            warnings.append(f"list {name}: {report.summary()}")
        limit = meta.max_age_days
        age = meta.age_days(today)
        if limit is not None and (age is None or age > limit):
            why = "has no as-of date" if age is None else f"is {age} days old"
            warnings.append(f"list {name} {why} (max_age_days {limit}): calls that consult it would be "
                            "registry_stale")
    for name, spec in config.lists.items():
        if spec.path is None:
            warnings.append(f"list {name}: fetched from {spec.url} when serving (not checked here)")
    if not config.web.admin_token:
        warnings.append("[web] no admin token: the admin routes (refusals, opt-outs, consents, reload, audit, "
                        "proof) refuse every call")
    return found


def _print(report: dict[str, Any]) -> None:
    for e in report["errors"]:
        print(f"error: {e}")
    for w in report["warnings"]:
        print(f"warning: {w}")
    lists = ", ".join(f"{n} ({i['count']})" for n, i in report["lists"].items()) or "none"
    verdict = "ready to serve" if report["ok"] else f"{len(report['errors'])} error(s)"
    print(f"{report['config']}: {verdict}; lists: {lists}; campaigns: {', '.join(report['campaigns']) or 'none'}")
