"""Redis state backend: call history shared by every gateway of a professional.

Why Redis and how it is used:

- The frequency cap is only true if all gateways count the same attempts, so the
  check-and-count is one Lua script (prune, count, add, expire) that Redis runs
  atomically: two gateways can never both take the fourth attempt.
- Keys expire on their own, after the ``Retention`` the store is given (computed
  from the campaigns: the longest frequency window plus a margin): attempts that
  long after the last write, refusals after ``Retention.kept_refusals`` (never
  under 3 years: under the consent regime a refusal ends consent for good, and
  the CNIL's guidance keeps prospect data 3 years after the last contact),
  opt-outs never (an expired opt-out would let a call through; delete them on
  purpose, with the secret, when the law says so). A longer retention set after
  a reload lengthens the TTLs already running (``set_retention``).
- Numbers are personal data, so key names hold an HMAC-SHA-256 of the E.164
  number, not the number: ``dncgw:<professional>:a:<32 hex>`` (attempts, sorted
  set scored by epoch ms), ``…:r:<h>`` (last refusal, epoch ms), ``…:o:<h>``
  (opt-out, epoch ms), ``…:c:<h>`` (the latest consent recorded at a call or over the API, epoch ms,
  kept like refusals). The HMAC key comes from ``DNC_GATEWAY_STATE_SECRET``; without
  it the professional's name is used, which only hides numbers from casual eyes
  (``KEYS``, ``MONITOR``, a dump in a ticket): a phone number is brute-forced in
  minutes. Every gateway must use the same secret or counts would split, so the
  store writes a fingerprint of it (``dncgw:<professional>:keyid``) and refuses to
  work with a different one.
- Every call is bounded (``RedisSettings``: connect and per-operation timeouts,
  one retry on a fresh connection) and any Redis error becomes
  ``StateUnavailable`` for that call, which the service turns into the configured
  ``state_failure`` (closed: BLOCK). Only after ``failures_to_open`` consecutive
  failed calls does the breaker open: calls then fail fast for ``retry_interval``
  seconds instead of each paying a timeout, and the next call after that probes
  Redis again, so recovery is automatic. One slow round trip on a busy host costs
  one call, not every call of the next half second.
- The pool is opened at start (``warm_connections``), so the first burst of calls
  pays no connects (each a handshake plus redis-py's CLIENT SETINFO round trips).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.aio import cancel
from gateway.state.model import (
    EMPTY_HISTORY,
    REDIS_DEFAULTS,
    Cap,
    History,
    RedisSettings,
    Retention,
    StateUnavailable,
)

log = logging.getLogger(__name__)

HISTORY_CHUNK = 256  # numbers per pipelined round trip of histories(): well under the op timeout

T = TypeVar("T")

MAX_ATTEMPTS_READ = 1000  # a history read never pulls more than this many attempts (uncapped campaigns)
SECRET_ENV = "DNC_GATEWAY_STATE_SECRET"

# KEYS[1] attempts; ARGV: at_ms, horizon_ms, since_ms, limit (-1: no cap), member, ttl_ms.
# Returns 1 when the attempt was counted, 0 when the cap was already reached.
_ATTEMPT_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local limit = tonumber(ARGV[4])
if limit >= 0 and redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf') >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""

# KEYS attempts, refusal, opt-out, consent; ARGV[1]: how many attempts at most. One command instead of a
# pipeline of four: a quarter of the client-side work on the hot path. A missing value comes back as "" (Lua has
# no nil inside a table).
_HISTORY_LUA = """
local attempts = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[1]), -1, 'WITHSCORES')
return {attempts, redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or '',
        redis.call('GET', KEYS[4]) or ''}
"""

# KEYS[1] refusal or consent; ARGV: at_ms, ttl_ms. Keeps the latest (gateways may report out of order).
_REFUSAL_LUA = """
local prev = redis.call('GET', KEYS[1])
if (not prev) or tonumber(prev) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


