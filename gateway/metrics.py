"""Prometheus metrics of one gateway process.

Every ``Metrics`` owns its own ``CollectorRegistry``: tests build many
gateways in one process, and a process-global registry would refuse the second
set of metric names. Label values are bounded and never personal: campaigns are
the configured names, following a reload (anything else is ``unknown``), reasons
and verdicts are enum codes, and free-form kinds from other modules are squeezed
into ``[a-z0-9_]`` or ``other``. A phone number never becomes a label.

List size, age and version are read at scrape time from the registry holder and
the gateway's clock, so a list that ages past its maximum shows it without any
reload or timer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.audit.record import Source
from gateway.policy.decision import Basis
from gateway.policy.packs import list_max_age

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.service import Gateway, Outcome

# From 10 µs (the decision's target) up to the AGI read timeout and beyond.
LATENCY_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
UNKNOWN = "unknown"
# Every audit source is a label value (bounded: an enum); following the enum, so that a source added there
# (dry_run, FastAGI's dryrun route) is not counted as "other".
SOURCES = frozenset(s.value for s in Source)
_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")
RECENT_ERROR_MINUTES = 60  # how far back the page can ask for FastAGI errors

# Names of every metric this module exports, as they appear in PromQL (the deploy/ dashboard is checked
# against this set by tests/test_metrics.py).
EXPORTED = frozenset({
    "dnc_decisions_total", "dnc_decision_seconds", "dnc_agi_session_seconds", "dnc_agi_sessions_in_flight",
    "dnc_agi_sessions_total", "dnc_agi_errors_total", "dnc_ami_connected", "dnc_bypasses_total",
    "dnc_attempts_confirmed_total", "dnc_audit_queue_depth", "dnc_audit_commit_seconds",
    "dnc_audit_records_total", "dnc_state_errors_total", "dnc_list_size", "dnc_list_age_days",
    "dnc_list_max_age_days", "dnc_list_loaded", "dnc_list_info", "dnc_gateway_info", "dnc_audit_up",
    "dnc_registry_polls_total", "dnc_state_up", "dnc_list_reload_failed",
    "dnc_list_last_reload_failure_timestamp_seconds", "dnc_list_held_back", "dnc_config_reload_failed",
    "dnc_web_connections_refused_total", "dnc_accept_errors_total", "dnc_state_lost_total",
    "dnc_audit_failures_total",
    # the SIP redirect server's (gateway/sip/metrics.py), present when [sip] is configured
    "dnc_sip_responses_total", "dnc_sip_answer_seconds", "dnc_sip_dropped_total", "dnc_sip_transactions",
    "dnc_sip_connections",
})


@runtime_checkable
class AuditStatus(Protocol):
    """An audit log that reports its state (``gateway.audit.AuditLog``): read at scrape time.

    Runtime-checkable because the gateway holds its audit log as an ``AuditSink`` (what the call path needs):
    whether that sink can also report is known only from the object, and checked once, at construction.
    """

    def stats(self) -> Mapping[str, Any]: ...


@runtime_checkable
class StateHealth(Protocol):
    """A call-history store that can be down: Redis, or the embedded store while it loads its history at start."""

    @property
    def healthy(self) -> bool: ...


def state_health(state: object) -> StateHealth | None:
    """The store's health flag, or None for a store that cannot fail on its own (a test double)."""
    return state if isinstance(state, StateHealth) else None


def _counts(counter: Counter) -> dict[str, int]:
    """A counter with one label as ``{label value: count}`` (its ``_total`` samples)."""
    return {next(iter(s.labels.values()), ""): int(s.value) for metric in counter.collect() for s in metric.samples
            if s.name.endswith("_total")}


def bounded_kind(kind: str) -> str:
    """A label value from a code-like string; anything else (a number, free text) becomes ``other``."""
    k = kind.strip().lower()
    return k if _KIND.fullmatch(k) else "other"


