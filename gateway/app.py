"""``dnc-gateway serve``: wiring and lifecycle of the running gateway.

Start order: audit log, state store, registries, metrics, then the listeners
(web, FastAGI) and last the AMI watcher. SIGTERM drains FastAGI sessions in
flight before closing; SIGHUP reloads the config's lists without dropping a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import sdnotify
from gateway.aio import ListenError
from gateway.audit.recover import recover_attempts
from gateway.config import Config, ConfigError, load
from gateway.numbers import Normaliser
from gateway.policy.packs import PACKS
from gateway.service import Gateway, engine_for
from gateway.state.store import EmbeddedState
from gateway.web.reloads import ConfigFailure, ReloadReport

if TYPE_CHECKING:
    from gateway.agi.server import AgiServer
    from gateway.ami.watcher import AmiWatcher
    from gateway.audit import AuditLog
    from gateway.metrics import Metrics
    from gateway.registry.poller import RegistryPoller
    from gateway.sip.server import SipServer
    from gateway.web.app import WebServer

log = logging.getLogger(__name__)

HISTORY_WAIT = 2.0  # seconds serve waits for the call history before it listens anyway (answering state_unavailable)


def _install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


@dataclass
class Running:
    """Handles on everything ``serve`` started, for tests and for shutdown."""

    config: Config
    gateway: Gateway
    audit: AuditLog | None = None
    metrics: Metrics | None = None
    agi: AgiServer | None = None
    web: WebServer | None = None
    ami: AmiWatcher | None = None
    sip: SipServer | None = None
    pollers: list[RegistryPoller] = field(default_factory=list)
    # What the command line changed in the file's config (``--agi-listen``, ``--web-listen``): applied to every
    # config a reload reads too, so that a SIGHUP neither undoes it nor reports it as a change needing a restart.
    adjust: Callable[[Config], Config] | None = None
    config_failure: ConfigFailure | None = None  # the config file's last reload was refused (shown everywhere)
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def reload(self) -> ReloadReport:
        """SIGHUP and ``POST /api/reload``: one reload at a time, each one whole (see :meth:`_reload`)."""
        async with self._reloading:
            return await self._reload()

    def _config_refused(self, error: str | None) -> None:
        """Note the config reload's outcome where /healthz, /metrics and the page read it."""
        if error is None:
            self.config_failure = None
        else:
            now = self.gateway.clock().timestamp()
            prev = self.config_failure
            self.config_failure = prev.again(error, now) if prev is not None else ConfigFailure(error, now, now)
        if self.metrics is not None:
            self.metrics.config_reload_failed.set(0.0 if error is None else 1.0)
        if self.web is not None:
            self.web.api.config_failure = self.config_failure
            self.web.hub.poke_status()

    async def _reload(self) -> ReloadReport:
        """SIGHUP: re-read the config file, reload the lists, then swap campaigns and policy switches.

        A config that does not validate changes nothing. Lists are built off to the side and swapped
        before the campaigns that may name them. Listen addresses, the state URL, the audit path, the
        professional, the home country and [ami] need a restart: a change there is logged, not applied.
        """
        gw = self.gateway
        new = None
        config_error: str | None = None
        if self.config.path is not None:
            try:
                new = load(self.config.path, data_dir=self.config.gateway.data_dir)
                if self.adjust is not None:
                    new = self.adjust(new)
            except ConfigError as e:
                config_error = str(e)
                log.error("reload: config not applied, keeping the running one: %s", e)
            except (OSError, UnicodeDecodeError) as e:  # the file deleted or unreadable: refused the same way
                config_error = f"{self.config.path}: {e}"
                log.error("reload: config not applied, keeping the running one: %s", config_error)
        self._config_refused(config_error)
        if new is not None:
            old = self.config
            restart = [what for what, a, b in (
                ("[agi] listen", old.agi.listen, new.agi.listen), ("[web] listen", old.web.listen, new.web.listen),
                ("[gateway] state", old.gateway.state, new.gateway.state),
                ("[gateway] audit", old.gateway.audit, new.gateway.audit),
                ("[gateway] professional", old.gateway.professional, new.gateway.professional),
                ("[gateway] home_country", old.gateway.home_country, new.gateway.home_country),
                ("[ami]", old.ami, new.ami), ("[sip]", old.sip, new.sip)) if a != b]
            if restart:
                log.warning("reload: %s changed: restart the gateway to apply", ", ".join(restart))
            gw.holder.specs = dict(new.lists)
        result = await gw.holder.reload()
        if new is not None:
            gw.reconfigure(new)
            self.config = new
            # In the same step as the engine swap (no await in between): the first call the new campaigns
            # decide is already counted and shown under their names, and a removed one's under unknown.
            if self.metrics is not None:
                self.metrics.reconfigure(new)
            if self.web is not None:
                self.web.reconfigure(new)
            for poller in self.pollers:
                await poller.reconfigure([s for s in new.lists.values() if s.url])
        failed = dict(result.failed)
        for poller in self.pollers:
            outcomes = await poller.poll_now()
            for name, outcome in outcomes.items():
                if str(outcome) == "failed":
                    failed[name] = poller.status[name].last_error or "fetch failed"
        log.info("reload: %d lists loaded, %d failed%s", len(result.loaded), len(failed),
                 "; config refused" if config_error is not None else "")
        loaded = {n: m.version for n, m in result.loaded.items() if n not in failed}
        return ReloadReport(config_error, loaded, failed)

    async def close(self) -> None:
        for part in (self.ami, *self.pollers):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.close()
        if self.sip is not None:
            await self.sip.drain_and_close()
        if self.agi is not None:
            await self.agi.drain_and_close(self.config.agi.drain_timeout)
        if self.web is not None:
            await self.web.close()
        await self.gateway.close()
        if self.audit is not None:
            await self.audit.close()


