"""``dnc-gateway serve``: the config (with the listen overrides of the command line), then :func:`gateway.app.serve`."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from gateway.app import serve
from gateway.cli.exits import DONE
from gateway.cli.runtime import load_runtime_config
from gateway.config import Config
from gateway.config import parse as parse_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agi-listen", help="override [agi] listen (HOST:PORT)")
    p.add_argument("--web-listen", help="override [web] listen (HOST:PORT)")
    p.add_argument("--no-web", action="store_true", help="do not start the web API and page")


def run(args: argparse.Namespace) -> int:
    config = load_runtime_config(args)
    if args.log_level is None:  # the command line's --log-level wins over the file's [gateway] log_level
        logging.getLogger().setLevel(str(config.gateway.log_level))
    adjust = None
    if args.agi_listen or args.web_listen:
        # Parsed as config text, so an override is validated (and its errors worded) like the file's own keys.
        overrides = parse_config(
            "\n".join(
                [f'[agi]\nlisten = "{args.agi_listen}"' if args.agi_listen else "",
                 f'[web]\nlisten = "{args.web_listen}"' if args.web_listen else ""]),
            "--agi-listen/--web-listen")

        def adjust(c: Config) -> Config:
            """The command line's listen addresses over a config's (the file's, and each one SIGHUP reads)."""
            if args.agi_listen:
                c = replace(c, agi=replace(c.agi, listen=overrides.agi.listen))
            if args.web_listen:
                c = replace(c, web=replace(c.web, listen=overrides.web.listen))
            return c

        config = adjust(config)
    serve(config, web=not args.no_web, adjust=adjust)
    return DONE
