"""docker-compose.yml without a Docker engine: valid against the Compose Specification's JSON Schema,
every mounted path and build file present, ports, networks and health checks consistent with the
gateway's own config (deploy/gateway/gateway.toml), which must load with all its lists.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")

from gateway.config import parse  # noqa: E402
from gateway.numbers import Normaliser  # noqa: E402
from gateway.registry.holder import RegistryHolder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
GATEWAY_TOML = ROOT / "deploy" / "gateway" / "gateway.toml"
GATEWAYS = ("gw1", "gw2")

# Paths written by other parts of the project: a missing one skips its check with a message instead of failing.
OTHERS = ("asterisk-config", "deploy/prometheus", "deploy/grafana")


def load_compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


COMPOSE_DOC = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE_DOC["services"]


def bind_mounts() -> list[tuple[str, str, str]]:
    """(service, host path relative to the repo, container path) of every bind mount."""
    out = []
    for name, svc in SERVICES.items():
        for vol in svc.get("volumes", []):
            src, dst = (vol["source"], vol["target"]) if isinstance(vol, dict) else vol.split(":")[:2]
            if src.startswith(("./", "/", "../")):
                out.append((name, os.path.normpath(src), dst))
    return out


def seconds(duration: str) -> float:
    """A Compose duration (``1m30s``, ``15s``, ``500ms``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def gateway_config(path: Path = GATEWAY_TOML) -> Any:
    """deploy/gateway/gateway.toml with the lists volume pointed at the repository's copy."""
    text = path.read_text().replace("/srv/dnc-lists", str(ROOT / "deploy" / "gateway" / "lists"))
    return parse(text, str(path), base=path.parent, data_dir=ROOT / "deploy" / "gateway")


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(COMPOSE_DOC), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    # The schema really is strict: a misspelt key is caught.
    broken = {"services": {"gw1": {"imagee": "x"}}}
    assert list(validator.iter_errors(broken))


def test_the_stack_has_every_part() -> None:
    assert set(SERVICES) >= {"asterisk", "gw1", "gw2", "redis", "prometheus", "grafana"}
    assert SERVICES["asterisk"]["build"]["context"] == "docker/asterisk"
    for gw in GATEWAYS:
        svc = SERVICES[gw]
        assert svc["build"] == {"context": ".", "dockerfile": "docker/gateway/Dockerfile"}
        assert svc["environment"]["DNC_GATEWAY_INSTANCE"] == gw
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
    # Both gateways must hash Redis keys with the same secret, or their counts would split.
    assert SERVICES["gw1"]["environment"]["DNC_GATEWAY_STATE_SECRET"] == \
        SERVICES["gw2"]["environment"]["DNC_GATEWAY_STATE_SECRET"]


@pytest.mark.parametrize(("service", "source", "target"), bind_mounts(),
                         ids=[f"{s}:{src}" for s, src, _ in bind_mounts()])
def test_every_mounted_path_exists(service: str, source: str, target: str) -> None:
    path = ROOT / source
    if not path.exists() and source.startswith(OTHERS):
        pytest.skip(f"{source} (mounted by {service}) is not in the repository yet: written by another part")
    assert path.exists(), f"{service} mounts ./{source}, which does not exist"


def test_build_files_exist_and_use_the_intended_bases() -> None:
    gw = (ROOT / "docker" / "gateway" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", gw, re.M)
    assert (ROOT / "docker" / "gateway" / "Dockerfile.dockerignore").is_file()
    ast = (ROOT / "docker" / "asterisk" / "Dockerfile").read_text()
    # Ubuntu 24.04 packages Asterisk 20; the build also refuses anything older than 20.
    assert re.search(r"^FROM ubuntu:24\.04\b", ast, re.M)
    assert "asterisk -V" in ast
    entry = ROOT / "docker" / "asterisk" / "entrypoint.sh"
    assert entry.is_file() and os.access(entry, os.X_OK)
    for dockerfile, context in ((ROOT / "docker" / "gateway" / "Dockerfile", ROOT),
                                (ROOT / "docker" / "asterisk" / "Dockerfile", ROOT / "docker" / "asterisk")):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY ") and "--from=" not in line:
                for src in line.split()[1:-1]:
                    assert (context / src).exists(), f"{dockerfile.name}: COPY {src}: not in the build context"


def test_gateway_config_loads_with_all_its_lists() -> None:
    config = gateway_config()
    assert config.gateway.state == "redis://redis:6379/0"
    assert config.gateway.state_failure == "closed"
    holder = RegistryHolder(config.lists, Normaliser(config.gateway.home_country, config.gateway.outside_line))
    result = holder.load_all()
    assert result.ok, result.failed
    assert set(result.loaded) == set(config.lists)


def test_ports_and_addresses_agree_with_the_gateway_config() -> None:
    config = gateway_config()
    subnet = ipaddress.ip_network(COMPOSE_DOC["networks"]["dnc"]["ipam"]["config"][0]["subnet"])
    addresses = {}
    for name, svc in SERVICES.items():
        addr = ipaddress.ip_address(svc["networks"]["dnc"]["ipv4_address"])
        assert addr in subnet, f"{name}: {addr} is outside {subnet}"
        addresses[name] = addr
    assert len(set(addresses.values())) == len(addresses), "two services share an address"
    # Asterisk must be allowed to open FastAGI sessions; the gateways listen on every interface.
    assert any(addresses["asterisk"] in net for net in config.agi.allow)
    assert config.agi.listen.host == "0.0.0.0" and config.web.listen.host == "0.0.0.0"
    published: list[str] = []
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            host_part, _, container = str(port).rpartition(":")
            published.append(f"{host_part}/{container.split('/')[-1] if '/' in container else 'tcp'}")
            if name in GATEWAYS:
                # The web API is published on loopback only; FastAGI is not published at all.
                assert host_part.startswith("127.0.0.1:"), port
                assert container == str(config.web.listen.port)
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"
    assert not any(str(config.agi.listen.port) in str(p) for gw in GATEWAYS for p in SERVICES[gw]["ports"])


def test_health_checks_probe_what_each_service_serves() -> None:
    config = gateway_config()
    for name, svc in SERVICES.items():
        hc = svc.get("healthcheck")
        assert hc, f"{name} has no healthcheck"
        assert hc["test"][0] in ("CMD", "CMD-SHELL")
        assert seconds(hc["timeout"]) < seconds(hc["interval"])
    for gw in GATEWAYS:
        probe = " ".join(SERVICES[gw]["healthcheck"]["test"])
        assert f"127.0.0.1:{config.web.listen.port}/healthz" in probe
        # Docker's stop must leave the drain time to finish calls in flight.
        assert SERVICES[gw]["stop_signal"] == "SIGTERM"
        assert seconds(SERVICES[gw]["stop_grace_period"]) > config.agi.drain_timeout
        assert SERVICES[gw]["read_only"] is True
        assert any(m[2] == "/var/lib/dnc-gateway" for m in [(v, "", v.split(":")[1])
                                                            for v in SERVICES[gw]["volumes"]])
    assert "redis-cli" in SERVICES["redis"]["healthcheck"]["test"]
    assert "--appendonly" in SERVICES["redis"]["command"]  # counts survive a Redis restart


def test_prometheus_scrapes_both_gateways() -> None:
    prom = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    if not prom.exists():
        pytest.skip("deploy/prometheus/prometheus.yml is not in the repository yet: written by another part")
    doc = yaml.safe_load(prom.read_text())
    targets = json.dumps(doc)
    for gw in GATEWAYS:
        assert f"{gw}:8080" in targets, f"prometheus.yml does not scrape {gw}:8080"
    mounted = {dst for svc, _, dst in bind_mounts() if svc == "prometheus"}
    for rules in doc.get("rule_files", []):
        assert str(Path("/etc/prometheus") / rules) in mounted, f"rule file {rules} is not mounted"


def test_the_dialplan_knows_both_gateways() -> None:
    ext = ROOT / "asterisk-config" / "extensions.conf"
    if not ext.exists():
        pytest.skip("asterisk-config/extensions.conf is not in the repository yet: written by another part")
    text = ext.read_text()
    for gw in GATEWAYS:
        assert re.search(rf"\b{gw}\b", text), f"extensions.conf never names the gateway {gw}"


def test_grafana_dashboards_are_provisioned_from_the_mounted_folder() -> None:
    prov = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards"
    if not prov.is_dir():
        pytest.skip("deploy/grafana/provisioning is not in the repository yet: written by another part")
    mount = next(dst for svc, src, dst in bind_mounts() if svc == "grafana" and src == "deploy/grafana/dashboards")
    paths = [p.get("options", {}).get("path", "") for f in prov.glob("*.y*ml")
             for p in (yaml.safe_load(f.read_text()) or {}).get("providers", [])]
    assert paths, "no dashboard provider in deploy/grafana/provisioning/dashboards"
    assert all(p.rstrip("/").startswith(mount) for p in paths), f"providers read {paths}, dashboards are at {mount}"
    assert list((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")), "no dashboard JSON"


def test_the_sentinel_profile_removes_redis_as_a_single_point_of_failure() -> None:
    profiled = {name for name, svc in SERVICES.items() if "sentinel" in svc.get("profiles", [])}
    assert profiled == {"redis-replica", "sentinel1", "sentinel2", "sentinel3"}
    primary = SERVICES["redis"]["networks"]["dnc"]["ipv4_address"]
    assert SERVICES["redis-replica"]["command"][1:4] == ["--replicaof", primary, "6379"]
    sentinels = [SERVICES[f"sentinel{i}"] for i in (1, 2, 3)]
    for svc in sentinels:
        script = svc["command"][-1]
        assert f"sentinel monitor dncgw {primary} 6379 2" in script and "--sentinel" in script
    # The gateways' sentinel config: gateway.toml but for its state line, which names the three Sentinels.
    sentinel_toml = GATEWAY_TOML.with_name("gateway-sentinel.toml")
    body = [line for line in sentinel_toml.read_text().splitlines() if not line.startswith("#")]
    base = [line for line in GATEWAY_TOML.read_text().splitlines() if not line.startswith("#")]
    differ = [(a, b) for a, b in zip(base, body, strict=True) if a != b]
    assert len(differ) == 1 and differ[0][0].startswith("state = ")
    hosts = ",".join(f"{svc['networks']['dnc']['ipv4_address']}:26379" for svc in sentinels)
    assert differ[0][1] == f'state = "redis+sentinel://{hosts}/dncgw/0"'
    assert gateway_config(sentinel_toml).gateway.state == f"redis+sentinel://{hosts}/dncgw/0"
    for gw in GATEWAYS:
        assert "${DNC_GATEWAY_CONFIG:-/etc/dnc-gateway/gateway.toml}" in SERVICES[gw]["command"]
        assert any(v.endswith(":/etc/dnc-gateway/gateway-sentinel.toml:ro") for v in SERVICES[gw]["volumes"])