async def start(config: Config, *, web: bool = True, adjust: Callable[[Config], Config] | None = None) -> Running:
    """Start every part of the gateway; returns once all listeners are bound."""
    # lazy: the serving parts (aiohttp, panoramisk, prometheus-client, redis-py) add ~110 ms to every CLI
    # command's start-up, since the CLI imports this module for `serve`; only `serve` needs them.
    from gateway.agi.server import AgiServer
    from gateway.ami.watcher import AmiWatcher
    from gateway.audit import AuditLog
    from gateway.metrics import Metrics
    from gateway.registry.poller import RegistryPoller
    from gateway.sip.server import SipServer
    from gateway.state.redis_store import RedisState
    from gateway.web.app import WebServer

    audit = None
    if config.gateway.audit is not None:
        audit = AuditLog(config.gateway.audit, config.audit)
        await audit.start()
    if audit is not None and config.gateway.state.startswith("sqlite://"):
        await _recover_attempts(config)
    # The history loads in the background (a large one takes seconds): FastAGI listens at once and answers
    # state_unavailable until it is in place.
    gateway = Gateway(config, audit=audit, background_load=True)
    await gateway.start()
    # A history that loads within HISTORY_WAIT is in place before the first call (a restart of a small store
    # never answers state_unavailable); a larger one goes on loading while the gateway answers.
    if isinstance(gateway.state, EmbeddedState) and not await _loaded_within(gateway.state, HISTORY_WAIT):
        log.warning("state: the call history is still loading: calls are answered state_unavailable until it is "
                    "in place")
    await gateway.holder.reload()  # a list that fails is logged by the holder, with what is kept
    # Ready means ready: the decision path runs once per campaign before a port opens (no observer yet, so
    # nothing of it is counted): the first burst of a shift finds everything warm.
    warmed = await gateway.warm_up()
    log.info("warm-up: the decision path ran for %d campaign(s)", warmed)
    gateway.holder.start_watch()  # entries the CLI records in the side store apply within a second
    metrics = Metrics(gateway)
    gateway.observers.append(metrics)
    if audit is not None:
        audit.metrics = metrics  # each group commit: dnc_audit_commit_seconds, dnc_audit_records_total
    if isinstance(gateway.state, RedisState):
        gateway.state.metrics = metrics  # dnc_state_errors_total
    running = Running(config, gateway, audit, metrics, adjust=adjust)
    asyncio.get_running_loop().set_exception_handler(AcceptErrors(running))  # before any listener opens
    url_specs = [s for s in config.lists.values() if s.url]
    if url_specs:
        poller = RegistryPoller(gateway.holder, url_specs)
        poller.metrics = metrics
        await poller.start()
        running.pollers.append(poller)
    try:
        if web:
            running.web = WebServer(gateway, config.web, metrics=metrics, running=running)
            running.web.api.reloader = running.reload  # POST /api/reload, what `dnc-gateway reload` asks for
            await running.web.start()
        agi = AgiServer(gateway, config.agi, metrics=metrics)
        await agi.start()
        running.agi = agi
        if config.sip is not None:
            running.sip = SipServer(gateway, config.sip, metrics=metrics)
            await running.sip.start()
    except ListenError:
        # A port taken: what started closes in order (the audit log flushed, the state saved), then one line.
        await running.close()
        raise
    if config.ami is not None:
        running.ami = AmiWatcher(gateway, config.ami, metrics=metrics)
        gateway.observers.append(running.ami)
        await running.ami.start()
    return running


