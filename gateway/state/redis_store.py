"""Redis state backend: call history shared by every gateway of a professional.

Why Redis and how it is used:

- One round trip per call: :meth:`RedisState.read_and_count` reads the number's
  history and, when the service says the call would be counted (the engine's
  decision on an empty history, see ``gateway.callcheck``), counts it in the same
  script, atomically, against the cap the engine computed. The engine then
  decides on the history as it was before that count; only when its decision
  does not count the call after all (rare: a refusal or an opt-out makes the
  script leave the count to a second trip) is there a second round trip. The
  script is sent on one multiplexed connection (``gateway/state/redis_link.py``:
  pre-encoded keys, hiredis' parser), about a tenth of redis-py's CPU per command.
- No single point of failure: ``redis+sentinel://`` follows the primary the
  Sentinels name (a failover is followed without a restart), ``redis+cluster://``
  spreads the numbers over a Redis Cluster, each number's keys hash-tagged into
  one slot (see ``gateway/state/redis_topology.py``).

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
  number, not the number (16 bytes of it, base64url: 22 characters):
  ``dncgw:<professional>:a:<h>`` (attempts, a sorted set scored by stamps, whole
  seconds since ``model.EPOCH`` as the embedded store holds them, with integer
  members: kept small, it stays a listpack of 12 bytes an attempt), ``…:r:<h>``
  (last refusal, epoch ms), ``…:o:<h>`` (opt-out, epoch ms), ``…:c:<h>`` (the
  latest consent recorded at a call or over the API, epoch ms, kept like
  refusals); on a Cluster the hash is a hash tag, ``…:a:{<h>}``, so
  that the four keys of a number share a slot (a single server or a Sentinel
  set keeps the untagged names: no migration from one to the other). The HMAC
  key comes from ``DNC_GATEWAY_STATE_SECRET``; without
  it the professional's name is used, which only hides numbers from casual eyes
  (``KEYS``, ``MONITOR``, a dump in a ticket): a phone number is brute-forced in
  minutes. Every gateway must use the same secret or counts would split, so the
  store writes a fingerprint of it (``dncgw:<professional>:keyid``, with the key
  layout: ``<fingerprint>:2``) and refuses to work with a different one, or with
  keys of the layout before issue 17 (``gateway/state/redis_migrate.py`` converts
  them).
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
import base64
import hashlib
import hmac
import logging
import os
import time
from array import array
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.aio import cancel
from gateway.clockguard import SLACK as CLOCK_SLACK
from gateway.state import marker as marker_mod
from gateway.state.model import (
    EMPTY_HISTORY,
    REDIS_DEFAULTS,
    Cap,
    Counted,
    History,
    RedisSettings,
    Retention,
    StateLost,
    StateUnavailable,
    Trip,
    stamp,
)
from gateway.state.model import EPOCH as EPOCH_
from gateway.state.redis_link import Link, LinkError, bulk, command
from gateway.state.redis_topology import Kind, Topology, parse

log = logging.getLogger(__name__)

HISTORY_CHUNK = 256  # numbers per pipelined round trip of histories(): well under the op timeout

T = TypeVar("T")

MAX_ATTEMPTS_READ = 1000  # a history read never pulls more than this many attempts (uncapped campaigns)
SECRET_ENV = "DNC_GATEWAY_STATE_SECRET"
KEY_CACHE = 65_536  # numbers whose encoded keys are kept (a redial pays no HMAC); cleared when full
# The key layout: 2 since issue 17 (22-character digests, attempts scored by stamps with integer members). The
# ``keyid`` key holds "<fingerprint>:<layout>"; layout 1 held the fingerprint alone (``redis_migrate`` converts).
LAYOUT = 2

# An attempt is a sorted-set entry scored by its stamp (whole seconds since model.EPOCH, rounded up: the embedded
# store's unit) whose member is an integer too: the stamp, or the next free integer after it when the number
# already has an attempt with that member (two calls in one second). A listpack holds each as a 32-bit integer
# (6 bytes with its length byte; a 13-digit millisecond would take 10, the 26-character text member of before
# 28): 12 bytes an attempt. The script picks the member and returns it, to take a provisional count back.
# ``horizon``: what a count prunes is judged against the Redis server's own clock, never beyond it by more than a
# week: a gateway whose clock jumped ahead (42 days, 6 years) must not prune attempts a right clock still counts
# (gateway/clockguard.py says why; the server's TIME is the independent clock here).
_ADD_LUA = """
local function horizon(h, ttl)
  local t = redis.call('TIME')
  local cap = tonumber(t[1]) - EPOCH_S - math.floor(tonumber(ttl) / 1000) + SLACK_S
  local v = tonumber(h)
  if v > cap then return cap end
  return v
