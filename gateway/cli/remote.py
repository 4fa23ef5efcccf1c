"""Commands that ask the running gateway (over its admin API, ``[web] listen`` and ``admin_token``).

``dnc-gateway reload``: what SIGHUP does (the config, then every list), but waited for: exit 0 when all of it
applied, 1 when anything was refused (the config, a list, a version held back by the shrink guard), 2 when
the gateway cannot be asked. The systemd unit's ``ExecReload`` runs it, so ``systemctl reload`` fails
visibly when a reload was refused.

``dnc-gateway registry accept LIST``: put in service the version of LIST that the shrink guard held back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.cli.exits import DONE, FAILED, UsageError
from gateway.cli.runtime import load_runtime_config
from gateway.config import ConfigError
from gateway.redact import redact_text

RELOAD_TIMEOUT = 900.0  # a reload waits for every list's download (each under its fetch_timeout)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the gateway's web address (default: http://[web] listen of the config)")
    p.add_argument("--timeout", type=float, default=RELOAD_TIMEOUT, help="seconds to wait for the result")
    p.add_argument("--json", action="store_true", help="print the gateway's answer as JSON")


def run(args: argparse.Namespace) -> int:
    code, body = ask(args, "/api/reload", {})
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
    config = body.get("config") or {}
    lists = body.get("lists") or {}
    if isinstance(config, dict) and config.get("error"):
        print(f"config refused (the running one stays): {config['error']}")
    for name, why in (lists.get("failed") or {}).items() if isinstance(lists, dict) else ():
        print(f"list {name} refused: {why}")
    if code == 200:
        if not args.json:
            print(f"reloaded: {len((lists.get('loaded') or {}) if isinstance(lists, dict) else {})} lists")
        return DONE
    return FAILED


def accept(args: argparse.Namespace) -> int:
    code, body = ask(args, "/api/registry/accept", {"list": args.list_name})
    if code != 200:
        print(f"not accepted: {body.get('error', body)}")
        return FAILED
    print(f"list {body['list']}: version {body['version']} in service ({body['count']} numbers)")
    return DONE


def ask(args: argparse.Namespace, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` to the running gateway's admin route; (HTTP status, JSON answer)."""
    listen, token = web_of(args)
    url = getattr(args, "url", None)
    if not url:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]")
        host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if not token:
        raise UsageError("the config has no [web] admin_token: the running gateway cannot be asked (send SIGHUP "
                         "instead, and read /healthz)")
    request = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    timeout = getattr(args, "timeout", RELOAD_TIMEOUT)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, _json(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, _json(e.read())
    except (urllib.error.URLError, OSError) as e:
        raise CannotAsk(f"cannot reach the gateway at {url}: {redact_text(str(e))}") from None


_SECTION = re.compile(r"^\s*\[([^\]]*)\]?")
_KEY = re.compile(r"^\s*(listen|admin_token|admin_token_file)\s*=\s*[\"']([^\"']*)[\"']")


def web_of(args: argparse.Namespace) -> tuple[str, str]:
    """``[web] listen`` and the admin token of the config; read line by line when the config does not load
    (a reload about to be refused is precisely when the running gateway must still be asked)."""
    try:
        config = load_runtime_config(args)
    except ConfigError:
        if not getattr(args, "config", None):
            raise
    else:
        return f"{config.web.listen.host}:{config.web.listen.port}", config.web.admin_token
    path = Path(args.config)
    found: dict[str, str] = {}
    section = ""
    for line in path.read_text(errors="replace").splitlines():
        if m := _SECTION.match(line):
            section = m.group(1).strip()
        elif section == "web" and (k := _KEY.match(line)):
            found[k.group(1)] = k.group(2)
    token = found.get("admin_token", "")
    if "admin_token_file" in found:
        with contextlib.suppress(OSError):
            token = (path.parent / found["admin_token_file"]).read_text().strip()
    return found.get("listen", "127.0.0.1:8080"), os.environ.get("DNC_GATEWAY_ADMIN_TOKEN", token)


class CannotAsk(UsageError):
    """The running gateway did not answer (not running, another address, no web listener)."""


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {"error": raw[:200].decode(errors="replace")}
    return body if isinstance(body, dict) else {"error": str(body)}

