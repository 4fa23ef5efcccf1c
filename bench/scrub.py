"""Scrub benchmark (issue 5): a 10M-line call file against a 15M-number registry.

Run: ``.venv/bin/python bench/scrub.py`` (a few minutes, files in a temporary folder) or ``--quick``
(1M lines against 1.5M numbers). Every row is a child process; its peak memory is its own
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` measured by a small wrapper process.

Rows:

- ``registry build``: ``dnc-gateway registry build`` of the registry text file into a snapshot
  (the "15M numbers from text" figure);
- ``dnc-gateway scrub``: the whole command (config, snapshot load, hot-set preparation, scrub, outputs) with
  ``--ignore-hours``, so that only the list decides and the result can be compared with grep's; the
  scrub-only rate comes from its ``--summary-json``;
- ``grep -vxFf``: what an administrator would type (``grep -vxFf registry calls``), same files;
- ``phonenumbers + set``: the straightforward script (parse every registry and call line with phonenumbers,
  E.164 strings in a Python set), timed on a sample and extrapolated to the full sizes.

The kept counts of scrub and grep must agree: the generated numbers are all valid mainland mobiles.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DNC = [sys.executable, "-m", "gateway.cli"]
AT = "2026-11-24T10:30:00+01:00"

# Runs argv, then prints the child's wall time and peak RSS (KiB) as JSON on the last stderr line.
_WRAP = r"""
import json, resource, subprocess, sys, time
out = open(sys.argv[1], "wb") if sys.argv[1] != "-" else subprocess.DEVNULL
t = time.perf_counter()
try:
    rc = subprocess.run(sys.argv[3:], stdout=out, timeout=float(sys.argv[2])).returncode
except subprocess.TimeoutExpired:
    rc = "timeout"