end
local function add(key, at, ttl)
  local member = tonumber(at)
  while redis.call('ZSCORE', key, member) do member = member + 1 end
  redis.call('ZADD', key, at, member)
  redis.call('PEXPIRE', key, ttl)
  return member
end
""".replace("EPOCH_S", str(int(EPOCH_.timestamp()))).replace("SLACK_S", str(int(CLOCK_SLACK)))

# KEYS[1] attempts; ARGV: at, horizon, since (stamps), limit (-1: no cap), ttl_ms.
# Returns 1 when the attempt was counted, 0 when the cap was already reached.
_ATTEMPT_LUA = _ADD_LUA + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. horizon(ARGV[2], ARGV[5]))
local limit = tonumber(ARGV[4])
if limit >= 0 and redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf') >= limit then
  return 0
end
add(KEYS[1], ARGV[1], ARGV[5])
return 1
"""

# The call's one round trip. KEYS attempts, refusal, opt-out, consent; ARGV: mode ("1": count, "0": read only),
# at, horizon, since (stamps), limit (-1: no cap), ttl_ms, how many attempts at most to return.
# Returns {the attempts' stamps before this call (integers, oldest first), refusal or "", opt-out or "", Counted,
# consent or "", the member counted (0: none)}: the History is built from integers, with no parsing per attempt.
# The count is left to the caller (NOT_TRIED, 2) when the number has a refusal or an opt-out: the decision may
# then block the call, and a count taken back would have been seen by other gateways meanwhile. A missing value
# comes back as "" (Lua has no nil inside a table).
_TRIP_LUA = _ADD_LUA + """
local refusal = redis.call('GET', KEYS[2]) or ''
local optout = redis.call('GET', KEYS[3]) or ''
local counting = ARGV[1] == '1'
if counting then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. horizon(ARGV[3], ARGV[6])) end
local found = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[7]), -1, 'WITHSCORES')
local stamps = {}
for i = 2, #found, 2 do stamps[i / 2] = tonumber(found[i]) end
local counted, member = 2, 0
if counting and refusal == '' and optout == '' then
  local limit = tonumber(ARGV[5])
  if limit >= 0 and redis.call('ZCOUNT', KEYS[1], ARGV[4], '+inf') >= limit then
    counted = 0
  else
    member = add(KEYS[1], ARGV[2], ARGV[6])
    counted = 1
  end
end
return {stamps, refusal, optout, counted, redis.call('GET', KEYS[4]) or '', member}
"""
_TRIP_SHA = hashlib.sha1(_TRIP_LUA.encode()).hexdigest().encode()
# The command's fixed parts, encoded once: 14 arguments (EVALSHA, the SHA, 4, the 4 keys, the 7 ARGV).
_TRIP_HEAD = b"*14\r\n" + bulk(b"EVALSHA") + bulk(_TRIP_SHA) + bulk(b"4")
_TRIP_EVAL_HEAD = b"*14\r\n" + bulk(b"EVAL") + bulk(_TRIP_LUA.encode()) + bulk(b"4")  # after a NOSCRIPT
_READ_ARGS = bulk(b"0") + bulk(b"0") + bulk(b"0") + bulk(b"0") + bulk(b"-1") + bulk(b"0") \
    + bulk(str(MAX_ATTEMPTS_READ).encode())
_PING = command(b"PING")

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


def _span_s(d: timedelta) -> int:
    return int(d.total_seconds())


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the time of a read only (unused by the script)