# KEYS: keys whose TTL a longer retention lengthens; ARGV: by how much (ms), never beyond (ms). Adding the
# difference keeps "retention after the last write" without reading the attempts; the cap makes a second run
# (another gateway reloading the same campaigns) harmless.
_LENGTHEN_LUA = """
local n = 0
for _, k in ipairs(KEYS) do
  local ttl = redis.call('PTTL', k)
  if ttl > 0 then
    local want = math.min(ttl + tonumber(ARGV[1]), tonumber(ARGV[2]))
    if want > ttl then
      redis.call('PEXPIRE', k, want)
      n = n + 1
    end
  end
end
return n
"""


class ErrorCounter(Protocol):
    def state_error(self, kind: str) -> None: ...


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _dt(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _span_ms(d: timedelta) -> int:
    return int(d.total_seconds() * 1000)


def _history(flat: list[Any], refusal: Any, optout: Any, consent: Any) -> History | None:
    """A history from the script's reply (None: the number has none)."""
    if not flat and not refusal and not optout and not consent:
        return None
    return History(tuple(_dt(float(score)) for score in flat[1::2]), _dt(int(refusal)) if refusal else None,
                   _dt(int(optout)) if optout else None, _dt(int(consent)) if consent else None)


class KeyScheme:
    """Key names of one professional; the number appears only as a keyed hash."""

    def __init__(self, professional: str, secret: bytes) -> None:
        self.prefix = f"dncgw:{professional}:"
        self._secret = secret
        self.keyid = self.prefix + "keyid"
        # A fingerprint, not the secret: lets gateways detect a mismatch without revealing it.
        self.fingerprint = hashlib.sha256(b"dncgw-keyid:" + secret).hexdigest()[:16]

    def digest(self, key: int) -> str:
        return hmac.new(self._secret, str(key).encode(), hashlib.sha256).hexdigest()[:32]

    def all_keys(self, key: int) -> tuple[str, str, str, str]:
        """Attempts, refusal, opt-out and consent keys with one HMAC (the hot path reads all four)."""
        d = self.digest(key)
        return f"{self.prefix}a:{d}", f"{self.prefix}r:{d}", f"{self.prefix}o:{d}", f"{self.prefix}c:{d}"

    def attempts(self, key: int) -> str:
        return f"{self.prefix}a:{self.digest(key)}"

    def refusal(self, key: int) -> str:
        return f"{self.prefix}r:{self.digest(key)}"

    def optout(self, key: int) -> str:
        return f"{self.prefix}o:{self.digest(key)}"

    def consent(self, key: int) -> str:
        return f"{self.prefix}c:{self.digest(key)}"


class Breaker:
    """Closed while calls succeed; open after ``failures_to_open`` consecutive failures; pure (``now`` is an argument).

    While closed, a failed call fails alone: on a busy host one round trip past its timeout is no outage. Once
    open, calls fail fast until ``retry_interval`` seconds after the last failure; then calls probe again, and one
    failed probe opens it for another interval (the count is still at or past the threshold).
    """

    def __init__(self, retry_interval: float, failures_to_open: int = REDIS_DEFAULTS.failures_to_open) -> None:
        if failures_to_open < 1:
            raise ValueError(f"failures_to_open must be at least 1, got {failures_to_open}")
        self.retry_interval = retry_interval
        self.failures_to_open = failures_to_open
        self.failures = 0  # consecutive failed calls since the last success
        self.open_until: float | None = None
        self.last_error = ""

    @property
    def healthy(self) -> bool:
        """No failure since the last success."""
        return self.failures == 0

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def allows(self, now: float) -> bool:
        return self.open_until is None or now >= self.open_until

    def failed(self, now: float, error: str) -> bool:
        """Record a failed call; True when it opens the breaker (worth one log line)."""
        self.failures += 1
        self.last_error = error
        if self.failures < self.failures_to_open:
            return False
        was_closed = self.open_until is None
        self.open_until = now + self.retry_interval
        return was_closed

    def succeeded(self) -> bool:
        """Record a successful call; True when this ends an outage (the breaker was open)."""
        recovered = self.open_until is not None
        self.failures = 0
        self.open_until = None
        self.last_error = ""
        return recovered


def _kind_of(exc: BaseException) -> str:
    if isinstance(exc, RedisTimeoutError | asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection"
    return "error"


class RedisState:
    """The ``StateStore`` on Redis (``state = "redis://host:port/db"``)."""

    def __init__(self, url: str, *, retention: Retention, secret: str | None = None,
                 settings: RedisSettings = REDIS_DEFAULTS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.retention = retention
        self.settings = settings
        self.metrics: ErrorCounter | None = None  # set by the app
        self._monotonic = monotonic
        self._breaker = Breaker(settings.retry_interval, settings.failures_to_open)
        self._lengthening: set[asyncio.Task[None]] = set()
        self._secret = (secret if secret is not None else os.environ.get(SECRET_ENV, "")).encode()
        self._schemes: dict[str, KeyScheme] = {}
        self._verified: set[str] = set()
        self._verifying: dict[str, asyncio.Lock] = {}
        # A bounded pool: a burst of calls waits a moment for a connection instead of opening hundreds.
        # URL query parameters (?socket_timeout=0.2&socket_connect_timeout=0.2) win over these defaults.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=settings.max_connections, timeout=settings.op_timeout * 2,
            socket_connect_timeout=settings.connect_timeout, socket_timeout=settings.op_timeout,
            retry=Retry(NoBackoff(), 1))
        kw = pool.connection_kwargs
        self._op_timeout = float(kw.get("socket_timeout") or settings.op_timeout)
        self._connect_timeout = float(kw.get("socket_connect_timeout") or settings.connect_timeout)
        self._redis: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self._history = self._redis.register_script(_HISTORY_LUA)
        self._attempt = self._redis.register_script(_ATTEMPT_LUA)
        self._refusal = self._redis.register_script(_REFUSAL_LUA)
        self._lengthen = self._redis.register_script(_LENGTHEN_LUA)

    # -- health --------------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """False from a failed call until the next successful one (for /healthz and the page).

        Calls may still be served meanwhile: only ``failures_to_open`` consecutive failures open the breaker.
        """
        return self._breaker.healthy

    @property
    def last_error(self) -> str:
        return self._breaker.last_error

    def scheme(self, professional: str) -> KeyScheme:
        s = self._schemes.get(professional)
        if s is None:
            s = self._schemes[professional] = KeyScheme(professional, self._secret or professional.encode())
        return s

    async def _verify_secret(self, scheme: KeyScheme) -> None:
        """Refuse to count under a different secret than the other gateways (counts would split)."""
        # One check for the burst of calls that arrives after a (re)connection, not one per call.
        async with self._verifying.setdefault(scheme.prefix, asyncio.Lock()):
            if scheme.prefix not in self._verified:
                await self._check_fingerprint(scheme)

    async def _check_fingerprint(self, scheme: KeyScheme) -> None:
        await self._redis.set(scheme.keyid, scheme.fingerprint, nx=True)
        found = await self._redis.get(scheme.keyid)
        if found is not None and (found.decode() if isinstance(found, bytes) else found) != scheme.fingerprint:
            raise StateUnavailable(
                f"{SECRET_ENV} differs from the one the other gateways use (key {scheme.keyid}): "
                f"refusing to count attempts under another key")
        self._verified.add(scheme.prefix)

    async def _run(self, professional: str, op: Callable[[KeyScheme], Awaitable[T]], *, verify: bool = True) -> T:
        if not self._breaker.allows(self._monotonic()):
            self._count("circuit_open")
            raise StateUnavailable(f"Redis unavailable (retrying shortly): {self._breaker.last_error}")
        scheme = self.scheme(professional)
        try:
            # The socket timeouts bound each round trip; this bounds the whole call: waiting for a pooled
            # connection, connecting, the secret check after a reconnection, one retry.
            async with asyncio.timeout(self._connect_timeout * 2 + self._op_timeout * 6):
                if verify and scheme.prefix not in self._verified:
                    await self._verify_secret(scheme)
                result = await op(scheme)
        except StateUnavailable as e:
            self._fail("config", str(e))
            raise
        except (RedisError, OSError, TimeoutError) as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            self._fail(_kind_of(e), error)
            raise StateUnavailable(f"Redis {self.url_safe}: {error}") from e
        if self._breaker.succeeded():
            log.warning("state: Redis %s is back", self.url_safe)
        return result

    def _fail(self, kind: str, error: str) -> None:
        if kind != "timeout":
            # A restarted Redis may be empty: check the secret again. Not after a mere timeout: the busy host
            # that caused it would then pay two more round trips at the next burst.
            self._verified.clear()
        b = self._breaker
        # The failure's time, not the call's start: the interval counts from when the outage was seen.
        if b.failed(self._monotonic(), error):
            log.error("state: Redis %s unavailable (%s, %d failed calls in a row), failing fast for %.2fs: %s",
                      self.url_safe, kind, b.failures, b.retry_interval, error)
        elif not b.is_open:
            log.warning("state: Redis %s call failed (%s, %d of %d before failing fast): %s",
                        self.url_safe, kind, b.failures, b.failures_to_open, error)
        self._count(kind)

    def _count(self, kind: str) -> None:
        if self.metrics is not None:
            try:
                self.metrics.state_error(kind)
            except Exception:  # metrics must never break the call path
                log.exception("metrics.state_error failed")

    @property
    def url_safe(self) -> str:
        """The URL without its password, for logs."""
        kw = self._redis.connection_pool.connection_kwargs
        return f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"

    # -- the StateStore protocol -----------------------------------------------------------------------

    async def history(self, professional: str, key: int) -> History:
        async def op(s: KeyScheme) -> History:
            return _history(*await self._history(keys=s.all_keys(key), args=[MAX_ATTEMPTS_READ])) or EMPTY_HISTORY

        return await self._run(professional, op)

    def known_keys(self, professional: str) -> Collection[int] | None:
        return None  # keys hold an HMAC of the number, never the number: ask by number

    async def histories(self, professional: str, keys: Sequence[int]) -> dict[int, History]:
        """The non-empty histories of ``keys`` (a scrub's block of numbers), pipelined in chunks: each chunk is
        one round trip, kept small enough to stay under the per-call timeout."""
        found: dict[int, History] = {}
        for i in range(0, len(keys), HISTORY_CHUNK):
            chunk = keys[i : i + HISTORY_CHUNK]

            async def op(s: KeyScheme, chunk: Sequence[int] = chunk) -> list[list[Any]]:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in chunk:
                        await self._history(keys=s.all_keys(key), args=[MAX_ATTEMPTS_READ], client=pipe)
                    return cast(list[list[Any]], await pipe.execute())

            for key, values in zip(chunk, await self._run(professional, op), strict=True):
                if (h := _history(*values)) is not None:
                    found[key] = h
        return found

    async def record_attempt(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        at_ms = _ms(at)
        keep = self.retention.attempts  # read per call: a longer retention set by a reload applies at once
        args: list[int | str] = [
            at_ms, _ms(at - keep), _ms(cap.since) if cap else 0, cap.limit if cap else -1,
            f"{at_ms}:{secrets.token_hex(6)}", _span_ms(keep)]

        async def op(s: KeyScheme) -> bool:
            return bool(await self._attempt(keys=[s.attempts(key)], args=args))

        return await self._run(professional, op)

    async def record_refusal(self, professional: str, key: int, at: datetime) -> None:
        async def op(s: KeyScheme) -> None:
            await self._refusal(keys=[s.refusal(key)], args=[_ms(at), _span_ms(self.retention.kept_refusals)])

        await self._run(professional, op)

    async def record_optout(self, professional: str, key: int, at: datetime) -> None:
        async def op(s: KeyScheme) -> None:
            # NX: the first opt-out date is the one that counts; no expiry (see the module docstring).
            await self._redis.set(s.optout(key), _ms(at), nx=True)

        await self._run(professional, op)

    async def record_consent(self, professional: str, key: int, at: datetime) -> None:
        async def op(s: KeyScheme) -> None:
            await self._refusal(keys=[s.consent(key)], args=[_ms(at), _span_ms(self.retention.kept_refusals)])

        await self._run(professional, op)

    async def ping(self, professional: str = "_") -> bool:
        """One probe, for health checks; never raises."""
        try:
            await self._run(professional, lambda s: self._redis.ping(), verify=False)
        except StateUnavailable:
            return False
        return True

    async def start(self) -> None:
        """Connect once so that a wrong URL is logged at start, then open the pool; a down Redis is not fatal."""
        try:
            await self._run("_", lambda s: self._redis.ping(), verify=False)
        except StateUnavailable as e:
            log.error("state: Redis not reachable at start (%s); calls get state_failure until it is", e)
            return
        await self.warm()

    async def warm(self) -> int:
        """Open ``warm_connections`` pooled connections (bounded by the pool); returns how many are open.

        A burst right after start would otherwise open them itself, each connect competing with the calls.
        """
        pool = self._redis.connection_pool
        # redis-py leaves get_connection untyped (it still accepts deprecated arguments): its type, as called here.
        get_connection = cast(Callable[[], Awaitable[AbstractConnection]], pool.get_connection)
        want = min(self.settings.warm_connections, self.settings.max_connections)
        results = await asyncio.gather(*(get_connection() for _ in range(want)), return_exceptions=True)
        opened = [c for c in results if not isinstance(c, BaseException)]
        for c in opened:
            await pool.release(c)
        if len(opened) < want:
            failed = next(r for r in results if isinstance(r, BaseException))
            log.warning("state: opened %d of %d Redis connections at start: %s", len(opened), want, failed)
        return len(opened)

    def set_retention(self, retention: Retention) -> None:
        """Keep history for ``retention`` from now on; a longer one also lengthens the TTLs already running.

        The Lua scripts read the retention per call, so no attempt inside the new horizon is trimmed from here on.
        Keys already set to expire under the old, shorter retention get the difference added (in the background:
        a scan of the professional's keys), so a number not called since keeps its history as long as one called
        again.
        """
        old, self.retention = self.retention, retention
        grown = [(pattern, new - was) for pattern, was, new in (
            ("a", old.attempts, retention.attempts), ("r", old.kept_refusals, retention.kept_refusals),
            ("c", old.kept_refusals, retention.kept_refusals))
            if new > was]
        if not grown:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script, before start): keys get the new TTL at their next write only
            log.warning("state: retention lengthened outside the event loop: running TTLs left as they are")
            return
        task = loop.create_task(self._lengthen_ttls(grown), name="state-lengthen-ttls")
        self._lengthening.add(task)
        task.add_done_callback(self._lengthening.discard)

    async def _lengthen_ttls(self, grown: list[tuple[str, timedelta]]) -> None:
        """Add each grown retention's difference to the TTL of every key of that kind (every professional)."""
        for kind, by in grown:
            cap = self.retention.attempts if kind == "a" else self.retention.kept_refusals  # refusals, consents
            lengthened = 0
            try:
                batch: list[str] = []
                async for k in self._redis.scan_iter(match=f"dncgw:*:{kind}:*", count=1000):
                    batch.append(k.decode() if isinstance(k, bytes) else str(k))
                    if len(batch) == 500:
                        lengthened += int(await self._lengthen(keys=batch, args=[_span_ms(by), _span_ms(cap)]))
                        batch = []
                if batch:
                    lengthened += int(await self._lengthen(keys=batch, args=[_span_ms(by), _span_ms(cap)]))
            except (RedisError, OSError, TimeoutError) as e:
                log.error("state: could not lengthen the TTLs of %s keys by %s (%d done): %s", kind, by, lengthened, e)
                continue
            log.info("state: retention of %s keys lengthened by %s on %d keys", kind, by, lengthened)

    async def close(self) -> None:
        for task in list(self._lengthening):
            await cancel(task)
        # The client was given its pool (see __init__): closing the client alone leaves the pool's connections
        # open, each socket then lingering until the garbage collector finds it.
        await self._redis.aclose(close_connection_pool=True)
