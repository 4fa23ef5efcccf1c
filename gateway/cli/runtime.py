"""What a command runs against: the config (the ``--config`` file or the embedded demo) and a loaded gateway."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.cli.output import warn
from gateway.config import DEMO_CONFIG, Config, GatewaySection
from gateway.config import load as load_config
from gateway.demo.generate import demo_dir, ensure_demo_data
from gateway.numbers import Normaliser
from gateway.registry.holder import RegistryHolder, ReloadResult
from gateway.service import Gateway


def load_runtime_config(args: argparse.Namespace) -> Config:
    """The --config file, or the embedded demo (generating its data on first run)."""
    if args.config:
        return load_config(Path(args.config), data_dir=Path(args.data_dir) if args.data_dir else None)
    root = Path(args.data_dir) if args.data_dir else demo_dir()
    ensure_demo_data(root)
    return load_config(DEMO_CONFIG, data_dir=root)


def load_gateway(config: Config) -> Gateway:
    """A gateway for one command run, its lists loaded; a list that fails is a warning, not an error."""
    gw = Gateway(config)
    load_lists(gw.holder)
    return gw


def load_lists(holder: RegistryHolder) -> None:
    """Load every list for a command, quietly: a list's warnings (bad lines, its age) are ``config check``'s and
    ``serve``'s to show, not repeated by every command. A list that cannot be loaded at all is one line, since
    the command's answers depend on it (its calls are blocked as registry_stale)."""
    for err in load_quietly(holder).failed.values():
        warn(f"list {err} (not loaded: see dnc-gateway config check)")  # the error names its list


def load_quietly(holder: RegistryHolder) -> ReloadResult:
    """Every list loaded with the holder's own log lines silenced: the command reports what it must itself."""
    quiet = logging.getLogger("gateway.registry")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return holder.load_all()
    finally:
        quiet.setLevel(level)


def normaliser_of(g: GatewaySection) -> Normaliser:
    """How the gateway reads a number typed on the command line: its home country and outside-line prefixes."""
    return Normaliser(g.home_country, g.outside_line)


def safe_url(url: str) -> str:
    """A state URL as a command may print it: no password."""
    return re.sub(r"//[^@/]*@", "//", url)


@contextmanager
def state_loop(gw: Gateway, *, start: bool) -> Iterator[asyncio.AbstractEventLoop]:
    """A loop of the command's own on which its synchronous code runs the state store's coroutines (Redis needs
    one; the embedded store's answers are immediate); the gateway is closed (its writes flushed) on the way out."""
    loop = asyncio.new_event_loop()
    try:
        if start:
            loop.run_until_complete(gw.start())
        yield loop
    finally:
        loop.run_until_complete(gw.close())
        loop.close()