wall = time.perf_counter() - t
print(json.dumps({"rc": rc, "wall": wall, "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}),
      file=sys.stderr)
"""

_STRAIGHTFORWARD = r"""
import sys, time, phonenumbers
reg, calls, out = sys.argv[1:4]
t = time.perf_counter()
blocked = set()
with open(reg) as f:
    for line in f:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            blocked.add(phonenumbers.format_number(phonenumbers.parse(line, "FR"), phonenumbers.PhoneNumberFormat.E164))
        except phonenumbers.NumberParseException:
            pass
t_reg = time.perf_counter() - t
t = time.perf_counter()
with open(calls) as f, open(out, "w") as o:
    for line in f:
        try:
            e164 = phonenumbers.format_number(phonenumbers.parse(line.strip(), "FR"),
                                              phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            continue
        if e164 not in blocked:
            o.write(line)
print(f"{t_reg} {time.perf_counter() - t}", file=sys.stderr)
"""


def generate(path: Path, n: int, seed: int, header: str = "") -> None:
    """``n`` random mainland mobile numbers (06, 073-079), one a line."""
    rng = random.Random(seed)
    with path.open("w") as f:
        if header:
            f.write(header)
        step = 200_000
        for i in range(0, n, step):
            ks = [rng.randrange(600_000_000, 800_000_000) for _ in range(min(step, n - i))]
            f.write("".join(f"0{k if not 700_000_000 <= k < 730_000_000 else k + 30_000_000}\n" for k in ks))


def measured(argv: list[str], timeout: float, stdout: Path | None = None) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _WRAP, str(stdout) if stdout else "-", str(timeout), *argv],
                          cwd=ROOT, stderr=subprocess.PIPE, text=True, check=False)
    lines = proc.stderr.strip().splitlines()
    result: dict[str, object] = json.loads(lines[-1])
    if result["rc"] not in (0, 1):  # grep exits 1 when it selects nothing
        result["stderr"] = "\n".join(lines[-6:-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1M lines against 1.5M numbers")
    ap.add_argument("--lines", type=int, help="call file lines (default 10M, quick 1M)")
    ap.add_argument("--registry", type=int, help="registry numbers (default 15M, quick 1.5M)")
    ap.add_argument("--sample", type=int, default=100_000, help="lines for the straightforward script's sample")
    ap.add_argument("--grep-timeout", type=float, default=900.0, help="seconds before grep is given up")
    ap.add_argument("--dir", help="where to write the files (default: a temporary folder, removed after)")
    args = ap.parse_args()
    n_calls = args.lines or (1_000_000 if args.quick else 10_000_000)
    n_reg = args.registry or (1_500_000 if args.quick else 15_000_000)
    with tempfile.TemporaryDirectory(prefix="dnc-scrub-bench-", dir=args.dir) as tmp:
        d = Path(tmp)
        print(f"generating {n_reg:,} registry numbers and {n_calls:,} call lines in {d} …", file=sys.stderr)
        reg_txt, calls = d / "registry.txt", d / "calls.txt"
        generate(reg_txt, n_reg, 1, "# as_of: 2026-11-20\n")
        generate(calls, n_calls, 2)
        grep_patterns = d / "registry-plain.txt"
        generate(grep_patterns, n_reg, 1)  # the same numbers, no header line
        (d / "gateway.toml").write_text(
            '[gateway]\nhome_country = "FR"\nstate = "memory://"\n'
            '[lists.bloctel]\nkind = "opposition"\npath = "registry.snap"\nmax_age_days = 30\n'
            '[campaigns.spring]\nregime = "opposition"\nlists = ["bloctel"]\ncaller_id = "0162000000"\n')
        rows = []

        print("registry build …", file=sys.stderr)
        r = measured([*DNC, "registry", "build", str(reg_txt), "-o", str(d / "registry.snap"), "--name", "bloctel"],
                     600)
        rows.append(("registry build (text -> snapshot)", f"{n_reg:,} numbers", r, None))

        print("dnc-gateway scrub …", file=sys.stderr)
        summary_path = d / "summary.json"
        r = measured([*DNC, "--config", str(d / "gateway.toml"), "scrub", str(calls), "-o", str(d / "out-scrub.txt"),
                      "--campaign", "spring", "--at", AT, "--ignore-hours", "--summary-json", str(summary_path)], 900)
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        rows.append(("dnc-gateway scrub (whole command)", f"{n_calls:,} lines", r, summary.get("kept")))
        scrub_only = summary.get("seconds")

        print(f"grep -vxFf (timeout {args.grep_timeout:.0f} s) …", file=sys.stderr)
        grep_out = d / "out-grep.txt"
        r = measured(["grep", "-vxFf", str(grep_patterns), str(calls)], args.grep_timeout, stdout=grep_out)
        grep_kept = sum(1 for _ in grep_out.open("rb")) if r["rc"] in (0, 1) else None
        rows.append(("grep -vxFf registry calls", f"{n_calls:,} lines", r, grep_kept))

        print(f"straightforward script on a {args.sample:,}-line sample …", file=sys.stderr)
        sample_reg, sample_calls = d / "sample-reg.txt", d / "sample-calls.txt"
        generate(sample_reg, args.sample, 1)
        generate(sample_calls, args.sample, 2)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _STRAIGHTFORWARD, str(sample_reg), str(sample_calls),
                               str(d / "out-straight.txt")], stderr=subprocess.PIPE, text=True, check=True)
        t_reg, t_calls = (float(x) for x in proc.stderr.split()[-2:])
        extrapolated = t_reg * n_reg / args.sample + t_calls * n_calls / args.sample
        rows.append(("phonenumbers + set (extrapolated)", f"{n_calls:,} lines",
                     {"rc": 0, "wall": extrapolated, "maxrss_kib": None, "sample_wall": time.perf_counter() - t},
                     None))

    print()
    print(f"scrub benchmark: {n_calls:,} call lines against {n_reg:,} registry numbers "
          f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    print(f"{'row':40} {'size':>16} {'seconds':>9} {'lines/s':>12} {'peak MiB':>9} {'kept':>12}")
    for name, size, r, kept in rows:
        wall = r["wall"]
        rc = r["rc"]
        secs = f"{wall:9.2f}" if rc in (0, 1) else f"{rc!s:>9}"
        n = n_reg if name.startswith("registry") else n_calls
        rate = f"{n / wall:12,.0f}" if rc in (0, 1) and wall else f"{'-':>12}"
        peak = f"{r['maxrss_kib'] / 1024:9.0f}" if r.get("maxrss_kib") else f"{'-':>9}"
        print(f"{name:40} {size:>16} {secs} {rate} {peak} {kept if kept is not None else '-':>12}")
        if r.get("stderr"):
            print(f"  {r['stderr']}")
    if scrub_only:
        print(f"\nscrub alone (from its summary, without start-up and snapshot load): {scrub_only:.2f} s, "
              f"{n_calls / scrub_only:,.0f} lines/s, {summary.get('engine_calls')} engine calls")
    by = {name.split()[0]: r for name, _, r, _ in rows}
    scrub_wall = by["dnc-gateway"]["wall"]
    if by["grep"]["rc"] in (0, 1):
        print(f"vs grep: {by['grep']['wall'] / scrub_wall:.1f}x faster")  # type: ignore[operator]
    else:
        print(f"vs grep: grep did not finish ({by['grep']['rc']}) in {args.grep_timeout:.0f} s")
    print(f"vs phonenumbers + set: {by['phonenumbers']['wall'] / scrub_wall:.1f}x faster")  # type: ignore[operator]
    return 0


if __name__ == "__main__":
    sys.exit(main())
