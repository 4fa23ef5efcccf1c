"""``replay --offline``: each call decided at its recorded time, with the trace's own history, whatever today is.

Every trace here is dated in November 2026 with explicit times (Paris wall-clock or UTC): the verdicts are the
calendar's, never the machine clock's, so these tests give the same answers on any day they run.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.cli import main
from gateway.config import Config, load
from gateway.numbers import Normaliser, mask
from gateway.policy.decision import Decision
from gateway.registry.holder import RegistryHolder
from gateway.replay.offline import OfflineDecider, replay_offline, shift_weeks
from gateway.replay.sources import Call, Event
from gateway.service import engine_for
from tests.conftest import write_sample

PARIS = ZoneInfo("Europe/Paris")

CONFIG = """
[gateway]
home_country = "FR"
professional = "acme"
state = "memory://"
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
WITH_CONSENT = ["0612000010", "0612000011", "0612000012"]


@pytest.fixture
def configs(tmp_path: Path) -> tuple[Path, Path]:
    """A: the opposition regime (no number of the traces on its list); B: the same campaign under consent."""
    (tmp_path / "bloctel.txt").write_text("0612000001\n")  # no number of the traces is on it
    (tmp_path / "consent.txt").write_text("\n".join(WITH_CONSENT) + "\n")
    a = tmp_path / "a.toml"
    a.write_text(CONFIG.format(regime="opposition", consent=""))
    b = tmp_path / "b.toml"
    b.write_text(CONFIG.format(regime="consent", consent="consent"))
    return a, b


