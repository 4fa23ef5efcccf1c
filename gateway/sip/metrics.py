"""The SIP redirect server's Prometheus metrics, on the gateway's registry (no number in any label: methods
and status codes are bounded sets, drop kinds are codes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.metrics import LATENCY_BUCKETS, bounded_kind
from gateway.sip.redirect import Send

METHODS: Final = frozenset({"INVITE", "ACK", "CANCEL", "OPTIONS"})
EXPORTED: Final = frozenset({"dnc_sip_responses_total", "dnc_sip_answer_seconds", "dnc_sip_dropped_total",
                             "dnc_sip_transactions", "dnc_sip_connections"})


class SipMetrics:
    def __init__(self, registry: CollectorRegistry, transactions: Callable[[], int],
                 connections: Callable[[], int]) -> None:
        self.responses = Counter("dnc_sip_responses", "SIP responses sent, by request method and status "
                                 "(retransmission: a copy of an earlier answer)",
                                 ["method", "status", "retransmission"], registry=registry)
        self.answer_seconds = Histogram("dnc_sip_answer_seconds", "INVITE received to its final answer sent",
                                        buckets=LATENCY_BUCKETS, registry=registry)
        self.dropped_total = Counter("dnc_sip_dropped", "SIP messages or connections dropped unanswered, by kind",
                                     ["kind"], registry=registry)
        self._children: dict[tuple[str, int, bool], Counter] = {}
        Gauge("dnc_sip_transactions", "SIP server transactions remembered (retransmissions get their answer)",
              registry=registry).set_function(lambda: float(transactions()))
        Gauge("dnc_sip_connections", "SIP TCP connections open", registry=registry).set_function(
            lambda: float(connections()))

    def sent(self, e: Send) -> None:
        key = (e.method, e.status, e.retransmission)
        child = self._children.get(key)
        if child is None:  # a handful of combinations: looked up once each (labels() costs microseconds)
            method = e.method if e.method in METHODS else "other"
            child = self.responses.labels(method, str(e.status) if 100 <= e.status < 700 else "other",
                                          "true" if e.retransmission else "false")
            if len(self._children) < 256:
                self._children[key] = child
        child.inc()
        if e.elapsed is not None:
            self.answer_seconds.observe(e.elapsed)

    def dropped(self, kind: str) -> None:
        self.dropped_total.labels(bounded_kind(kind)).inc()