class _AuditFailures(Collector):
    """``dnc_audit_failures_total``: the audit log's failed commits, read from its own count at scrape time (the
    writer thread counts them; a second counter here could only drift from it)."""

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily("dnc_audit_failures", "Audit commits that failed (disk full, I/O error), since "
                                  "start", value=float(self.stats().get("failures", 0)))


class _ListCollector(Collector):
    """Per-list gauges computed from the current registries at scrape time."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.tz = ZoneInfo(gateway.config.gateway.timezone)
        self.health = state_health(gateway.state)

    def collect(self) -> Iterable[Metric]:
        holder = self.gateway.holder
        regs = holder.current
        # The engine counts age in whole days from the as-of date: the same figure here, so that a
        # Grafana threshold at max_age_days fires exactly when calls start being blocked as stale.
        today = self.gateway.clock().astimezone(self.tz).date()
        size = GaugeMetricFamily("dnc_list_size", "Numbers (or prefix ranges) in the list in service",
                                 labels=["list", "kind"])
        age = GaugeMetricFamily("dnc_list_age_days", "Days since the list's as-of date", labels=["list"])
        max_age = GaugeMetricFamily("dnc_list_max_age_days", "Configured maximum age of the list",
                                    labels=["list"])
        loaded = GaugeMetricFamily("dnc_list_loaded", "1 when a version of the list is in service",
                                   labels=["list", "kind"])
        info = InfoMetricFamily("dnc_list", "Version of the list in service (as-of date and digest)",
                                labels=["list"])
        # A failed reload (file, SIGHUP, API or URL poll) keeps the previous version in service: dnc_list_loaded
        # stays 1, so the failure needs its own gauge, or it is invisible until the list goes stale.
        failed = GaugeMetricFamily("dnc_list_reload_failed", "1 while the list's last reload or URL poll failed "
                                   "(the previous version, if any, stays in service)", labels=["list"])
        failed_at = GaugeMetricFamily("dnc_list_last_reload_failure_timestamp_seconds",
                                      "When the list's last failed reload or poll happened (UNIX time)",
                                      labels=["list"])
        held = GaugeMetricFamily("dnc_list_held_back", "1 while a new version of the list is refused for dropping "
                                 "more than max_shrink of its numbers (until `registry accept`)", labels=["list"])
        for name, spec in holder.specs.items():
            lst = regs.get(name)
            kind = str(spec.kind)
            loaded.add_metric([name, kind], 0.0 if lst is None else 1.0)
            held.add_metric([name], 1.0 if name in holder.held else 0.0)
            failed.add_metric([name], 1.0 if name in holder.failures else 0.0)
            if name in holder.last_failure_at:
                failed_at.add_metric([name], holder.last_failure_at[name])
            limit, _ = list_max_age(spec.kind, spec.country, spec.max_age_days)  # the law's default included
            if limit is not None:
                max_age.add_metric([name], float(limit))
            if lst is None:
                continue
            size.add_metric([name, kind], float(lst.meta.count))
            days = lst.meta.age_days(today)
            if days is not None:
                age.add_metric([name], float(days))
            info.add_metric([name], {"kind": kind, "version": lst.meta.version})
        state = GaugeMetricFamily("dnc_state_up", "1 while the call-history store answers (Redis up)")
        state.add_metric([], 0.0 if self.health is not None and not self.health.healthy else 1.0)
        return [size, age, max_age, loaded, info, failed, failed_at, held, state]


class _StateLostCollector:
    """``dnc_state_lost_total``: times the state store was found lost or replaced (gateway.state.marker)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("dnc_state_lost", "Times the call-history store was found empty or replaced "
                                     "(calls blocked until `dnc-gateway state rebuild`)")
        family.add_metric([], float(getattr(self.gateway.state, "lost_count", 0)))
        yield family


