"""A real Asterisk running asterisk-config/ as shipped: what the end-to-end test and bench/pdd.py share.

No pytest here: bench/pdd.py imports this module to run the same PBX, with the same edits, outside a test run.
Asterisk runs the four files of asterisk-config/ with only the edits its README asks for (the gateways'
addresses in ``[globals]``, the SIP bind address, the carrier's address, the AMI port), plus whatever
contexts the caller appends (``extra_dialplan``).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "asterisk-config"
# Where each home country's extensions.conf and pjsip.conf are (asterisk-config/README.md: which to copy);
# manager.conf and modules.conf are the same for all and stay at the top.
VARIANTS = {"fr": CONFIG, "nanp": CONFIG / "nanp", "gb": CONFIG / "gb"}
SIPP_DIR = Path(__file__).parent / "sipp"

# What the server under test runs: ``python -c SERVE --config … serve …`` (the CLI, from this checkout).
SERVE = "import sys; from gateway.cli import main; sys.exit(main())"


def edit(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced; an error if asterisk-config/ no longer holds ``old``."""
    if old not in text:
        raise AssertionError(f"asterisk-config/ changed: {old!r} is gone (update tests/e2e/pbx.py's callers)")
    return text.replace(old, new)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def wait_until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def context(dialplan: str, name: str) -> str:
    """The ``[name]`` context of an extensions.conf text, from its header to the next header or rule line."""
    start = dialplan.index(f"\n[{name}]\n") + 1
    end = len(dialplan)
    for marker in ("\n[", "\n; ----"):
        i = dialplan.find(marker, start + 1)
        if i != -1:
            end = min(end, i + 1)
    return dialplan[start:end]


def asterisk_config(root: Path, sip_port: int, trunk_port: int, ami_port: int, gw_a: int, gw_b: int,
                    extra_dialplan: str = "", variant: str = "fr") -> Path:
    """asterisk.conf and etc/ for one Asterisk under ``root``: asterisk-config/ with the README's edits.

    ``variant`` is the home country's folder of asterisk-config/ (``fr``, ``nanp``, ``gb``: ``VARIANTS``).
    """
    country = VARIANTS[variant]
    etc = root / "etc"
    etc.mkdir(parents=True)
    dirs = {d: root / d for d in ("db", "keys", "spool", "run", "log")}
    for d in dirs.values():
        d.mkdir()
    # Only the writable directories move; modules and sounds stay where the binary was built to find them.
    (root / "asterisk.conf").write_text(
        "[directories]\n"
        f"astetcdir => {etc}\nastdbdir => {dirs['db']}\nastkeydir => {dirs['keys']}\n"
        f"astspooldir => {dirs['spool']}\nastrundir => {dirs['run']}\nastlogdir => {dirs['log']}\n"
        "[options]\nverbose = 3\n")
    (etc / "logger.conf").write_text("[logfiles]\nfull => notice,warning,error,verbose\n")
    ext = (country / "extensions.conf").read_text()
    ext = edit(ext, "DNC_GW_A=gw1:4573", f"DNC_GW_A=127.0.0.1:{gw_a}")
    ext = edit(ext, "DNC_GW_B=gw2:4573", f"DNC_GW_B=127.0.0.1:{gw_b}")
    (etc / "extensions.conf").write_text(ext + extra_dialplan)
    sip = (country / "pjsip.conf").read_text()
    sip = edit(sip, "bind = 0.0.0.0:5060", f"bind = 127.0.0.1:{sip_port}")
    sip = edit(sip, "contact = sip:sip.carrier.example:5060", f"contact = sip:127.0.0.2:{trunk_port}")
    sip = edit(sip, "match = sip.carrier.example", "match = 127.0.0.2")
    sip = edit(sip, "qualify_frequency = 30", "qualify_frequency = 0")  # the test carrier takes INVITEs only
    (etc / "pjsip.conf").write_text(sip)
    ami = edit((CONFIG / "manager.conf").read_text(), "port = 5038", f"port = {ami_port}")
    (etc / "manager.conf").write_text(ami)
    shutil.copy(CONFIG / "modules.conf", etc / "modules.conf")
    return root / "asterisk.conf"


class Asterisk:
    """One Asterisk process in the foreground (``-f``), its CLI reached with ``-rx``."""

    def __init__(self, binary: str, conf: Path, cwd: Path) -> None:
        self.binary, self.conf = binary, conf
        self._out = (cwd / "asterisk.out").open("wb")
        self.proc = subprocess.Popen([binary, "-C", str(conf), "-f", "-n", "-vvv"], cwd=cwd,
                                     stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT)

    def cli(self, command: str) -> str:
        out = subprocess.run([self.binary, "-C", str(self.conf), "-rx", command], capture_output=True, text=True,
                             timeout=30)
        return out.stdout

    def wait_booted(self, timeout: float = 60) -> None:
        wait_until(lambda: self.proc.poll() is None and "fully booted" in self.cli("core waitfullybooted"),
                   "Asterisk to boot", timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                subprocess.run([self.binary, "-C", str(self.conf), "-rx", "core stop now"], capture_output=True,
                               timeout=30)
        stop(self.proc)
        self._out.close()


def stop(proc: subprocess.Popen[bytes], signal_: int | None = None) -> None:
    """End a process this module's caller started (SIGTERM, or ``signal_``; SIGKILL after 10 s)."""
    if proc.poll() is None:
        if signal_ is None:
            proc.terminate()
        else:
            proc.send_signal(signal_)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
