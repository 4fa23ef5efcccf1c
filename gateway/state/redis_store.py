"""Redis state backend: call history shared by every gateway of a professional.

Why Redis and how it is used:

- The frequency cap is only true if all gateways count the same attempts, so the
  check-and-count is one Lua script (prune, count, add, expire) that Redis runs
  atomically: two gateways can never both take the fourth attempt.
- Keys expire on their own: attempts 31 days after the last write, refusals
  after ``REFUSAL_RETENTION`` (3 years: under the consent regime a refusal ends
  consent for good, and the CNIL's guidance keeps prospect data 3 years after
  the last contact), opt-outs never (an expired opt-out would let a call through;
  delete them on purpose, with the secret, when the law says so).
- Numbers are personal data, so key names hold an HMAC-SHA-256 of the E.164
  number, not the number: ``dncgw:<professional>:a:<32 hex>`` (attempts, sorted
  set scored by epoch ms), ``…:r:<h>`` (last refusal, epoch ms), ``…:o:<h>``
  (opt-out, epoch ms). The HMAC key comes from ``DNC_GATEWAY_STATE_SECRET``; without
  it the professional's name is used, which only hides numbers from casual eyes
  (``KEYS``, ``MONITOR``, a dump in a ticket): a phone number is brute-forced in
  minutes. Every gateway must use the same secret or counts would split, so the
  store writes a fingerprint of it (``dncgw:<professional>:keyid``) and refuses to
  work with a different one.
- Every call is bounded (50 ms connect and per operation by default, one retry on
  a fresh connection) and any Redis error becomes ``StateUnavailable``, which the
  service turns into the configured ``state_failure`` (closed: BLOCK). After a
  failure, calls fail fast for ``retry_interval`` seconds instead of each paying a
  timeout; the next call after that probes Redis again, so recovery is automatic.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.state.model import EMPTY_HISTORY, Cap, History
from gateway.state.store import ATTEMPT_RETENTION, StateUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

REFUSAL_RETENTION = timedelta(days=3 * 366)
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

# KEYS attempts, refusal, opt-out; ARGV[1]: how many attempts at most. One command instead of a pipeline of
# three: a third of the client-side work on the hot path. A missing value comes back as "" (Lua has no nil
# inside a table).
_HISTORY_LUA = """
local attempts = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[1]), -1, 'WITHSCORES')
return {attempts, redis.call('GET', KEYS[2]) or '', redis.call('GET', KEYS[3]) or ''}
"""

# KEYS[1] refusal; ARGV: at_ms, ttl_ms. Keeps the latest refusal (gateways may report out of order).
_REFUSAL_LUA = """
local prev = redis.call('GET', KEYS[1])
if (not prev) or tonumber(prev) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _dt(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


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

    def all_keys(self, key: int) -> tuple[str, str, str]:
        """Attempts, refusal and opt-out keys with one HMAC (the hot path reads all three)."""
        d = self.digest(key)
        return f"{self.prefix}a:{d}", f"{self.prefix}r:{d}", f"{self.prefix}o:{d}"

    def attempts(self, key: int) -> str:
        return f"{self.prefix}a:{self.digest(key)}"

    def refusal(self, key: int) -> str:
        return f"{self.prefix}r:{self.digest(key)}"

    def optout(self, key: int) -> str:
        return f"{self.prefix}o:{self.digest(key)}"


class Breaker:
    """Fail fast after an error, for ``interval`` seconds; pure (the clock is an argument)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.open_until: float | None = None
        self.last_error = ""

    @property
    def healthy(self) -> bool:
        return self.open_until is None

    def allows(self, now: float) -> bool:
        return self.open_until is None or now >= self.open_until

    def failed(self, now: float, error: str) -> bool:
        """Record a failure; True when this is a transition from healthy (worth one log line)."""
        was_healthy = self.open_until is None
        self.open_until = now + self.interval
        self.last_error = error
        return was_healthy

    def succeeded(self) -> bool:
        """Record a success; True when this ends an outage."""
        recovered = self.open_until is not None
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

    def __init__(self, url: str, *, secret: str | None = None, connect_timeout: float = 0.05,
                 op_timeout: float = 0.05, retry_interval: float = 0.5, max_connections: int = 64,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.metrics: Any = None  # an object with ``state_error(kind)``; set by the app
        self._monotonic = monotonic
        self._breaker = Breaker(retry_interval)
        self._secret = (secret if secret is not None else os.environ.get(SECRET_ENV, "")).encode()
        self._schemes: dict[str, KeyScheme] = {}
        self._verified: set[str] = set()
        self._verifying: dict[str, asyncio.Lock] = {}
        # A bounded pool: a burst of calls waits a moment for a connection instead of opening hundreds.
        # URL query parameters (?socket_timeout=0.2&socket_connect_timeout=0.2) win over these defaults.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=op_timeout * 2, socket_connect_timeout=connect_timeout,
            socket_timeout=op_timeout, retry=Retry(NoBackoff(), 1))
        kw = pool.connection_kwargs
        self._op_timeout = float(kw.get("socket_timeout") or op_timeout)
        self._connect_timeout = float(kw.get("socket_connect_timeout") or connect_timeout)
        self._redis: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self._history = self._redis.register_script(_HISTORY_LUA)
        self._attempt = self._redis.register_script(_ATTEMPT_LUA)
        self._refusal = self._redis.register_script(_REFUSAL_LUA)

    # -- health --------------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """False from a failed call until the next successful one (for /healthz and the page)."""
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
        now = self._monotonic()
        if not self._breaker.allows(now):
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
            self._fail(now, "config", str(e))
            raise
        except (RedisError, OSError, TimeoutError) as e:
            self._fail(now, _kind_of(e), f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            raise StateUnavailable(f"Redis {self.url_safe}: {self._breaker.last_error}") from e
        if self._breaker.succeeded():
            log.warning("state: Redis %s is back", self.url_safe)
        return result

    def _fail(self, now: float, kind: str, error: str) -> None:
        self._verified.clear()  # a restarted Redis may be empty: check the secret again
        if self._breaker.failed(now, error):
            log.error("state: Redis %s unavailable (%s): %s", self.url_safe, kind, error)
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
            flat, refusal, optout = await self._history(keys=s.all_keys(key), args=[MAX_ATTEMPTS_READ])
            if not flat and not refusal and not optout:
                return EMPTY_HISTORY
            return History(tuple(_dt(float(score)) for score in flat[1::2]),
                           _dt(int(refusal)) if refusal else None,
                           _dt(int(optout)) if optout else None)

        return await self._run(professional, op)

    async def record_attempt(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        at_ms = _ms(at)
        args: list[int | str] = [
            at_ms, _ms(at - ATTEMPT_RETENTION), _ms(cap.since) if cap else 0, cap.limit if cap else -1,
            f"{at_ms}:{secrets.token_hex(6)}", int(ATTEMPT_RETENTION.total_seconds() * 1000)]

        async def op(s: KeyScheme) -> bool:
            return bool(await self._attempt(keys=[s.attempts(key)], args=args))

        return await self._run(professional, op)

    async def record_refusal(self, professional: str, key: int, at: datetime) -> None:
        async def op(s: KeyScheme) -> None:
            await self._refusal(keys=[s.refusal(key)], args=[_ms(at), int(REFUSAL_RETENTION.total_seconds() * 1000)])

        await self._run(professional, op)

    async def record_optout(self, professional: str, key: int, at: datetime) -> None:
        async def op(s: KeyScheme) -> None:
            # NX: the first opt-out date is the one that counts; no expiry (see the module docstring).
            await self._redis.set(s.optout(key), _ms(at), nx=True)

        await self._run(professional, op)

    async def ping(self, professional: str = "_") -> bool:
        """One probe, for health checks; never raises."""
        try:
            await self._run(professional, lambda s: self._redis.ping(), verify=False)
        except StateUnavailable:
            return False
        return True

    async def start(self) -> None:
        """Connect once so that a wrong URL or secret is logged at start; a down Redis is not fatal."""
        try:
            await self._run("_", lambda s: self._redis.ping(), verify=False)
        except StateUnavailable as e:
            log.error("state: Redis not reachable at start (%s); calls get state_failure until it is", e)

    async def close(self) -> None:
        await self._redis.aclose()
