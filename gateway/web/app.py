"""The aiohttp server: routes of DESIGN §7, the static supervisor page and the SSE feed.

Errors are always JSON (``{"error": …}``) on ``/api`` routes and health, so a
script never has to parse an HTML error page. The page is static (no build
step, no CDN: call centres often have no internet) and served with a strict
Content-Security-Policy so that it can only talk to this gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from gateway.aio import listen_error
from gateway.config import WebSection
from gateway.web import dialer, openapi, params
from gateway.web.api import API_KEY, MAX_BODY, Api, Parts, admin, error
from gateway.web.limits import HEADER_TIMEOUT, ConnectionGuard
from gateway.web.live import SSE_HEARTBEAT, Board, LiveHub, sse_event
from gateway.web.panels import agi_status, state_status

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.metrics import Metrics
    from gateway.registry.holder import ReloadResult
    from gateway.registry.model import Registries
    from gateway.service import Gateway

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
HUB_KEY: web.AppKey[LiveHub] = web.AppKey("hub", LiveHub)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except params.BadRequest as e:
        return web.json_response(e.as_json(), status=400)
    except web.HTTPException as e:
        if e.status < 400 or request.path in ("/", "/favicon.ico") or request.path.startswith("/static/"):
            raise
        return error(e.status, e.reason, path=request.path)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("web: %s %s failed", request.method, request.path)
        return error(500, "internal error (logged by the gateway)")


class WebServer:
    """``/metrics``, ``/healthz``, the JSON API, the live page and its SSE feed, on one aiohttp listener."""

    def __init__(self, gateway: Gateway, config: WebSection, *, metrics: Metrics | None = None,
                 running: Parts | None = None, live_interval: float = 1.0, status_every: float = 2.0,
                 heartbeat: float = 15.0, max_clients: int = 100) -> None:
        self.gateway = gateway
        self.config = config
        self.metrics = metrics
        self.running = running
        self.heartbeat = heartbeat
        self.hub = LiveHub(Board(frozenset(gateway.config.campaigns)), self.live_status,
                           gateway.clock, interval=live_interval, status_every=status_every,
                           max_clients=max_clients)
        self.api = Api(gateway, config.admin_token, running, self.hub)
        self.app = self._build()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self.guard: ConnectionGuard | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.address = ""
        self.port = 0

    def _build(self) -> web.Application:
        app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY)
        app[API_KEY] = self.api
        app[HUB_KEY] = self.hub
        api = self.api
        app.router.add_get("/metrics", self.metrics_handler)
        app.router.add_get("/healthz", api.healthz)
        app.router.add_get("/api/check", api.check)
        app.router.add_get("/api/summary", api.summary)
        app.router.add_get("/api/events", self.events)
        app.router.add_post("/api/refusals", admin(api.refusal))
        app.router.add_post("/api/optouts", admin(api.optout))
        app.router.add_post("/api/consents", admin(api.consent))
        app.router.add_post("/api/registry/reload", admin(api.reload))
        app.router.add_post("/api/registry/accept", admin(api.accept))
        app.router.add_post("/api/reload", admin(api.reload_all))
        app.router.add_get("/api/audit", admin(api.audit_query))
        app.router.add_get("/api/proof", admin(api.proof))
        app.router.add_get("/api/openapi.json", self.openapi)
        dialer.register(app, self.gateway, self.config.dialer_tokens)  # POST /v1/decide, /v1/decide/batch
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC, append_version=False)
        app.on_response_prepare.append(self._headers)
        return app

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path == "/" or request.path.startswith("/static/"):
            response.headers["Content-Security-Policy"] = CSP
            response.headers["Cache-Control"] = "no-cache"
        elif request.path.startswith(("/api/", "/v1/")):
            response.headers["Cache-Control"] = "no-store"

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.gateway.observers.append(self.hub)
        self.gateway.holder.on_swap(self._swapped)
        await self.hub.start()
        # keepalive_timeout: an idle kept-alive connection (and, from aiohttp 3.14, one whose headers never
        # complete) is closed; the guard cuts slow headers on any version and keeps descriptors for FastAGI.
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0,
                                     keepalive_timeout=HEADER_TIMEOUT)
        await self._runner.setup()
        server_factory = self._runner.server
        assert server_factory is not None
        self.guard = ConnectionGuard(server_factory, refused=self.metrics.web_refused if self.metrics else None)
        try:
            self._server = server = await asyncio.get_running_loop().create_server(
                self.guard, self.config.listen.host, self.config.listen.port, reuse_address=True)
        except OSError as e:
            await self.close()
            raise listen_error("the web API and page", "[web] listen", str(self.config.listen), e) from None
        sockets = getattr(server, "sockets", None) or []
        host, port = sockets[0].getsockname()[:2] if sockets else (self.config.listen.host, self.config.listen.port)
        self.port = int(port)
        self.address = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        log.info("web: listening on http://%s/", self.address)

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.gateway.observers.remove(self.hub)
        await self.hub.close()  # ends the SSE streams so that the runner does not wait for them
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def reconfigure(self, config: Config) -> None:
        """Follow a reload (SIGHUP): the page's campaign names become those of the new config."""
        self.hub.reconfigure(frozenset(config.campaigns))

    def _swapped(self, regs: Registries, result: ReloadResult) -> None:
        # Called from the reload worker thread: hop onto the loop.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.hub.poke_status)

    def live_status(self) -> dict[str, Any]:
        """The page's slowly changing part: the API's (lists, AMI, bypasses, audit), FastAGI and the state store."""
        return {**self.api.live_status(), "fastagi": agi_status(self.metrics),
                "state_store": state_status(self.gateway.config.gateway.state, self.gateway.state, self.metrics)}

    # -- handlers -----------------------------------------------------------------------------------

    async def metrics_handler(self, request: web.Request) -> web.Response:
        if self.metrics is None:
            return error(404, "metrics are not enabled in this server")
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self.metrics.registry), headers={"Content-Type": content_type})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi.document())

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def events(self, request: web.Request) -> web.StreamResponse:
        """SSE: a ``summary`` first (so a reconnect never misses a count), then ``tick`` and ``status``."""
        client = self.hub.subscribe()
        if client is None:
            return error(503, "too many live clients", retry_after=10)
        try:
            response = web.StreamResponse(headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            # No keep-alive once the stream ends: a connection left idle just as the server closes would make
            # aiohttp's shutdown wait its full timeout (seen as a rare 2 s close), and a browser reconnects anyway.
            response.force_close()
            await response.prepare(request)
            try:
                await response.write(b"retry: 3000\n\n" + sse_event("summary", self.hub.summary()))
                while True:
                    try:
                        payload = await asyncio.wait_for(client.queue.get(), self.heartbeat)
                    except TimeoutError:
                        payload = SSE_HEARTBEAT
                    if payload is None:
                        break
                    await response.write(payload)
            except ConnectionResetError:
                # A closed tab or a reload: the only way an SSE stream learns its reader left is a failed write.
                # That is how every stream ends, not an error (aiohttp would log it with a traceback).
                log.debug("live feed: a client left")
            return response
        finally:
            self.hub.unsubscribe(client)