class KeyScheme:
    """Key names of one professional; the number appears only as a keyed hash.

    ``tagged`` (Redis Cluster): the hash is a hash tag, ``…:a:{<h>}``, so a number's four keys share a slot.
    """

    def __init__(self, professional: str, secret: bytes, *, tagged: bool = False) -> None:
        self.prefix = f"dncgw:{professional}:"
        self._secret = secret
        self.tagged = tagged
        self.keyid = self.prefix + "keyid"
        # A fingerprint, not the secret: lets gateways detect a mismatch without revealing it.
        self.fingerprint = hashlib.sha256(b"dncgw-keyid:" + secret).hexdigest()[:16]
        self.keyid_value = f"{self.fingerprint}:{LAYOUT}"  # what ``keyid`` holds: the secret's and the layout's
        self._encoded: dict[int, bytes] = {}

    def digest(self, key: int) -> str:
        """16 bytes of the number's HMAC, base64url (22 characters; 32 in hex before: see ``LAYOUT``)."""
        raw = hmac.new(self._secret, str(key).encode(), hashlib.sha256).digest()[:16]
        d = base64.urlsafe_b64encode(raw)[:22].decode()
        return f"{{{d}}}" if self.tagged else d

    def all_keys(self, key: int) -> tuple[str, str, str, str]:
        """Attempts, refusal, opt-out and consent keys with one HMAC (the hot path reads all four)."""
        d = self.digest(key)
        return f"{self.prefix}a:{d}", f"{self.prefix}r:{d}", f"{self.prefix}o:{d}", f"{self.prefix}c:{d}"

    def encoded(self, key: int) -> bytes:
        """The four keys as the script's KEYS, in RESP, kept for the next call to the same number."""
        found = self._encoded.get(key)
        if found is None:
            if len(self._encoded) >= KEY_CACHE:
                self._encoded.clear()
            found = self._encoded[key] = b"".join(bulk(k.encode()) for k in self.all_keys(key))
        return found

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


def _history(stamps: list[int], refusal: bytes, optout: bytes, consent: bytes) -> History:
    if not stamps and not refusal and not optout and not consent:
        return EMPTY_HISTORY
    return History(stamps=array("I", stamps), last_refusal=_dt(int(refusal)) if refusal else None,
                   opted_out_at=_dt(int(optout)) if optout else None,
                   consent_at=_dt(int(consent)) if consent else None)


def _client(topo: Topology, settings: RedisSettings, connect_timeout: float, op_timeout: float,
            url: str) -> aioredis.Redis | RedisCluster:
    """redis-py's client for the topology: set-up, refusals, opt-outs, scrubs (everything but the hot path)."""
    if topo.kind is Kind.CLUSTER:
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in topo.nodes], username=topo.username,
            password=topo.password, socket_connect_timeout=connect_timeout, socket_timeout=op_timeout,
            max_connections=settings.max_connections, retry=Retry(NoBackoff(), 1), require_full_coverage=True)
    if topo.kind is Kind.SENTINEL:
        sentinel_kw: dict[str, Any] = {"socket_connect_timeout": connect_timeout, "socket_timeout": op_timeout}
        if topo.options.get("sentinel_password"):
            sentinel_kw["password"] = topo.options["sentinel_password"]
        # redis-py leaves Sentinel's constructor untyped.
        sentinel = cast(Any, Sentinel)(
            list(topo.nodes), sentinel_kwargs=sentinel_kw, socket_connect_timeout=connect_timeout,
            socket_timeout=op_timeout, username=topo.username, password=topo.password, db=topo.db,
            retry=Retry(NoBackoff(), 1))
        return cast(aioredis.Redis, sentinel.master_for(topo.service, max_connections=settings.max_connections))
    # A bounded pool: a burst of calls waits a moment for a connection instead of opening hundreds.
    # URL query parameters (?socket_timeout=0.2&socket_connect_timeout=0.2) win over these defaults.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=settings.max_connections, timeout=settings.op_timeout * 2,
        socket_connect_timeout=connect_timeout, socket_timeout=op_timeout, retry=Retry(NoBackoff(), 1))
    return aioredis.Redis(connection_pool=pool)


