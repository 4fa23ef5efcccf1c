"""``dnc-gateway config check [FILE]``: validate a config and load its lists, without serving;
``dnc-gateway config reference``: every table and key of the config file (:mod:`gateway.configdoc`).

Every error is listed, not only the first (exit 2 when there is one): the config's own (each naming the
file, line, table and key), then each list that would not load. What would work but deserves a look is a
warning (exit 0): bad lines kept out of a list, a list already older than its ``max_age_days`` (its calls
would be ``registry_stale``), a list with a URL only (the poller fetches it when serving), no admin token, no
audit trail or a call history in memory only (it would serve, keeping no proof or forgetting at every restart).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyroaring import FrozenBitMap64

from gateway import configdoc
from gateway.cli.exits import BAD_INPUT, DONE, UsageError
from gateway.cli.options import parse_at
from gateway.cli.runtime import load_quietly, normaliser_of
from gateway.config import DEMO_CONFIG, Config, ConfigError, GatewaySection
from gateway.config import load as load_config
from gateway.demo.generate import demo_dir, ensure_demo_data
from gateway.policy.packs import PACKS, list_max_age
from gateway.redact import redact_text
from gateway.registry.holder import RegistryHolder
from gateway.registry.model import ListKind

_NANP_LO, _NANP_HI = 10**10, 2 * 10**10  # the keys of +1 numbers (E.164 digits: 1 and ten more)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    c = sub.add_parser("check", help="validate a config file and load its lists, without serving",
                       description="List every error of a config file and its lists (exit 2), or say it is "
                                   "ready to serve (exit 0), with warnings.")
    c.add_argument("file", nargs="?", help="the config (default: --config, else the embedded demo)")
    c.add_argument("--at", help="judge list freshness at this time (default: now): ISO-8601 with an offset, a date "
                                "or a local time in the config's timezone, or UNIX seconds")
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
    tz = config.gateway.timezone if config is not None else GatewaySection().timezone
    at = parse_at(args.at, tz) or datetime.now(UTC)
    if config is not None:
        lists = _check_lists(config, at, errors, warnings)
    errors = [redact_text(e) for e in errors]  # a list URL quoted in a message keeps its secrets to itself
    warnings = [redact_text(w) for w in warnings]
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
    result = load_quietly(holder)
    for err in result.failed.values():
        errors.append(f"list {err}")
    today = at.astimezone(UTC).date()
    found: dict[str, dict[str, Any]] = {}
    ages = legal_ages(config, errors)
    for name, meta in result.loaded.items():
        found[name] = {"kind": str(meta.kind), "count": meta.count, "version": meta.version,
                       "as_of": meta.as_of.isoformat() if meta.as_of else None, "bad_lines": meta.bad_lines}
        report = result.reports[name]
        if report.bad_count:
            warnings.append(f"list {name}: {report.summary()}")
        limit = meta.max_age_days
        if name in ages:
            limit = ages[name]["max_age_days"]
            found[name]["max_age_days"] = limit
            found[name]["legal_max_age"] = ages[name]
        age = meta.age_days(today)
        if limit is not None and (age is None or age > limit):
            why = "has no as-of date" if age is None else f"is {age} days old"
            law = f"the law's {limit} days: {ages[name]['source']}" if name in ages and ages[name]["applies"] \
                else f"max_age_days {limit}"
            warnings.append(f"list {name} {why} ({law}): calls that consult it would be registry_stale")
        if meta.kind in (ListKind.CUSTOMERS, ListKind.INQUIRIES) and _has_nanp(holder, name):
            dated = report.relationships
            undated = meta.count if dated is None else dated.undated
            if undated:
                what = "has no dates" if dated is None else \
                    f"has {undated} number{'s' if undated > 1 else ''} without a date"
                fix = "; give it dates: format = \"relationship-csv\" (number,date,source) or registry entries " \
                      "add --date" if dated is None else ""
                warnings.append(f"list {name} ({meta.kind}) {what}: the US and Canadian relationship windows "
                                "(18 months after a purchase, 3 or 6 after an inquiry) cannot be applied; the "
                                f"campaigns' undated_relationship decides (default allow, with a warning){fix}")
    for name, spec in config.lists.items():
        if spec.path is None:
            warnings.append(f"list {name}: fetched from {spec.url} when serving (not checked here)")
    warnings.extend(evidence_warnings(config))
    if config.gateway.unverified_state_rules:
        warnings.append("[gateway] unverified_state_rules: every reported state rule now applies by default (the "
                        "stricter reading); the key changes nothing: switch a state's off with "
                        "unverified_state_rules_off (dnc-gateway law US lists them)")
    unknown = sorted(set(config.gateway.unverified_state_rules_off) - {
        code for pack in PACKS.values() for code, rule in pack.local_rules.items() if not rule.verified})
    if unknown:
        errors.append(f"[gateway] unverified_state_rules_off: {', '.join(unknown)} has no reported rule to switch "
                      "off (dnc-gateway law US lists them)")
    if not config.web.admin_token:
        warnings.append("[web] no admin token: the admin routes (refusals, opt-outs, consents, reload, audit, "
                        "proof) refuse every call")
    return found


def _has_nanp(holder: RegistryHolder, name: str) -> bool:
    """Whether a list holds +1 numbers, the only ones a relationship window (US, Canada) applies to: a French
    customers list needs no dates (an existing contract exempts while it runs)."""
    lst = holder.current.get(name)
    members = lst.members if lst is not None else None
    return isinstance(members, FrozenBitMap64) and members.range_cardinality(_NANP_LO, _NANP_HI) > 0


def legal_ages(config: Config, errors: list[str]) -> dict[str, dict[str, Any]]:
    """The age each national list may reach (``[lists.X] country`` with a pack that sets one): the law's unless a
    shorter ``max_age_days`` is set; a longer one is an error naming the law (the engine never applies it)."""
    found: dict[str, dict[str, Any]] = {}
    for name, spec in config.lists.items():
        pack = PACKS.get(spec.country or "")
        if pack is None or pack.list_max_age is None or spec.kind is not ListKind.OPPOSITION:
            continue
        legal = pack.list_max_age
        if spec.max_age_days is not None and spec.max_age_days > legal.days:
            errors.append(f"[lists.{name}] max_age_days = {spec.max_age_days} is longer than the law allows for a "
                          f"{spec.country} national list: at most {legal.days} days ({legal.cite.text})")
        limit, applied = list_max_age(spec.kind, spec.country, spec.max_age_days)
        found[name] = {"max_age_days": limit, "legal_days": legal.days, "applies": applied is not None,
                       "source": legal.cite.text, "verified": legal.cite.verified}
    return found
def evidence_warnings(config: Config) -> list[str]:
    """What would serve but keep no proof: no audit trail, a call history in memory only."""
    out = []
    g = config.gateway
    if g.audit is None:
        out.append("[gateway] audit is not set: no decision is kept as proof (no dossier, no audit verify), and "
                   "attempts lost at a crash cannot be recovered from it")
    elif not config.audit.durable_allow:
        out.append("[audit] durable_allow = false: an ALLOW is answered before its record is on disk (a crash "
                   "loses the last ones)")
    if g.state.startswith("memory://"):
        out.append("[gateway] state = \"memory://\": the call history (caps, cooldowns, refusals, opt-outs) is "
                   "lost at every restart")
    return out


def _print(report: dict[str, Any]) -> None:
    for e in report["errors"]:
        print(f"error: {e}")
    for w in report["warnings"]:
        print(f"warning: {w}")
    for name, info in report["lists"].items():
        legal = info.get("legal_max_age")
        if legal is not None:
            whose = "the law's maximum" if legal["applies"] else \
                f"max_age_days, shorter than the law's {legal['legal_days']}"
            print(f"list {name}: at most {legal['max_age_days']} days old ({whose}: {legal['source']})")
    lists = ", ".join(f"{n} ({i['count']})" for n, i in report["lists"].items()) or "none"
    verdict = "ready to serve" if report["ok"] else f"{len(report['errors'])} error(s)"
    print(f"{report['config']}: {verdict}; lists: {lists}; campaigns: {', '.join(report['campaigns']) or 'none'}")
