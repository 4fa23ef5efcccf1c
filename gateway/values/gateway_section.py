"""``[gateway]``: the call centre's table, and the switches it holds. A leaf module: the config builds it, the
policy reads its switches (``policy.engine.Settings.of``) without importing the config."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from gateway.values.redis import REDIS_DEFAULTS


class StaleAction(enum.StrEnum):
    BLOCK = "block"  # a list older than its max_age_days blocks the calls that consult it
    WARN = "warn"  # ... or is only reported in the decision's warnings


class StateFailure(enum.StrEnum):
    CLOSED = "closed"  # shared call history unreachable: refuse the call (state_unavailable)
    OPEN = "open"  # ... or decide without the history


class LogLevel(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"



@dataclass(frozen=True, slots=True)
class GatewaySection:
    """``[gateway]``: the call centre, its call history, its audit trail and how national numbers are read."""

    # One line per key for the configuration reference (gateway/configdoc.py); a key missing here is
    # listed without one.
    KEY_DOCS: ClassVar[Mapping[str, str]] = {
        "home_country": ("ISO code of the call centre's country: how national numbers are read, and whose emergency "
                         "numbers are never blocked."),
        "professional": "The caller's name: frequency caps, refusals and opt-outs are counted per professional.",
        "state": ("Call history store: `memory://` (nothing kept), `sqlite:///ABS` or `sqlite://REL`, `redis://`, "
                  "`rediss://`, `redis+sentinel://`, `redis+cluster://`."),
        "audit": "SQLite file of the hash-chained audit trail; not set: no audit trail (an ALLOW is then not audited).",
        "timezone": "The call centre's zone: logs, times written without an offset, numbers with no known zone.",
        "outside_line": "Prefixes the PBX puts before external numbers (`[\"9\"]`), removed before a number is read.",
        "data_dir": "Where relative paths point; default: the config file's folder (`--data-dir` wins).",
        "stale_action": ("What a list older than its `max_age_days` does to the calls that consult it: block them, or "
                         "only warn."),
        "state_failure": ("What a call gets when the shared call history is unreachable: refused "
                          "(`state_unavailable`), or decided without history."),
        "state_connect_timeout": "Redis: seconds to open a connection.",
        "state_op_timeout": "Redis: seconds per round trip; a slower reply fails its call.",
        "state_retry_interval": "Redis: seconds calls fail fast once Redis is deemed down, before it is probed again.",
        "state_failures_to_open": "Redis: consecutive failed calls before calls fail fast.",
        "state_max_connections": "Redis: connection pool size.",
        "state_warm_connections": "Redis: connections opened at start, so that a burst pays no connects.",
        "alsace_moselle": "France: add Good Friday and 26 December to the public holidays (Alsace-Moselle).",
        "overseas_holidays": ("France: the overseas departments' abolition days as public holidays (unverified as "
                              "canvassing bans: on, the stricter reading)."),
        "unverified_state_rules": ("US states whose reported but unverified day bans apply anyway, e.g. `[\"LA\", "
                                   "\"RI\"]`."),
        "unverified_state_rules_off": ("US states whose reported but unverified rules are switched off (all apply "
                                       "by default, the stricter reading; `dnc-gateway law US` lists them)."),
        "log_level": "Log level of `serve` (`--log-level` wins).",
        "consent_proof_years": "Years a consent's proof is kept after the consent ends (revoked or expired).",
    }

    home_country: str = "FR"
    professional: str = "default"
    state: str = "memory://"
    audit: Path | None = None
    timezone: str = "Europe/Paris"
    outside_line: tuple[str, ...] = ()
    data_dir: Path = Path(".")
    stale_action: StaleAction = StaleAction.BLOCK
    state_failure: StateFailure = StateFailure.CLOSED  # what a call gets when the shared state is unreachable
    state_connect_timeout: float = REDIS_DEFAULTS.connect_timeout  # seconds to open a Redis connection
    state_op_timeout: float = REDIS_DEFAULTS.op_timeout  # seconds per Redis round trip; a slower one fails its call
    state_retry_interval: float = REDIS_DEFAULTS.retry_interval  # seconds calls fail fast once Redis is deemed down
    state_failures_to_open: int = REDIS_DEFAULTS.failures_to_open  # consecutive failed calls before failing fast
    state_max_connections: int = REDIS_DEFAULTS.max_connections  # Redis pool size
    state_warm_connections: int = REDIS_DEFAULTS.warm_connections  # opened at start, so a burst pays no connects
    alsace_moselle: bool = False  # add Good Friday and 26 Dec to mainland holidays
    # The overseas departments' abolition-of-slavery days as public holidays (loi 83-550, décret 83-1003);
    # RULES.md marks them unverified as canvassing bans: a setting, on by default (the stricter reading).
    overseas_holidays: bool = True
    # US states whose reported but unverified rules (day bans, Louisiana's 20:00) apply: all of them by default
    # now (the stricter reading); the key is kept so that older configs still load.
    unverified_state_rules: tuple[str, ...] = ()
    # US states whose reported but unverified rules are switched off (``dnc-gateway law US`` lists them).
    unverified_state_rules_off: tuple[str, ...] = ()
    log_level: LogLevel = LogLevel.INFO
    # Years a consent's proof (side store) is kept after the consent ends (revoked or expired): France's
    # (policy/france.py CONSENT_PROOF_YEARS, with its source), written out here because the config is below the
    # policy; tests/policy/test_france.py checks the two agree. The audit must keep decisions as long.
    consent_proof_years: int = 3
