"""JSON API handlers (DESIGN §7): check, refusals, opt-outs, registry reload, audit query, health, summary.

``/api/check`` is a dry run: it decides exactly as a call would be decided
(same ``Gateway.check``) but counts no attempt and writes no audit record,
because no call is placed; it shows in ``/metrics`` with ``source="api"`` and
not on the supervisor page. Refusals, opt-outs, reloads and the audit trail are
admin routes (bearer token).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import date
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.audit import AuditError
from gateway.metrics import AuditStatus, state_health
from gateway.numbers import mask
from gateway.proof import html as proof_html
from gateway.proof.gather import Request, dossier
from gateway.registry.sidestore import EntryOrigin
from gateway.service import ProofUnavailable
from gateway.state.model import StateUnavailable
from gateway.web import params
from gateway.web.auth import Access, authorize, refusal_message
from gateway.web.durability import audit_status, evidence_ok, state_status
from gateway.web.reloads import ConfigFailure, Reloader
from gateway.web.status import AmiStatus, ami_status, lists_status, mask_text

if TYPE_CHECKING:
    from gateway.ami.events import BypassRecord  # a type only: the web and the AMI watcher are independent
    from gateway.service import Gateway
    from gateway.web.live import LiveHub

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024
BODY_TIMEOUT = 10.0  # seconds a request body may take to arrive
# The dossier page is self-contained: its inline style, nothing else (no script, no fetch, no image).
PROOF_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'")
UNKNOWN = "unknown"


class Health(enum.StrEnum):
    """``/healthz``'s ``status``."""

    OK = "ok"
    DEGRADED = "degraded"  # serving, but a list's last reload failed: its previous version is in service
    DOWN = "down"  # a configured list has no version in service (HTTP 503)


class AuditView(AuditStatus, Protocol):
    """What the API reads of the audit log (``gateway.audit.AuditLog``): its state and its records."""

    async def query_async(self, number: str | None = None, campaign: str | None = None, since: float | None = None,
                          until: float | None = None, limit: int = 1000,
                          newest_first: bool = False) -> list[dict[str, Any]]: ...


class BypassSource(Protocol):
    """The AMI watcher's latest bypasses, oldest first (``gateway.ami.watcher.AmiWatcher``)."""

    @property
    def recent_bypasses(self) -> Sequence[BypassRecord]: ...


class AmiView(AmiStatus, BypassSource, Protocol):
    """What the page and ``/healthz`` read of the AMI watcher."""


