"""Where the Redis call history lives: one server, a Sentinel-watched primary, or a Cluster (the state URL).

- ``redis://[:password@]host:port/db`` (``rediss://`` for TLS): one server; if it dies, calls fail closed until
  it is back.
- ``redis+sentinel://[:password@]host:26379,host2:26379,host3:26379/service/db``: the primary that the Sentinels
  name ``service``; when it dies they promote a replica and the gateway follows, without a restart. The password
  is the data nodes'; ``?sentinel_password=`` is the Sentinels' own, when they have one.
- ``redis+cluster://[:password@]host:port,host2:port/``: a Redis Cluster (database 0 only, as Cluster has no
  other); the keys of one number share a hash slot (``{…}`` tags), so the per-call script runs on one node.

Query parameters ``socket_timeout`` and ``socket_connect_timeout`` (seconds) win over ``[gateway] state_*``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote


class Kind(enum.StrEnum):
    SINGLE = "redis"
    SENTINEL = "redis+sentinel"
    CLUSTER = "redis+cluster"


SCHEMES = ("redis://", "rediss://", "redis+sentinel://", "redis+cluster://")


@dataclass(frozen=True, slots=True)
class Topology:
    kind: Kind
    nodes: tuple[tuple[str, int], ...]  # the server, the Sentinels, or the Cluster's start-up nodes
    db: int = 0
    service: str = ""  # Sentinel: the primary's name in the Sentinels' configuration
    username: str | None = None
    password: str | None = None
    tls: bool = False
    options: dict[str, str] = field(default_factory=dict)  # the query string

    @property
    def safe(self) -> str:
        """The URL without its password, for logs."""
        hosts = ",".join(f"{h}:{p}" for h, p in self.nodes)
        scheme = "rediss" if self.tls and self.kind is Kind.SINGLE else str(self.kind)
        where = f"{self.service}/{self.db}" if self.kind is Kind.SENTINEL else str(self.db)
        return f"{scheme}://{hosts}/{where}"

    def timeout(self, name: str, default: float) -> float:
        value = self.options.get(name)
        return float(value) if value else default


def _node(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not sep:
        host, port = text, str(default_port)
    host = host.strip("[]")
    if not host:
        raise ValueError(f"no host in {text!r}")
    return host, int(port)


def parse(url: str) -> Topology:
    """The topology a state URL names; ValueError with the reason when it names none."""
    scheme, sep, rest = url.partition("://")
    if not sep or f"{scheme}://" not in SCHEMES:
        raise ValueError(f"{url!r}: expected redis://, rediss://, redis+sentinel:// or redis+cluster://")
    rest, _, query = rest.partition("?")
    options = dict(parse_qsl(query))
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        userinfo, hostpart = "", rest
    username = password = None
    if userinfo:
        user, colon, pw = userinfo.partition(":")
        username, password = (unquote(user) or None, unquote(pw) or None) if colon else (None, unquote(user))
    hosts, _, path = hostpart.partition("/")
    tls = scheme == "rediss"
    kind = Kind.SINGLE if scheme in ("redis", "rediss") else Kind(scheme)
    default_port = 26379 if kind is Kind.SENTINEL else 6379
    nodes = tuple(_node(h.strip(), default_port) for h in hosts.split(",") if h.strip())
    if not nodes:
        raise ValueError(f"{url!r}: no host")
    parts = [p for p in path.split("/") if p]
    service, db = "", 0
    if kind is Kind.SENTINEL:
        if not parts:
            raise ValueError(f"{url!r}: no service name (redis+sentinel://host:26379,host2:26379/mymaster/0)")
        service = unquote(parts[0])
        db = int(parts[1]) if len(parts) > 1 else 0
    elif parts:
        db = int(parts[0])
    if kind is Kind.SINGLE and len(nodes) > 1:
        raise ValueError(f"{url!r}: several hosts: use redis+sentinel:// or redis+cluster://")
    if kind is Kind.CLUSTER and db != 0:
        raise ValueError(f"{url!r}: Redis Cluster has database 0 only")
    return Topology(kind, nodes, db, service, username, password, tls, options)