class RedisState:
    """The ``StateStore`` on Redis (``state = "redis://host:port/db"``, ``redis+sentinel://…``, ``redis+cluster://…``)."""

    one_trip = True  # the service reads and counts with read_and_count (see gateway.callcheck: the TRIP need)

    def __init__(self, url: str, *, retention: Retention, secret: str | None = None,
                 settings: RedisSettings = REDIS_DEFAULTS, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.topology = topo = parse(url)
        self.retention = retention
        self.settings = settings
        self.metrics: ErrorCounter | None = None  # set by the app
        self._monotonic = monotonic
        self._breaker = Breaker(settings.retry_interval, settings.failures_to_open)
        self._lengthening: set[asyncio.Task[None]] = set()
        self._secret = (secret if secret is not None else os.environ.get(SECRET_ENV, "")).encode()
        self._schemes: dict[str, KeyScheme] = {}
        self._verified: set[str] = set()
        self.lost = ""  # why the store is not the one the gateways wrote (gateway.state.marker)
        self.lost_count = 0
        self.expected_marker: str | None = None
        self._lost_checked = 0.0
        self._verifying: dict[str, asyncio.Lock] = {}
        self._op_timeout = topo.timeout("socket_timeout", settings.op_timeout)
        self._connect_timeout = topo.timeout("socket_connect_timeout", settings.connect_timeout)
        self._redis = _client(topo, settings, self._connect_timeout, self._op_timeout, url)
        self._attempt = self._redis.register_script(_ATTEMPT_LUA)
        self._trip = self._redis.register_script(_TRIP_LUA)
        self._refusal = self._redis.register_script(_REFUSAL_LUA)
        self._lengthen = self._redis.register_script(_LENGTHEN_LUA)
        # The hot path's multiplexed connection (not for TLS or a Cluster: those go through redis-py's client).
        self._link: Link | None = None
        if topo.kind is not Kind.CLUSTER and not topo.tls:
            # Twice the per-round-trip timeout: the call's budget is unchanged (it made two round trips, each
            # retried once by redis-py), and Redis ends a pause on its 100 ms cron, so a 100 ms stall of a busy
            # host takes up to 200 ms to clear: slow, not failed.
            self._link = Link(self._primary, connect_timeout=self._connect_timeout, op_timeout=self._op_timeout * 2,
                              setup=self._link_setup(topo), check=self._check_role if topo.kind is Kind.SENTINEL
                              else None)

    def expect_marker(self, professional: str, marker: str | None) -> None:
        """The marker Redis must hold (gateway.state.marker): read again on every new hot-path connection, so
        that a Redis restarted empty is noticed at the first call after it, before its empty history decides."""
        self.expected_marker = marker
        link = self._link
        if link is None or marker is None:
            return
        base = self._link_setup(self.topology)
        role = self._check_role if self.topology.kind is Kind.SENTINEL else None

        def check(replies: list[Any]) -> None:
            if role is not None:
                role(replies[:-1])
            got = replies[-1]
            why = marker_mod.judge(self.expected_marker, got.decode() if isinstance(got, bytes) else got,
                                   self.url_safe)
            if why:
                marker_mod.mark_lost(self, why)
                raise LinkError(why)

        link.set_up_with([*base, command(b"GET", (self.scheme(professional).prefix + "marker").encode())], check)

    @staticmethod
    def _link_setup(topo: Topology) -> list[bytes]:
        setup = []
        if topo.password is not None:
            auth = (topo.username.encode(),) if topo.username else ()
            setup.append(command(b"AUTH", *auth, topo.password.encode()))
        if topo.db:
            setup.append(command(b"SELECT", str(topo.db).encode()))
        setup.append(command(b"SCRIPT", b"LOAD", _TRIP_LUA.encode()))
        if topo.kind is Kind.SENTINEL:
            setup.append(command(b"ROLE"))
        return setup

    @staticmethod
    def _check_role(replies: list[Any]) -> None:
        """A server the Sentinels named primary a moment ago may be a replica by now: never count there."""
        role = replies[-1]
        if not (isinstance(role, list) and role and role[0] == b"master"):
            raise LinkError(f"the server the Sentinels named is not the primary (ROLE {role!r:.60})")

    async def _primary(self) -> tuple[str, int]:
        """Where the hot path connects: the server, or the primary the Sentinels name now."""
        topo = self.topology
        if topo.kind is Kind.SENTINEL:
            pool = cast(Any, self._redis).connection_pool
            host, port = await pool.sentinel_manager.discover_master(topo.service)
            return str(host), int(port)
        return topo.nodes[0]

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
            s = self._schemes[professional] = KeyScheme(professional, self._secret or professional.encode(),
                                                        tagged=self.topology.kind is Kind.CLUSTER)
        return s

    async def _verify_secret(self, scheme: KeyScheme) -> None:
        """Refuse to count under a different secret than the other gateways (counts would split)."""
        # One check for the burst of calls that arrives after a (re)connection, not one per call.
        async with self._verifying.setdefault(scheme.prefix, asyncio.Lock()):
            if scheme.prefix not in self._verified:
                await self._check_fingerprint(scheme)

    async def _check_fingerprint(self, scheme: KeyScheme) -> None:
        if self.expected_marker is not None:
            # After every (re)connection: a Redis restarted empty has lost caps, cooldowns and opt-outs.
            found = await self._redis.get(scheme.prefix + "marker")
            found = found.decode() if isinstance(found, bytes) else found
            why = marker_mod.judge(self.expected_marker, found, self.url_safe)
            if why:
                marker_mod.mark_lost(self, why)
                raise StateLost(why)
        await self._redis.set(scheme.keyid, scheme.keyid_value, nx=True)
        got = await self._redis.get(scheme.keyid)
        found = got.decode() if isinstance(got, bytes) else got
        if found is not None and found != scheme.keyid_value:
            fingerprint, _, layout = found.partition(":")
            if fingerprint == scheme.fingerprint and layout != str(LAYOUT):
                # The same secret, keys of another layout: reading the new names would find no history (opt-outs,
                # refusals, counts): fail closed until the migration is done.
                what = "being migrated" if layout == "migrating" else "in key layout 1, written before this version"
                raise StateUnavailable(
                    f"the Redis keys of {scheme.prefix}* are {what} (key {scheme.keyid}): refusing to count until "
                    f"`dnc-gateway state migrate URL` (python -m gateway.state.redis_migrate URL) has run "
                    f"(docs/call-history.md: upgrading a Redis history)")
            raise StateUnavailable(
                f"{SECRET_ENV} differs from the one the other gateways use (key {scheme.keyid}): "
                f"refusing to count attempts under another key")
        self._verified.add(scheme.prefix)

    async def _still_lost(self, professional: str) -> None:
        """While lost: StateLost (fail closed, whatever state_failure says), except once a second, when the marker
        is read again (a ``state rebuild`` from another process writes it back)."""
        now = self._monotonic()
        if now - self._lost_checked < 1.0 or self.expected_marker is None:
            raise StateLost(self.lost)
        self._lost_checked = now
        try:
            async with asyncio.timeout(self._connect_timeout + self._op_timeout):
                found = await self._redis.get(self.scheme(professional).prefix + "marker")
        except (RedisError, OSError, TimeoutError):
            raise StateLost(self.lost) from None
        found = found.decode() if isinstance(found, bytes) else found
        if marker_mod.judge(self.expected_marker, found, self.url_safe):
            raise StateLost(self.lost)
        log.warning("state: Redis %s holds this gateway's marker again (rebuilt): calls are decided again",
                    self.url_safe)
        self.lost = ""
        self._verified.clear()

    async def _run(self, professional: str, op: Callable[[KeyScheme], Awaitable[T]], *, verify: bool = True) -> T:
        if self.lost and verify:
            await self._still_lost(professional)
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
            raise self._unavailable(e) from e
        if self._breaker.succeeded():
            log.warning("state: Redis %s is back", self.url_safe)
        return result

    def _unavailable(self, e: Exception) -> StateUnavailable:
        """A round trip that failed: counted (breaker, metric), and the error the caller raises."""
        error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        self._fail(_kind_of(e), error)
        if self.lost:  # found lost on the way (the hot path's set-up read the marker): fail closed
            return StateLost(self.lost)
        return StateUnavailable(f"Redis {self.url_safe}: {error}")

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
        return self.topology.safe

    # -- the hot path: one round trip per call -----------------------------------------------------------

    async def read_and_count(self, professional: str, key: int, at: datetime, cap: Cap | None,
                             count: bool) -> Trip:
        """The number's history before this call and, with ``count``, the attempt counted against ``cap`` in the
        same atomic script (see ``Counted`` for what the reply says). One round trip."""
        if self.lost:
            await self._still_lost(professional)
        if not self._breaker.allows(self._monotonic()):
            self._count("circuit_open")
            raise StateUnavailable(f"Redis unavailable (retrying shortly): {self._breaker.last_error}")
        scheme = self._schemes.get(professional) or self.scheme(professional)
        if count:
            t = stamp(at)
            keep = self.retention.attempts  # read per call: a longer retention set by a reload applies at once
            args = (bulk(b"1") + bulk(b"%d" % t) + bulk(b"%d" % (t - _span_s(keep)))
                    + bulk(b"%d" % stamp(cap.since) if cap is not None else b"0")
                    + bulk(b"%d" % cap.limit if cap is not None else b"-1")
                    + bulk(b"%d" % _span_ms(keep)) + bulk(b"%d" % MAX_ATTEMPTS_READ))
        else:
            args = _READ_ARGS
        link = self._link
        try:
            if scheme.prefix not in self._verified:
                async with asyncio.timeout(self._connect_timeout * 2 + self._op_timeout * 4):
                    await self._verify_secret(scheme)
            if link is not None:
                keys = scheme.encoded(key)
                reply = await link.call(_TRIP_HEAD + keys + args)
                if isinstance(reply, hiredis.ReplyError):
                    if not str(reply).startswith("NOSCRIPT"):
                        raise RedisError(str(reply))
                    reply = await link.call(_TRIP_EVAL_HEAD + keys + args)  # flushed scripts: send it whole
                    if isinstance(reply, hiredis.ReplyError):
                        raise RedisError(str(reply))
            else:
                async with asyncio.timeout(self._connect_timeout * 2 + self._op_timeout * 4):
                    reply = await self._trip(keys=scheme.all_keys(key), args=self._trip_args(count, at, cap))
        except StateUnavailable as e:
            self._fail("config", str(e))
            raise
        except (RedisError, OSError, TimeoutError) as e:
            raise self._unavailable(e) from e
        if self._breaker.failures and self._breaker.succeeded():
            log.warning("state: Redis %s is back", self.url_safe)
        stamps, refusal, optout, counted, consent, member = reply
        return Trip(_history(stamps, refusal, optout, consent), Counted(counted), b"%d" % member if member else b"")

    def _trip_args(self, count: bool, at: datetime, cap: Cap | None) -> list[int | bytes]:
        """The script's ARGV for redis-py (Cluster, TLS): what ``read_and_count`` packs itself on the link."""
        if not count:
            return [0, 0, 0, 0, -1, 0, MAX_ATTEMPTS_READ]
        keep = self.retention.attempts
        t = stamp(at)
        return [1, t, t - _span_s(keep), stamp(cap.since) if cap else 0, cap.limit if cap else -1,
                _span_ms(keep), MAX_ATTEMPTS_READ]

    async def forget_attempt(self, professional: str, key: int, member: bytes) -> None:
        """Take back an attempt ``read_and_count`` counted, when the decision does not count the call after all."""
        async def op(s: KeyScheme) -> None:
            await self._redis.zrem(s.attempts(key), member)

        await self._run(professional, op)

    # -- the StateStore protocol -----------------------------------------------------------------------

    async def history(self, professional: str, key: int) -> History:
        return (await self.read_and_count(professional, key, _EPOCH, None, False)).history

    def known_keys(self, professional: str) -> Collection[int] | None:
        return None  # keys hold an HMAC of the number, never the number: ask by number

    async def histories(self, professional: str, keys: Sequence[int]) -> dict[int, History]:
        """The non-empty histories of ``keys`` (a scrub's block of numbers), ``HISTORY_CHUNK`` reads in flight at
        a time: on the multiplexed connection each chunk goes out as one pipelined write."""
        found: dict[int, History] = {}
        # Through redis-py (Cluster, TLS) each read in flight holds a pooled connection: stay within the pool.
        step = HISTORY_CHUNK if self._link is not None else max(1, self.settings.max_connections // 2)
        for i in range(0, len(keys), step):
            chunk = keys[i : i + step]
            trips = await asyncio.gather(*(self.read_and_count(professional, k, _EPOCH, None, False) for k in chunk))
            for key, trip in zip(chunk, trips, strict=True):
                if trip.history is not EMPTY_HISTORY:
                    found[key] = trip.history
        return found

    async def record_attempt(self, professional: str, key: int, at: datetime, cap: Cap | None = None) -> bool:
        t = stamp(at)
        keep = self.retention.attempts  # read per call: a longer retention set by a reload applies at once
        args: list[int | bytes] = [
            t, t - _span_s(keep), stamp(cap.since) if cap else 0, cap.limit if cap else -1, _span_ms(keep)]

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

    @property
    def persistent(self) -> bool:
        return True

    def mark_lost(self) -> None:
        """Nothing to drop: every read asks Redis, and the marker is checked again after each reconnection."""

    async def read_marker(self, professional: str) -> str | None:
        got = await self._run(professional, lambda s: self._redis.get(s.prefix + "marker"), verify=False)
        return got.decode() if isinstance(got, bytes) else got

    async def write_marker(self, professional: str, marker: str, *, only_if_absent: bool = False) -> str:
        await self._run(professional, lambda s: self._redis.set(s.prefix + "marker", marker, nx=only_if_absent),
                        verify=False)
        held = await self.read_marker(professional) or marker
        self.lost = ""
        self._verified.clear()
        return held

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
        if self._link is not None:
            try:
                await self._link.call(_PING)
            except (RedisError, OSError, TimeoutError) as e:
                log.error("state: the hot-path connection to Redis %s failed at start: %s", self.url_safe, e)

    async def warm(self) -> int:
        """Open ``warm_connections`` pooled connections (bounded by the pool); returns how many are open.

        A burst right after start would otherwise open them itself, each connect competing with the calls.
        (A Cluster client opens its connections per node as calls need them: 0.)
        """
        if isinstance(self._redis, RedisCluster):
            return 0
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
                        lengthened += await self._lengthen_batch(batch, by, cap)
                        batch = []
                if batch:
                    lengthened += await self._lengthen_batch(batch, by, cap)
            except (RedisError, OSError, TimeoutError) as e:
                log.error("state: could not lengthen the TTLs of %s keys by %s (%d done): %s", kind, by, lengthened, e)
                continue
            log.info("state: retention of %s keys lengthened by %s on %d keys", kind, by, lengthened)

    async def _lengthen_batch(self, batch: list[str], by: timedelta, cap: timedelta) -> int:
        args = [_span_ms(by), _span_ms(cap)]
        if isinstance(self._redis, RedisCluster):  # a script's keys must share a slot: one key a script
            return sum(int(n) for n in await asyncio.gather(*(self._lengthen(keys=[k], args=args) for k in batch)))
        return int(await self._lengthen(keys=batch, args=args))

    async def close(self) -> None:
        for task in list(self._lengthening):
            await cancel(task)
        if self._link is not None:
            self._link.close()
        # The client was given its pool (see __init__): closing the client alone leaves the pool's connections
        # open, each socket then lingering until the garbage collector finds it.
        if isinstance(self._redis, RedisCluster):
            await self._redis.aclose()
        else:
            await self._redis.aclose(close_connection_pool=True)
