"""The call check without a store or an audit log: each sequence of needs and answers, failures included."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from gateway.audit.record import AuditUnavailable
from gateway.callcheck import CallCheck, CheckPlan, Need
from gateway.config import Config
from gateway.policy.decision import Reason, Verdict
from gateway.registry.holder import RegistryHolder
from gateway.registry.model import Registries
from gateway.service import engine_for
from gateway.state.model import EMPTY_HISTORY, Counted, History, StateLoading, StateUnavailable, Trip

from .conftest import FIXED_NOW

BLOCKED_AT = datetime.fromisoformat("2026-03-10T11:00:00+01:00")  # "legacy" blocks 0612000001 (opposition_list)


@pytest.fixture
def regs(sample_config: Config) -> Registries:
    from gateway.numbers import Normaliser
    from gateway.registry import sidestore

    g = sample_config.gateway
    holder = RegistryHolder(sample_config.lists, Normaliser(g.home_country, g.outside_line),
                            sidestore.default_path(g.data_dir))
    holder.load_all()
    return holder.current


def plan(config: Config, *, closed: bool = True, audited: bool = True, durable_allow: bool = True,
         one_trip: bool = False) -> CheckPlan:
    return CheckPlan(engine_for(config), closed, audited, durable_allow, one_trip, new_id=lambda now: "id-1")


def check(config: Config, regs: Registries, dialled: str = "0612000009", campaign: str = "prospect", *,
          at: datetime = FIXED_NOW, record: bool = True, count: bool = True, **kw: bool) -> CallCheck:
    from gateway.numbers import Normaliser

    g = config.gateway
    number = Normaliser(g.home_country, g.outside_line).parse(dialled)
    return CallCheck(plan(config, **kw), regs, number, dialled, campaign, None, at, record=record, count=count,
                     channel="PJSIP/a-1", uniqueid="1.2", source="agi")


def test_an_allow_reads_counts_and_commits_then_is_done(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs)
    assert c.need is Need.HISTORY and c.key
    c.receive_history(EMPTY_HISTORY)
    assert c.need is Need.COUNT and c.cap is not None and c.now == FIXED_NOW
    c.receive_count(True)
    assert c.need is Need.COMMIT and c.outcome is None  # an ALLOW is answered only once its record is durable
    assert c.record is not None and (c.record.verdict, c.record.decision_id, c.record.channel) == \
        ("ALLOW", "id-1", "PJSIP/a-1")
    c.committed()
    assert c.need is Need.DONE and c.outcome is not None
    assert (c.outcome.decision.verdict, c.outcome.decision_id) == (Verdict.ALLOW, "id-1")


def test_a_block_is_queued_not_waited_for(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, "0612000001", "legacy", at=BLOCKED_AT)
    c.receive_history(EMPTY_HISTORY)
    assert c.need is Need.QUEUE  # no count: a blocked call is no attempt
    c.committed()
    assert c.outcome is not None and c.outcome.decision.reason is Reason.OPPOSITION_LIST


def test_a_count_refused_by_the_cap_is_over_its_cap(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs)
    c.receive_history(EMPTY_HISTORY)
    c.receive_count(False)
    assert c.need is Need.QUEUE and c.decision is not None and c.decision.reason is Reason.FREQUENCY_CAP


def test_without_audit_or_record_it_is_done_after_the_count(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, audited=False)
    c.receive_history(EMPTY_HISTORY)
    c.receive_count(True)
    assert c.need is Need.DONE and c.outcome is not None and c.outcome.record.verdict == "ALLOW"
    dry = check(sample_config, regs, record=False)  # /api/check: neither counted nor audited
    dry.receive_history(EMPTY_HISTORY)
    assert dry.need is Need.DONE


def test_a_dry_run_is_audited_but_not_counted(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, count=False)
    c.receive_history(EMPTY_HISTORY)
    assert c.need is Need.COMMIT


def test_an_invalid_number_needs_no_history(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, "12", audited=False)
    assert c.need is Need.DONE and c.outcome is not None and c.outcome.decision.verdict is Verdict.BLOCK
    assert c.outcome.record.number == "12"


def test_the_history_decides(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs)
    c.receive_history(History(opted_out_at=FIXED_NOW - timedelta(days=1)))
    assert c.need is Need.QUEUE and c.decision is not None and c.decision.reason is Reason.INTERNAL_DNC


def test_history_unavailable_blocks_when_closed(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs)
    c.state_failed(StateUnavailable("connection refused"))
    assert c.need is Need.QUEUE and c.decision is not None and c.decision.reason is Reason.STATE_UNAVAILABLE
    assert "connection refused" in c.decision.detail


def test_history_unavailable_decides_without_it_when_open(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, closed=False)
    c.state_failed(StateUnavailable("connection refused"))
    assert c.need is Need.COUNT  # decided on an empty history, and counted
    loading = check(sample_config, regs, closed=False)
    loading.state_failed(StateLoading("still loading"))  # never a decision on an empty history at start-up
    assert loading.decision is not None and loading.decision.reason is Reason.STATE_UNAVAILABLE


def test_a_count_that_fails(sample_config: Config, regs: Registries) -> None:
    closed = check(sample_config, regs)
    closed.receive_history(EMPTY_HISTORY)
    closed.state_failed(StateUnavailable("timeout"))
    assert closed.need is Need.QUEUE and closed.decision is not None
    assert (closed.decision.verdict, closed.decision.reason) == (Verdict.BLOCK, Reason.STATE_UNAVAILABLE)
    opened = check(sample_config, regs, closed=False)
    opened.receive_history(EMPTY_HISTORY)
    opened.state_failed(StateUnavailable("timeout"))
    assert opened.need is Need.COMMIT and opened.decision is not None and opened.decision.verdict is Verdict.ALLOW


@pytest.mark.parametrize("need", [Need.COMMIT, Need.QUEUE])
def test_an_audit_failure_refuses_the_call(sample_config: Config, regs: Registries, need: Need) -> None:
    c = check(sample_config, regs, durable_allow=need is Need.COMMIT)
    c.receive_history(EMPTY_HISTORY)
    c.receive_count(True)
    assert c.need is need
    c.audit_failed(AuditUnavailable("database or disk is full"))
    assert c.need is Need.DONE and c.outcome is not None
    assert (c.outcome.decision.verdict, c.outcome.decision.reason) == (Verdict.BLOCK, Reason.AUDIT_UNAVAILABLE)
    assert (c.outcome.record.verdict, c.outcome.record.rule) == ("BLOCK", "audit_unavailable")


def test_one_trip_counted_at_once(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, one_trip=True)
    assert c.need is Need.TRIP and c.counting and c.cap is not None
    c.receive_trip(Trip(EMPTY_HISTORY, Counted.COUNTED, b"m"))
    assert c.need is Need.COMMIT
    capped = check(sample_config, regs, one_trip=True)
    capped.receive_trip(Trip(EMPTY_HISTORY, Counted.CAP_REACHED, b""))
    assert capped.decision is not None and capped.decision.reason is Reason.FREQUENCY_CAP


def test_one_trip_a_read_only_is_not_counting(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, one_trip=True, count=False)
    assert c.need is Need.TRIP and not c.counting and c.cap is None
    c.receive_trip(Trip(EMPTY_HISTORY, Counted.NOT_TRIED, b""))
    assert c.need is Need.COMMIT


def test_one_trip_a_provisional_count_is_taken_back(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, one_trip=True)
    c.receive_trip(Trip(History(opted_out_at=FIXED_NOW - timedelta(days=1)), Counted.COUNTED, b"m"))
    assert c.need is Need.FORGET and c.member == b"m"
    c.forgotten()
    assert c.need is Need.QUEUE and c.decision is not None and c.decision.reason is Reason.INTERNAL_DNC
    failed = check(sample_config, regs, one_trip=True)
    failed.receive_trip(Trip(History(opted_out_at=FIXED_NOW - timedelta(days=1)), Counted.COUNTED, b"m"))
    failed.state_failed(StateUnavailable("timeout"))  # one attempt too many: the safe side of the cap
    assert failed.need is Need.QUEUE


def test_one_trip_not_tried_is_counted_by_a_second_trip(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs, one_trip=True)
    c.receive_trip(Trip(EMPTY_HISTORY, Counted.NOT_TRIED, b""))  # a refusal on record: the script did not count
    assert c.need is Need.COUNT
    c.receive_count(True)
    assert c.need is Need.COMMIT


def test_one_trip_unavailable(sample_config: Config, regs: Registries) -> None:
    closed = check(sample_config, regs, one_trip=True)
    closed.state_failed(StateUnavailable("down"))
    assert closed.decision is not None and closed.decision.reason is Reason.STATE_UNAVAILABLE
    opened = check(sample_config, regs, one_trip=True, closed=False)
    opened.state_failed(StateUnavailable("down"))
    assert opened.need is Need.COUNT  # counted on a second try


def test_an_answer_to_another_need_is_refused(sample_config: Config, regs: Registries) -> None:
    c = check(sample_config, regs)
    for wrong in (lambda: c.receive_count(True), c.committed, c.forgotten,
                  lambda: c.receive_trip(Trip(EMPTY_HISTORY, Counted.NOT_TRIED, b"")),
                  lambda: c.audit_failed(AuditUnavailable("x"))):
        with pytest.raises(RuntimeError):
            wrong()
    assert c.need is Need.HISTORY
    c.receive_history(EMPTY_HISTORY)
    c.receive_count(True)
    c.committed()
    with pytest.raises(RuntimeError):
        c.state_failed(StateUnavailable("late"))


def test_the_campaign_caller_id_is_recorded_when_none_is_given(sample_config: Config, regs: Registries) -> None:
    config = replace(sample_config, campaigns={k: replace(v, caller_id="0140000000") if k == "prospect" else v
                                               for k, v in sample_config.campaigns.items()})
    c = check(config, regs, audited=False)
    c.receive_history(EMPTY_HISTORY)
    if c.need is Need.COUNT:
        c.receive_count(True)
    assert c.outcome is not None and c.outcome.record.caller_id == "0140000000"