class Parts(Protocol):
    """The running gateway's parts the API reads (``gateway.app.Running``).

    Read on each request rather than once: ``serve`` starts the AMI watcher after the web server.
    """

    @property
    def audit(self) -> AuditView | None: ...

    @property
    def ami(self) -> AmiView | None: ...


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def admin(handler: Handler) -> Handler:
    """Wrap a handler so that it runs only with the admin token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        api: Api = request.app[API_KEY]
        access = authorize(request.headers.get("Authorization"), api.token)
        if access is not Access.GRANTED:
            status, message = refusal_message(access)
            headers = {"WWW-Authenticate": 'Bearer realm="dnc-gateway"'} if status == 401 else None
            return web.json_response({"error": message}, status=status, headers=headers)
        return await handler(request)

    guarded.__name__ = handler.__name__
    return guarded


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise params.BadRequest(f"body too large ({request.content_length} bytes, at most {MAX_BODY})")
    try:
        async with asyncio.timeout(BODY_TIMEOUT):  # a client that sends half a body is not waited for forever
            return await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="body not received in time") from None


class Api:
    def __init__(self, gateway: Gateway, token: str, running: Parts | None, hub: LiveHub) -> None:
        self.gateway = gateway
        self.token = token
        self.running = running
        self.hub = hub
        self.tz = ZoneInfo(gateway.config.gateway.timezone)
        self.health = state_health(gateway.state)
        self.config_failure: ConfigFailure | None = None  # set by the running gateway's reload
        self.reloader: Reloader | None = None  # the running gateway's whole reload (config and lists)

    @property
    def audit(self) -> AuditView | None:
        return self.running.audit if self.running is not None else None

    @property
    def ami(self) -> AmiView | None:
        return self.running.ami if self.running is not None else None

    # -- public -----------------------------------------------------------------------------------

    async def check(self, request: web.Request) -> web.Response:
        q = params.check_query(request.query)
        outcome = await self.gateway.check(q.number, q.campaign, q.caller_id, source="api", record=False, now=q.at)
        return web.json_response(outcome.decision.as_json())

    async def healthz(self, request: web.Request) -> web.Response:
        """``ok`` only when every list serves and its last reload worked; the HTTP status is for load balancers.

        A failed reload leaves the previous version serving: the gateway answers calls as before, so it stays in
        rotation (200, ``"status": "degraded"``, what failed in ``lists.reload_failed``). 503 stays what it was,
        a configured list with no version in service, whose calls can only be blocked as registry_stale.
        """
        lists = self.lists()
        serving = all(entry["loaded"] for entry in lists)
        reload_failed = {e["name"]: e["reload_failed"] for e in lists if e["reload_failed"] is not None}
        health = Health.DOWN if not serving else Health.DEGRADED if reload_failed else Health.OK
        body: dict[str, Any] = {
            "ok": health is Health.OK,
            "status": str(health),
            "lists": {"loaded": [e["name"] for e in lists if e["loaded"]],
                      "failed": {e["name"]: e["error"] or "not loaded" for e in lists
                                 if e["error"] or not e["loaded"]},
                      "reload_failed": reload_failed},
            "ami": ami_status(self.ami)["state"],
            "audit": "off" if self.audit is None else "on",
            "state": "unavailable" if self.health is not None and not self.health.healthy else "ok",
        }
        # Versions held back by the shrink guard, and a refused config: both leave the old one serving.
        held = {name: refused.as_json() for name, (_lst, refused) in self.gateway.holder.held.items()}
        if held:
            body["lists_held_back"] = held
        if self.config_failure is not None:
            body["config_reload_failed"] = self.config_failure.as_json()
            if health is Health.OK:
                health = Health.DEGRADED
                body["ok"], body["status"] = False, str(health)
        # The evidence (gateway/web/durability.py): an audit that cannot keep records, a lost history: 503.
        audit = self.audit
        body.update(audit_status(audit.stats() if audit is not None else None))
        body.update(state_status(str(getattr(self.gateway.state, "lost", "") or "")))
        if not evidence_ok(body):
            body["ok"], body["status"] = False, str(Health.DOWN)
            health = Health.DOWN
        return web.json_response(body, status=503 if health is Health.DOWN else 200)

    async def summary(self, request: web.Request) -> web.Response:
        return web.json_response(self.hub.summary(), dumps=_dumps)

    # -- admin ------------------------------------------------------------------------------------

    async def refusal(self, request: web.Request) -> web.Response:
        return await self._record(request, "refusal")

    async def optout(self, request: web.Request) -> web.Response:
        return await self._record(request, "optout")

    async def _record(self, request: web.Request, what: str) -> web.Response:
        body = params.number_body(await read_body(request))
        parsed = self.gateway.normaliser.parse(body.number)
        if not parsed.key:
            raise params.BadRequest(f"number {body.number!r} is not a callable number "
                                    "(invalid, short or emergency): nothing to record", "number")
        if what == "refusal" and body.at is not None and body.at < (horizon := self.gateway.refusal_horizon()):
            # The state store would prune it at once: never acknowledge what is then dropped.
            raise params.BadRequest(f"a refusal of {body.at.isoformat()} is older than the call history keeps "
                                    f"refusals (from {horizon.isoformat(timespec='seconds')}, as long as the "
                                    "jurisdiction packs honour them): not recorded", "at")
        try:
            if what == "refusal":
                number = await self.gateway.refusal(body.number, now=body.at, origin=EntryOrigin.API)
            else:
                number = await self.gateway.optout(body.number, now=body.at, origin=EntryOrigin.API)
        except StateUnavailable as e:
            return error(503, f"call-history store unavailable, {what} not recorded: {e}")
        log.info("api: %s recorded for %s", what, number.masked)
        return web.json_response({"ok": True, "recorded": what, "number": number.e164}, status=201)

    async def consent(self, request: web.Request) -> web.Response:
        """``POST /api/consents``: a consent with its proof, in force at once on every gateway sharing the state."""
        body = params.consent_body(await read_body(request))
        parsed = self.gateway.normaliser.parse(body.number)
        if not parsed.key:
            raise params.BadRequest(f"number {body.number!r} is not a callable number "
                                    "(invalid, short or emergency): nothing to record", "number")
        if (future := self.gateway.future_collection(body.at)) is not None:
            raise params.BadRequest(f"{future}: nothing recorded", "at")
        try:
            number = await self.gateway.consent(body.number, source=body.source, evidence=body.evidence,
                                                wording_version=body.wording_version, channel=body.channel,
                                                origin=EntryOrigin.API, collected=body.at)
        except StateUnavailable as e:
            return error(503, f"call-history store unavailable, consent not in force (its proof is recorded): {e}")
        except ProofUnavailable as e:
            return error(503, f"consent not recorded: {e}")
        log.info("api: consent recorded for %s", number.masked)
        return web.json_response({"ok": True, "recorded": "consent", "number": number.e164}, status=201)

    async def reload(self, request: web.Request) -> web.Response:
        names = params.reload_body(await read_body(request), frozenset(self.gateway.holder.specs))
        result = await self.gateway.holder.reload(names)
        log.info("api: reload: %d lists loaded, %d failed", len(result.loaded), len(result.failed))
        return web.json_response(result.as_json())

    async def reload_all(self, request: web.Request) -> web.Response:
        """``POST /api/reload``: what SIGHUP does (config, then lists), answered once done; 409 when refused."""
        await read_body(request)
        if self.reloader is None:
            return error(503, "reload is not available in this server (not a running gateway)")
        report = await self.reloader()
        return web.json_response(report.as_json(), status=200 if report.ok else 409)

    async def accept(self, request: web.Request) -> web.Response:
        """``POST /api/registry/accept`` ``{"list": NAME}``: put the version the shrink guard held back in service."""
        holder = self.gateway.holder
        name = params.accept_body(await read_body(request), frozenset(holder.specs))
        async with holder._lock:
            if name not in holder.held:
                return error(409, f"{name}: no version held back (nothing to accept)")
            meta = holder.accept(name)
        return web.json_response({"ok": True, "list": name, "version": meta.version, "count": meta.count})

    async def audit_query(self, request: web.Request) -> web.Response:
        q = params.audit_query(request.query)
        audit = self.audit
        if audit is None:
            return error(503, "no audit log configured: set [gateway] audit in the config")
        number = None
        if q.number is not None:
            parsed = self.gateway.normaliser.parse(q.number)
            number = parsed.e164 or parsed.short or q.number  # the form the audit stores
        records = await audit.query_async(number=number, campaign=q.campaign,
                                          since=q.since.timestamp() if q.since else None,
                                          until=q.until.timestamp() if q.until else None, limit=q.limit)
        return web.json_response({"count": len(records), "truncated": len(records) >= q.limit,
                                  "records": records}, dumps=_dumps)

    async def proof(self, request: web.Request) -> web.Response:
        """The proof dossier of one number (``dnc-gateway proof``): JSON, or the HTML page to read and print."""
        q = params.proof_query(request.query)
        parsed = self.gateway.normaliser.parse(q.number)
        if not parsed.key:
            raise params.BadRequest(f"number {q.number!r} is not a callable number (invalid, short or emergency)",
                                    "number")
        try:
            found = await dossier(self.gateway, Request(parsed, q.since, q.until), self.gateway.clock())
        except StateUnavailable as e:
            return error(503, f"call-history store unavailable: {e}")
        except AuditError as e:
            return error(503, f"audit trail unreadable: {e}")
        log.info("api: proof dossier of %s (%d decisions)", parsed.masked, len(found.decisions))
        if q.format == "html":
            return web.Response(text=proof_html.render(found), content_type="text/html", headers={
                "Content-Security-Policy": PROOF_CSP, "Content-Disposition":
                f'inline; filename="proof-{parsed.e164.lstrip("+")}.html"'})
        return web.json_response(found.as_json(), dumps=_dumps)

    # -- shared -------------------------------------------------------------------------------------

    def today(self) -> date:
        return self.gateway.clock().astimezone(self.tz).date()

    def lists(self) -> list[dict[str, Any]]:
        h = self.gateway.holder
        return lists_status(h.specs, h.current, h.failures, self.today())

    def live_status(self) -> dict[str, Any]:
        """The slowly changing part of the page: lists, AMI, bypasses, audit (no numbers unmasked)."""
        audit = self.audit
        audit_stats: dict[str, Any] | None = None
        if audit is not None:
            audit_stats = plain_stats(audit.stats())
        return {
            "instance": self.gateway.instance or "",
            "lists": self.lists(),
            "ami": ami_status(self.ami),
            "bypasses": bypasses(self.ami, self.gateway.config.campaigns),
            "audit": audit_stats,
            # The page's banner: a refused config, lists whose new version is held back (shrink guard).
            "config_reload_failed": self.config_failure.as_json() if self.config_failure is not None else None,
            "lists_held_back": {n: r.as_json() for n, (_l, r) in self.gateway.holder.held.items()},
        }


# A number in a channel name follows "/" (Local/0612345678@ctx); the hex-like sequence after "-" is not one.
_DIGITS = re.compile(r"(?<![-\w])\+?\d{5,}")


def mask_digits(text: str) -> str:
    """Mask every long digit run (a Local/0612345678@ctx channel name carries the number)."""
    return _DIGITS.sub(lambda m: mask(m.group(0)), text)


def plain_stats(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The audit log's report reduced to plain values, with no number (an error message may quote one)."""
    return {str(k): mask_text(v) if isinstance(v, str) else v for k, v in raw.items()
            if isinstance(v, int | float | bool | str) and "number" not in str(k)}


def bypasses(ami: BypassSource | None, campaigns: Collection[str], limit: int = 20) -> list[dict[str, Any]]:
    """The watcher's latest bypasses, newest first, as the page shows them.

    Campaigns are those configured now (else ``unknown``), like everywhere on the page. The watcher masks
    numbers and channel names already; they are masked again here, as the last step before a browser.
    """
    if ami is None:
        return []
    return [{
        "at": b.at,
        "campaign": b.campaign if b.campaign in campaigns else UNKNOWN,
        "channel": mask_digits(b.channel),
        "number": mask(b.number) if b.number else "",
        "kind": str(b.kind),
        "hangup": b.hangup,
    } for b in islice(reversed(ami.recent_bypasses), limit)]


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)


API_KEY: web.AppKey[Api] = web.AppKey("api", Api)
