"""The gateway's HTTP side: Prometheus ``/metrics``, the JSON API, the live supervisor page and its SSE feed.

Read-only over everything else except the admin routes (refusals, opt-outs,
registry reload), which need the admin token.
"""