ACCEPT_LOG_EVERY = 60.0  # seconds between two log lines about failed accept() calls


class AcceptErrors:
    """The loop's exception handler: a failed ``accept()`` (EMFILE: the process is out of file descriptors) is
    counted in ``dnc_accept_errors_total{listener}`` and logged once a minute at most, with how many, instead of
    one ERROR with its traceback per attempt (hundreds a second); anything else goes to the default handler.
    (uvloop drops such connections inside libuv and reports nothing: the web's descriptor reserve is what keeps
    FastAGI served there.)"""

    def __init__(self, running: Running, clock: Callable[[], float] = time.monotonic) -> None:
        self.running = running
        self.clock = clock
        self.since_logged = 0
        self.logged_at = -ACCEPT_LOG_EVERY

    def listener(self, context: dict[str, Any]) -> str:
        sock = context.get("socket")
        try:
            port = sock.getsockname()[1] if sock is not None else None
        except (OSError, AttributeError, IndexError, TypeError):
            port = None
        r = self.running
        if r.agi is not None and port == r.agi.port:
            return "agi"
        if r.web is not None and port == r.web.port:
            return "web"
        return "other"

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and "accept" in str(context.get("message", ""))):
            loop.default_exception_handler(context)
            return
        listener = self.listener(context)
        if self.running.metrics is not None:
            self.running.metrics.accept_errors.labels(listener).inc()
        self.since_logged += 1
        now = self.clock()
        if now - self.logged_at >= ACCEPT_LOG_EVERY:
            log.error("%s: accept() failed %d time(s) since the last such line: %s (counted in "
                      "dnc_accept_errors_total)", listener, self.since_logged, exc)
            self.since_logged, self.logged_at = 0, now


async def _recover_attempts(config: Config) -> None:
    """The ALLOWs a kill -9 kept from the history, counted from the audit trail (gateway/audit/recover.py)."""
    g = config.gateway
    assert g.audit is not None
    normaliser = Normaliser(g.home_country, g.outside_line)
    keep = engine_for(config).retention(PACKS).attempts.total_seconds()
    try:
        added = await asyncio.to_thread(
            recover_attempts, Path(g.state.removeprefix("sqlite://")), g.audit, g.professional,
            lambda e164: normaliser.parse(e164).key or 0, keep_seconds=keep, now=time.time())
    except Exception as e:  # the history loads anyway; say that these attempts may be missing
        log.error("state: attempts not recovered from the audit trail: %s", e)
        return
    if added:
        log.warning("state: %d attempts answered ALLOW but missing from the history (the gateway was killed "
                    "before writing them) recovered from the audit trail", added)


async def _loaded_within(state: EmbeddedState, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            return await state.wait_loaded()
    return False


def serve(config: Config, *, web: bool = True, adjust: Callable[[Config], Config] | None = None) -> None:
    """Run the gateway until SIGTERM or SIGINT (``dnc-gateway serve``); SIGHUP reloads the lists. ``adjust``:
    what the command line changes in a config, the file's and every one a reload reads (already applied to
    ``config``)."""
    uv = _install_uvloop()

    async def main() -> None:
        running = await start(config, web=web, adjust=adjust)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(running.reload()))
        watchdog = sdnotify.Watchdog()
        watchdog.start()
        agi = running.agi
        assert agi is not None  # start() returns with FastAGI listening
        sdnotify.notify(f"READY=1\nSTATUS=FastAGI on {agi.address}")
        log.info("dnc-gateway ready: FastAGI on %s, web on %s%s%s%s", agi.address,
                 running.web.address if running.web else "(off)",
                 f", SIP on {running.sip.address}" if running.sip else "",
                 f", AMI {config.ami.host}:{config.ami.port}" if config.ami else "", " (uvloop)" if uv else "")
        if config.path is not None and config.path.name == "demo.toml":
            log.info("demo data in %s; admin token in %s", config.gateway.data_dir,
                     config.gateway.data_dir / "admin-token")
        await stop.wait()
        sdnotify.notify("STOPPING=1")
        log.info("shutting down: draining FastAGI sessions (up to %.0fs)", config.agi.drain_timeout)
        await running.close()
        await watchdog.close()

    asyncio.run(main())