class Metrics:
    """The gateway's observer for metrics, plus hooks the AGI server, AMI watcher and audit log call."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.registry = CollectorRegistry(auto_describe=True)
        self._campaigns = frozenset(gateway.config.campaigns)
        r = self.registry
        self.decisions = Counter(
            "dnc_decisions", "Decisions by campaign, verdict and reason (would_block: blocked in monitor mode)",
            ["campaign", "verdict", "reason", "would_block", "source"], registry=r)
        # Labelled by campaign only (never a number): calls let through on a consent with no collection date.
        self.undated_consent = Counter(
            "dnc_undated_consent_allowed", "Calls allowed on an undated consent (undated_consent = allow)",
            ["campaign"], registry=r)
        # Likewise, calls exempt on a customers or inquiries row with no date (undated_relationship = allow).
        self.undated_relationship = Counter(
            "dnc_undated_relationship_allowed", "Calls exempt on an undated business relationship "
            "(undated_relationship = allow)", ["campaign"], registry=r)
        self.decision_seconds = Histogram(
            "dnc_decision_seconds", "Time to decide one call, normalisation to audit append",
            buckets=LATENCY_BUCKETS, registry=r)
        self.agi_seconds = Histogram(
            "dnc_agi_session_seconds", "Whole FastAGI session, first byte to close", buckets=LATENCY_BUCKETS,
            registry=r)
        self.agi_in_flight = Gauge("dnc_agi_sessions_in_flight", "FastAGI sessions open now", registry=r)
        self.agi_sessions = Counter("dnc_agi_sessions", "FastAGI sessions finished", ["result"], registry=r)
        self.agi_errors = Counter("dnc_agi_errors", "FastAGI errors by kind", ["kind"], registry=r)
        self.ami_up = Gauge("dnc_ami_connected", "1 while the AMI connection is up and answering pings",
                            registry=r)
        self.bypasses = Counter("dnc_bypasses", "Calls that reached a trunk without a decision", ["campaign"],
                                registry=r)
        self.confirmed = Counter("dnc_attempts_confirmed", "Allowed calls confirmed dialled by AMI", registry=r)
        self.audit_queue = Gauge("dnc_audit_queue_depth", "Audit records waiting for a commit", registry=r)
        self.audit_commit_seconds = Histogram("dnc_audit_commit_seconds", "Duration of one audit group commit",
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.audit_records = Counter("dnc_audit_records", "Audit records committed", registry=r)
        self.state_errors = Counter("dnc_state_errors", "Call-history store errors by kind", ["kind"], registry=r)
        self.config_reload_failed = Gauge(
            "dnc_config_reload_failed", "1 while the last reload of the config file was refused (the running "
            "config stays)", registry=r)
        self.web_refused = Counter("dnc_web_connections_refused", "Web connections closed at once: over [web] "
                                   "max_connections or into the file descriptors kept for FastAGI", registry=r)
        self.accept_errors = Counter("dnc_accept_errors", "Failed accept() calls (EMFILE: out of file "
                                     "descriptors) by listener", ["listener"], registry=r)
        self.registry_polls = Counter("dnc_registry_polls", "URL polls of a list by outcome (updated, unchanged, "
                                      "failed)", ["list", "outcome"], registry=r)
        self._lists = frozenset(gateway.config.lists)
        self._agi_error_minutes: dict[int, int] = {}
        info = Gauge("dnc_gateway_info", "This gateway's version and instance name", ["version", "gateway"],
                     registry=r)
        info.labels(__version__, gateway.instance or "default").set(1)
        r.register(_ListCollector(gateway))
        r.register(_StateLostCollector(gateway))
        self.audit_up: Gauge | None = None
        self._audit_live = False
        audit = gateway.audit
        if isinstance(audit, AuditStatus):
            stats = audit.stats
            # Read the queue at scrape time: a writer stuck on a full disk commits nothing, so a depth set
            # only after commits would freeze at its last (low) value exactly when it matters.
            self._audit_live = True
            self.audit_queue.set_function(lambda: float(stats().get("queue_depth", 0)))
            self.audit_up = Gauge("dnc_audit_up", "1 while the audit log accepts records (absent without one)",
                                  registry=r)
            self.audit_up.set_function(lambda: 1.0 if stats().get("available") else 0.0)
            r.register(_AuditFailures(stats))

    def reconfigure(self, config: Config) -> None:
        """Follow a reload (SIGHUP): label values are the campaign and list names configured *now*.

        A campaign added by the reload is counted under its name from the next call; a removed one is
        ``unknown`` from then on. Its series already exported stay until a restart: a counter that
        vanished would lose its increments since the last scrape, and the names come only from the
        operator's configs, never from what a dialplan sends, so the label set stays bounded.
        """
        self._campaigns = frozenset(config.campaigns)
        self._lists = frozenset(config.lists)

    # -- the observer ------------------------------------------------------------------------------

    def campaign_label(self, campaign: str) -> str:
        return campaign if campaign in self._campaigns else UNKNOWN

    def decided(self, outcome: Outcome, seconds: float) -> None:
        d = outcome.decision
        source = outcome.record.source if outcome.record.source in SOURCES else "other"
        self.decisions.labels(self.campaign_label(d.campaign), str(d.verdict),
                              str(d.reason) if d.reason is not None else "none",
                              "true" if d.would_block else "false", source).inc()
        if d.basis is Basis.CONSENT_UNDATED and not d.would_block:
            self.undated_consent.labels(self.campaign_label(d.campaign)).inc()
        elif d.basis is Basis.RELATIONSHIP_UNDATED and not d.would_block:
            self.undated_relationship.labels(self.campaign_label(d.campaign)).inc()
        self.decision_seconds.observe(seconds)

    # -- hooks for the other parts -----------------------------------------------------------------

    def agi_session_started(self) -> None:
        self.agi_in_flight.inc()

    def agi_session_finished(self, seconds: float, ok: bool) -> None:
        self.agi_in_flight.dec()
        self.agi_sessions.labels("ok" if ok else "error").inc()
        self.agi_seconds.observe(seconds)

    def agi_error(self, kind: str) -> None:
        self.agi_errors.labels(bounded_kind(kind)).inc()
        # Per minute of the gateway's clock, for the page's "in the last ten minutes" (the counter has only totals).
        minute = int(self.gateway.clock().timestamp() // 60)
        self._agi_error_minutes[minute] = self._agi_error_minutes.get(minute, 0) + 1
        for old in [m for m in self._agi_error_minutes if m <= minute - RECENT_ERROR_MINUTES]:
            del self._agi_error_minutes[old]

    def agi_report(self, minutes: int) -> dict[str, Any]:
        """FastAGI for the live page: errors by kind since start, in the last ``minutes``, sessions by result."""
        errors = _counts(self.agi_errors)
        now = int(self.gateway.clock().timestamp() // 60)
        recent = sum(n for m, n in self._agi_error_minutes.items() if m > now - minutes)
        return {"errors": errors, "total": sum(errors.values()), "recent": recent,
                "sessions": _counts(self.agi_sessions)}

    def state_error_counts(self) -> dict[str, int]:
        return _counts(self.state_errors)

    def ami_connected(self, up: bool) -> None:
        self.ami_up.set(1 if up else 0)

    def bypass(self, campaign: str) -> None:
        self.bypasses.labels(self.campaign_label(campaign)).inc()

    def attempt_confirmed(self) -> None:
        self.confirmed.inc()

    def audit_commit(self, seconds: float, records: int, queue_depth: int) -> None:
        self.audit_commit_seconds.observe(seconds)
        self.audit_records.inc(records)
        if not self._audit_live:
            self.audit_queue.set(queue_depth)

    def state_error(self, kind: str) -> None:
        self.state_errors.labels(bounded_kind(kind)).inc()

    def registry_poll(self, name: str, outcome: str) -> None:
        self.registry_polls.labels(name if name in self._lists else UNKNOWN, bounded_kind(outcome)).inc()

    # -- exposition --------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
