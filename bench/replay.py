"""Offline replay benchmark (issue 14): calls decided per second from a CSV trace, against the online replay.

Run: ``.venv/bin/python bench/replay.py`` (1M calls offline, 20k online) or ``--quick`` (200k, 5k).

The trace: a week of a call centre's traffic (Monday to Friday and the next Monday), 09:45 to 20:15 Paris
time, so about one call in seven falls outside the legal hours; numbers drawn from a pool of 0.6 × the calls
(most called once, some up to the cap and beyond), 3 % of them on a 200,000-number opposition list. Config A:
the opposition regime; config B (``--compare``): the same campaign under prior consent.

Rows:

- ``replay --offline`` (whole command, a child process): config and lists loaded, CSV read, every call decided
  at its time with its own history, the text report written — what an operator waits for; then the same with
  the JSON report (every refused call listed);
- ``offline: read the CSV and decide`` / ``decide only`` / ``read only``: the phases of the same work timed in
  this process (``time.process_time``: one core's CPU), to show where the time goes;
- ``replay --offline --compare`` (whole command): every call decided under A and B;
- ``replay --gateway --fast`` (baseline): the online replay of the first calls of the same trace through a
  ``dnc-gateway serve`` child process over FastAGI (the dryrun route, 20 sessions at once), as today.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.cli.runtime import normaliser_of
from gateway.config import load
from gateway.registry.holder import RegistryHolder
from gateway.replay.offline import OfflineDecider, no_cycle_collection, replay_offline
from gateway.replay.sources import read_trace
from gateway.service import engine_for

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())"]
CONFIG = """
[gateway]
home_country = "FR"
professional = "acme"
state = "memory://"
audit = "audit.db"
timezone = "Europe/Paris"

[lists.bloctel]
kind = "opposition"
path = "bloctel.txt"

[lists.consent]
kind = "consent"
path = "consent.txt"

[campaigns.spring]
regime = "{regime}"
lists = ["bloctel"]
consent = "{consent}"
caller_id = "0162000000"
"""


def generate(root: Path, calls: int, seed: int = 14) -> Path:
    rnd = random.Random(seed)
    bloctel = [f"06{rnd.randrange(10**8):08d}" for _ in range(200_000)]
    (root / "bloctel.txt").write_text("\n".join(bloctel) + "\n")
    pool = [rnd.choice(("06", "07")) + f"{rnd.randrange(3 * 10**7, 10**8):08d}" for _ in range(int(calls * 0.6))]
    pool[: len(pool) * 3 // 100] = rnd.sample(bloctel, len(pool) * 3 // 100)
    (root / "consent.txt").write_text("\n".join(rnd.sample(pool, len(pool) // 2)) + "\n")
    (root / "a.toml").write_text(CONFIG.format(regime="opposition", consent=""))
    (root / "b.toml").write_text(CONFIG.format(regime="consent", consent="consent"))
    days = [datetime(2026, 11, 16) + timedelta(days=d) for d in (0, 1, 2, 3, 4, 7)]
    lo, hi = int(9.75 * 3600), int(20.25 * 3600)
    rows = sorted((rnd.choice(days) + timedelta(seconds=rnd.randrange(lo, hi)), rnd.choice(pool))
                  for _ in range(calls))
    path = root / "calls.csv"
    with path.open("w") as f:
        f.write("time,number,campaign,caller_id\n")
        f.writelines(f"{t:%Y-%m-%d %H:%M:%S},{n},spring,0162000000\n" for t, n in rows)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(argv: list[str], cwd: Path) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    out = subprocess.run([*CLI, *argv], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t, out


def in_process(root: Path, trace_path: Path) -> tuple[float, float, int, int, str]:
    """(read seconds, decide seconds, calls, engine calls, reasons): one core's CPU time for each phase."""
    config = load(root / "a.toml")
    holder = RegistryHolder(config.lists, normaliser_of(config.gateway))
    holder.load_all()
    with no_cycle_collection():  # as the command does
        t = time.process_time()
        trace = read_trace(trace_path, timezone=ZoneInfo(config.gateway.timezone))
        read = time.process_time() - t
        decider = OfflineDecider(engine_for(config), holder.current, holder.normaliser, config.gateway.professional)
        t = time.process_time()
        (results,) = replay_offline(trace.calls, [decider])
        decide = time.process_time() - t
    reasons = Counter(r.reason or "allowed" for r in results)
    return read, decide, len(trace.calls), decider.engine_calls, ", ".join(f"{k} {v:,}" for k, v in
                                                                         reasons.most_common())


def online(root: Path, trace_path: Path, n: int) -> tuple[float, str]:
    sample = root / "online.csv"
    with trace_path.open() as f:
        sample.write_text("".join(line for _, line in zip(range(n + 1), f, strict=False)))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    serve = subprocess.Popen([*CLI, "--config", "a.toml", "--log-level", "ERROR", "serve", "--agi-listen",
                              f"127.0.0.1:{port}", "--no-web"], cwd=root, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if serve.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("serve did not start") from None
                time.sleep(0.1)
        return command(["replay", str(sample), "--gateway", f"127.0.0.1:{port}", "--fast", "--concurrency", "20",
                        "--format", "json"], root)
    finally:
        serve.terminate()
        serve.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--calls", type=int)
    ap.add_argument("--online-calls", type=int)
    args = ap.parse_args()
    n = args.calls or (200_000 if args.quick else 1_000_000)
    n_online = args.online_calls or (5_000 if args.quick else 20_000)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        root = Path(tmp)
        trace = generate(root, n)
        rows: list[tuple[str, int, float, str]] = []
        read, decide, calls, engine_calls, reasons = in_process(root, trace)
        wall, _ = command(["--config", "a.toml", "replay", str(trace), "--offline"], root)
        rows.append(("`replay --offline` (whole command, text report)", calls, wall, reasons))
        wall, _ = command(["--config", "a.toml", "replay", str(trace), "--offline", "--format", "json"], root)
        rows.append(("`replay --offline --format json` (whole command)", calls, wall, "every refused call listed"))
        rows.append(("offline: read the CSV and decide (one core's CPU)", calls, read + decide,
                     "the two phases below"))
        rows.append(("offline: decide only (one core's CPU)", calls, decide,
                     f"engine asked for {engine_calls:,} calls ({engine_calls / calls:.1%})"))
        rows.append(("offline: read the CSV only (one core's CPU)", calls, read, ""))
        wall, out = command(["--config", "a.toml", "replay", str(trace), "--offline", "--compare", "b.toml"], root)
        differ = next(line for line in out.splitlines() if line.startswith("decided differently"))
        rows.append(("`replay --offline --compare` (whole command)", calls, wall, differ))
        wall, out = online(root, trace, n_online)
        rep = json.loads(out)
        rows.append(("`replay --gateway --fast` (online baseline)", int(rep["total"]), wall,
                     f"serve over FastAGI, dryrun route, 20 sessions; errors: {rep['errors'] or 'none'}"))
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{datetime.now():%Y-%m-%d}")
    print("| what | calls | seconds | calls/s | notes |")
    print("|---|---:|---:|---:|---|")
    for label, count, seconds, note in rows:
        print(f"| {label} | {count:,} | {seconds:.2f} | {count / seconds:,.0f} | {note} |")


if __name__ == "__main__":
    main()