def _trace(tmp_path: Path, rows: list[tuple[str, str]], name: str = "t.csv", event: bool = False) -> Path:
    path = tmp_path / name
    lines = ["time,number,campaign" + (",event" if event else "")]
    for row in rows:
        lines.append(",".join((row[0], row[1], "spring", *row[2:])))
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["replay", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _reasons(out: str) -> dict[str, str]:
    """number -> reason (or ALLOW) from a CSV report."""
    return {r["number"]: r["reason"] or r["verdict"] for r in csv.DictReader(io.StringIO(out))}


# Paris wall-clock times without an offset: read in the config's [gateway] timezone.
CALENDAR = [
    ("2026-11-10T10:30:00", "0612000020", "ALLOW"),  # Tuesday morning
    ("2026-11-10T13:30:00", "0612000021", "outside_hours"),  # lunch break (13:00-14:00)
    ("2026-11-10T20:30:00", "0612000022", "outside_hours"),  # evening (after 20:00)
    ("2026-11-15T11:00:00", "0612000023", "outside_hours"),  # Sunday
    ("2026-11-11T11:00:00", "0612000024", "public_holiday"),  # Wednesday 11 November: Armistice
    ("2026-11-11T09:30:00Z", "0612000025", "public_holiday"),  # the same day written in UTC
    ("2026-11-10T18:59:00+00:00", "0612000026", "ALLOW"),  # 19:59 in Paris: still open
]


def test_the_calendar_decides_whatever_day_the_test_runs(configs: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace(tmp_path, [(t, n) for t, n, _ in CALENDAR])
    code, out, _ = _run(capsys, str(trace), "--offline", "--config", str(configs[0]), "--format", "csv",
                        "--show-numbers")
    assert code == 0
    assert _reasons(out) == {n: want for _, n, want in CALENDAR}


def test_five_calls_across_three_days_hit_the_cap_on_the_fifth(configs: tuple[Path, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    times = ["2026-11-16T10:30:00", "2026-11-16T15:00:00", "2026-11-17T11:00:00", "2026-11-18T10:15:00",
             "2026-11-18T16:45:00"]
    trace = _trace(tmp_path, [(t, "0612000030") for t in reversed(times)])  # file order is not time order
    code, out, _ = _run(capsys, str(trace), "--offline", "--config", str(configs[0]), "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["mode"] == "offline" and report["decided_at"] == "recorded_time"
    assert report["by_verdict"] == {"ALLOW": 4, "BLOCK": 1}
    (blocked,) = report["blocked"]
    assert blocked["reason"] == "frequency_cap" and blocked["origin"] == "line 2"  # the last in time, first in file
    assert blocked["number"] == mask("0612000030")


def test_refusals_in_the_trace_start_a_cooldown(configs: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    rows = [("2026-11-16T10:30:00", "0612000040", "call"), ("2026-11-16T10:31:00", "0612000040", "refusal"),
            ("2026-11-17T10:30:00", "0612000040", "call"), ("2026-11-17T10:30:00", "0612000041", "optout"),
            ("2026-11-18T10:30:00", "0612000041", "")]
    trace = _trace(tmp_path, rows, event=True)
    code, out, _ = _run(capsys, str(trace), "--offline", "--config", str(configs[0]), "--format", "csv",
                        "--show-numbers")
    assert code == 0
    got = [(r["seq"], r["reason"] or r["verdict"]) for r in csv.DictReader(io.StringIO(out))]
    assert got == [("1", "ALLOW"), ("3", "refusal_cooldown"), ("5", "internal_dnc")]


def test_compare_lists_exactly_the_numbers_without_consent(configs: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    numbers = [*WITH_CONSENT, "0612000050", "0612000051", "0612000052", "0612000053"]
    hours = [10, 11, 12, 14, 15, 16, 17]  # open hours, Tuesday to Thursday
    trace = _trace(tmp_path, [(f"2026-11-{17 + i % 3}T{h}:15:00", n) for i, (h, n) in enumerate(zip(hours, numbers,
                                                                                                   strict=True))])
    a, b = configs
    code, out, _ = _run(capsys, str(trace), "--offline", "--config", str(a), "--compare", str(b), "--format", "csv",
                        "--show-numbers")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["number"] for r in rows) == ["0612000050", "0612000051", "0612000052", "0612000053"]
    assert {(r["reason_a"], r["reason_b"]) for r in rows} == {("allowed", "no_consent")}
    code, out, _ = _run(capsys, str(trace), "--offline", "--config", str(a), "--compare", str(b))
    assert "decided differently (verdict or reason): 4 of 7" in out
    assert "allowed -> no_consent  4" in out
    # Before/after totals, per verdict and per campaign: what the change does to the day's calls at a glance.
    assert "calls by verdict (A -> B):\n  ALLOW  7 -> 3 (-4)\n  BLOCK  0 -> 4 (+4)\n" in out
    assert "by campaign (A -> B):\n  spring  ALLOW 7 -> 3 (-4)   BLOCK 0 -> 4 (+4)\n" in out
    assert "0612000050" not in out and mask("0612000050") in out  # masked unless --show-numbers
    code, out, _ = _run(capsys, str(trace), "--offline", "--config", str(a), "--compare", str(b), "--format", "json")
    report = json.loads(out)
    assert report["changes"] == [{"a": "allowed", "b": "no_consent", "calls": 4}] and report["differing"] == 4
    assert (report["by_verdict_a"], report["by_verdict_b"]) == ({"ALLOW": 7, "BLOCK": 0}, {"ALLOW": 3, "BLOCK": 4})
    assert report["by_campaign"] == {"spring": {"ALLOW": {"a": 7, "b": 3}, "BLOCK": {"a": 0, "b": 4}}}


def test_shift_to_keeps_weekdays_and_local_times_and_changes_the_calendar() -> None:
    # Tuesday 10 Nov 2026 10:30 and Wednesday 11 Nov (a holiday) 11:00, Paris; shifted to the week of 20 Apr 2027
    # (after the switch to summer time): Tuesday 20 Apr 10:30 and Wednesday 21 Apr 11:00, Paris.
    t1 = datetime(2026, 11, 10, 10, 30, tzinfo=PARIS).timestamp()
    t2 = datetime(2026, 11, 11, 11, 0, tzinfo=PARIS).timestamp()
    calls, shift = shift_weeks([Call("0612000020", "spring", "", t1), Call("0612000021", "spring", "", t2)],
                               date(2027, 4, 19), PARIS)  # a Monday: the first Tuesday on or after it
    assert (shift.first_day, shift.to_day, shift.weeks) == (date(2026, 11, 10), date(2027, 4, 20), 23)
    assert [datetime.fromtimestamp(c.at or 0, PARIS).replace(tzinfo=None) for c in calls] == [
        datetime(2027, 4, 20, 10, 30), datetime(2027, 4, 21, 11, 0)]


def test_shift_to_through_the_command(configs: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace(tmp_path, [("2026-11-11T11:00:00", "0612000024")])  # a holiday
    code, out, _ = _run(capsys, str(trace), "--offline", "--config", str(configs[0]), "--shift-to", "2026-11-18")
    assert code == 0 and "ALLOW 1" in out
    assert "shifted by 1 weeks: Wednesday 2026-11-11 -> Wednesday 2026-11-18" in out


def test_the_decider_alone_counts_per_configuration(configs: tuple[Path, Path]) -> None:
    config = load(configs[0])
    holder = RegistryHolder(config.lists, Normaliser("FR"))
    holder.load_all()
    at = datetime(2026, 11, 16, 9, 30, tzinfo=UTC).timestamp()
    calls = [Call("0612000030", "spring", "", at + i) for i in range(5)]
    (results,) = replay_offline(calls, [OfflineDecider(engine_for(config), holder.current, holder.normaliser,
                                                       "acme")])
    assert [r.reason for r in results] == ["", "", "", "", "frequency_cap"]
    assert all(c.event is Event.CALL for c in calls)


def test_calls_without_a_time(configs: tuple[Path, Path], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    sipp = tmp_path / "s.csv"
    sipp.write_text("SEQUENTIAL\n0612000020;spring;0162000000\n0612000021;spring;0162000000;2026-11-10T10:30:00\n")
    code, _, err = _run(capsys, str(sipp), "--offline", "--config", str(configs[0]))
    assert code == 2 and "1 of 2 calls have no time (first: line 2)" in err and "--at" in err
    code, out, _ = _run(capsys, str(sipp), "--offline", "--config", str(configs[0]), "--at",
                        "2026-11-15T11:00:00+01:00", "--format", "csv", "--show-numbers")
    assert code == 0 and _reasons(out) == {"0612000020": "outside_hours", "0612000021": "ALLOW"}


@pytest.mark.parametrize("argv", [
    ["--offline", "--gateway", "127.0.0.1:4573"],
    ["--offline", "--fast"],
    ["--compare", "b.toml"],
    ["--shift-to", "2026-12-01"],
    ["--offline", "--shift-to", "soon"],
    ["--offline", "--timezone", "Mars/Olympus"],
])
def test_bad_flags(configs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   argv: list[str]) -> None:
    trace = _trace(tmp_path, [("2026-11-10T10:30:00", "0612000020")])
    code, _, err = _run(capsys, str(trace), "--config", str(configs[0]), *argv)
    assert code == 2 and err


def test_the_timezone_reads_times_without_an_offset(configs: tuple[Path, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # 09:30 is before the 10:00 opening in Paris; read in UTC it is 10:30 in Paris.
    trace = _trace(tmp_path, [("2026-11-10T09:30:00", "0612000020")])
    base = [str(trace), "--offline", "--config", str(configs[0]), "--format", "csv", "--show-numbers"]
    assert _reasons(_run(capsys, *base)[1]) == {"0612000020": "outside_hours"}
    assert _reasons(_run(capsys, *base, "--timezone", "UTC")[1]) == {"0612000020": "ALLOW"}
    bad = tmp_path / "bad.csv"
    bad.write_text("time,number,campaign\n2026-11-10T09:30:00,0612000020,spring\nlater,0612000021,spring\n")
    code, _, err = _run(capsys, str(bad), "--offline", "--config", str(configs[0]))
    assert code == 2 and "bad.csv:3: time 'later' cannot be read" in err


TIGHT = """
[campaigns.tight]
lists = ["bloctel", "premium"]
consent = "consent"
customers = "customers"
caller_id = "0162000000"
max_attempts = 2
window_days = 3
"""


def _shortcuts_match_the_engine(config: Config, holder: RegistryHolder, calls: list[Call], *,
                                fewer_engine_calls: bool = True) -> list[Decision]:
    """Decide ``calls`` (in time order, refusals and opt-outs recorded) with the offline shortcuts and with the
    engine alone: each decision equal (verdict, reason, rule, would_block), and the whole-trace loop
    (``replay_offline``) equal too; returns the engine's decisions. ``fewer_engine_calls``: the shortcuts must
    also have spared the engine a fifth of the calls."""
    engine = engine_for(config)
    fast = OfflineDecider(engine, holder.current, holder.normaliser, "acme")
    exact = OfflineDecider(engine, holder.current, holder.normaliser, "acme", shortcuts=False)
    decided = []
    for c in calls:
        assert c.at is not None
        if c.event is not Event.CALL:
            fast.record(c, datetime.fromtimestamp(c.at, UTC))
            exact.record(c, datetime.fromtimestamp(c.at, UTC))
            continue
        f, e = fast.decide(c, c.at), exact.decide(c, c.at)
        assert (f.verdict, f.reason, f.rule, f.would_block) == (e.verdict, e.reason, e.rule, e.would_block), c
        decided.append(e)
    if fewer_engine_calls:
        assert fast.engine_calls < exact.engine_calls * 0.8
    (results,) = replay_offline(calls, [OfflineDecider(engine, holder.current, holder.normaliser, "acme")])
    assert [(r.verdict, r.reason, r.would_block) for r in results] == \
        [(e.verdict, e.reason or "", e.would_block) for e in decided]
    return decided


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_shortcuts_decide_as_the_engine_alone(tmp_path: Path, seed: int) -> None:
    """Call by call, the cached decisions equal the engine's with the number's whole history: verdict, reason,
    rule, would_block, over weeks of calls at any hour (holidays, weekends, a list going stale), every campaign
    kind (consent, opposition, monitor, a tight cap), listed, overseas, emergency and invalid numbers, refusals
    and opt-outs in the trace."""
    config = load(write_sample(tmp_path / "conf", TIGHT))
    holder = RegistryHolder(config.lists, Normaliser("FR"))
    holder.load_all()
    rnd = random.Random(seed)
    # Half the calls to a few numbers called again and again (caps, refusals), half to many called once or twice.
    few = [f"06120000{i:02d}" for i in range(1, 60)] + ["0612000100", "0612000200", "0612000300", "0899123456",
                                                       "0692000009", "0692000010", "112", "3615", "12", "+14155550100"]
    many = [f"07{rnd.randrange(3 * 10**7, 10**8):08d}" for _ in range(3000)]
    start = datetime(2026, 11, 6, tzinfo=UTC).timestamp()  # 11 November, weekends, Christmas, stale by 20 Dec
    minutes = [rnd.randrange(55 * 24 * 60) * 60 for _ in range(60)]  # fifty calls a minute: the cache is used
    calls = []
    for _ in range(3000):
        at = start + rnd.choice(minutes) + rnd.choice([0, 0, 0, 59, 30])
        event = rnd.choices([Event.CALL, Event.REFUSAL, Event.OPTOUT], [96, 3, 1])[0]
        campaign = rnd.choice(["prospect", "legacy", "survey", "tight", "nope"])
        caller = rnd.choice(["", "0162000000", "0162000002", "anonymous"])
        calls.append(Call(rnd.choice(rnd.choice((few, many))), campaign, caller, float(at), event=event))
    calls.sort(key=lambda c: c.at or 0.0)
    decided = _shortcuts_match_the_engine(config, holder, calls)
    seen = {e.rule for e in decided}
    assert {"allowed", "frequency_cap", "outside_hours.time", "outside_hours.day", "public_holiday", "registry_stale",
            "opposition_list", "no_consent", "refusal_cooldown", "internal_dnc.optout"} <= seen


@pytest.mark.parametrize("seed", [1, 2])
def test_the_shortcuts_decide_as_the_engine_alone_under_every_pack(tmp_path: Path, seed: int) -> None:
    """The same, for numbers of every pack: a state's hours and 3-in-24-hours cap (Florida), area codes spanning
    two zones (850, 928, 709), Canada's weekend hours, the UK, a country without a pack; a state shares its zone
    with its neighbours, so the area code is part of a signature."""
    config = load(write_sample(tmp_path / "conf", TIGHT.replace('"0162000000"', '"+33162000000"')
                               + '\n[campaigns.world]\nlists = ["company-dnc"]\ncaller_id = "+33162000000"\n'
                               + 'unsupported_country = "allow"\n'))
    holder = RegistryHolder(config.lists, Normaliser("FR"))
    holder.load_all()
    rnd = random.Random(seed)
    numbers = ["+13055550123", "+13055550124", "+18505550123", "+19285550123", "+16025550123", "+12125550123",
               "+14055550123", "+14165550123", "+17095550123", "+442079460123", "+4930123456", "0612000009"]
    start = datetime(2026, 7, 10, tzinfo=UTC).timestamp()
    minutes = [rnd.randrange(6 * 24 * 60) * 60 for _ in range(200)]
    calls = []
    for _ in range(2000):
        at = start + rnd.choice(minutes) + rnd.choice([0, 0, 30])
        event = rnd.choices([Event.CALL, Event.REFUSAL], [98, 2])[0]
        campaign = rnd.choice(["prospect", "survey", "tight", "world"])
        calls.append(Call(rnd.choice(numbers), campaign, rnd.choice(["", "anonymous"]), float(at), event=event))
    calls.sort(key=lambda c: c.at or 0.0)
    decided = _shortcuts_match_the_engine(config, holder, calls, fewer_engine_calls=False)
    seen = {(e.jurisdiction, e.rule) for e in decided}
    assert {("US", "frequency_cap"), ("US", "outside_hours.time"), ("CA", "outside_hours.time"), ("US", "allowed"),
            ("GB", "allowed"), (None, "allowed"), ("US", "internal_dnc.refusal")} <= seen
