"""When a finished JobRun is collected: its finish time, its queue's TTL or the operator's, and the
decision at a given moment (the clock is an argument)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from jobplane_crds.v1alpha1 import JobQueue, JobRunPhase
from jobplane_operator.reconcile.collection import (
    Collector,
    collect_at,
    collection_due,
    finished_at,
    run_queue_name,
    ttl_after_finished,
)
from jobplane_operator.settings import OperatorSettings
from tests.builders import job_queue, job_run

CREATED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ENDED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(phase: JobRunPhase | None, **status: Any) -> dict[str, Any]:
    return job_run(
        "r",
        namespace="ns",
        metadata={"uid": "u-1", "creationTimestamp": _stamp(CREATED)},
        job="hello",
        status={"phase": phase.value, **status} if phase is not None else None,
    )


def _finished(phase: JobRunPhase = JobRunPhase.SUCCEEDED) -> dict[str, Any]:
    return _run(phase, completionTime=_stamp(ENDED))


def _queue(ttl: int | None) -> JobQueue:
    spec = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    return JobQueue.of(job_queue("default", namespace="ns", **spec))


@pytest.mark.parametrize("phase", [JobRunPhase.SUCCEEDED, JobRunPhase.FAILED, JobRunPhase.CANCELLED])
def test_a_finished_run_is_due_once_its_ttl_has_passed_since_its_completion_time(phase: JobRunPhase) -> None:
    run = _finished(phase)
    assert not collection_due(run, 300, now=ENDED + timedelta(seconds=299))
    assert collection_due(run, 300, now=ENDED + timedelta(seconds=300))
    assert collect_at(run, 300) == ENDED + timedelta(seconds=300)


@pytest.mark.parametrize(
    "phase",
    [None, JobRunPhase.PENDING, JobRunPhase.QUEUED, JobRunPhase.RUNNING, JobRunPhase.AWAITING_APPROVAL],
)
def test_an_unfinished_run_is_never_due_however_old(phase: JobRunPhase | None) -> None:
    run = _run(phase)
    assert finished_at(run) is None
    assert not collection_due(run, 0, now=CREATED + timedelta(days=365))


def test_a_ttl_of_zero_collects_a_run_as_soon_as_it_ends() -> None:
    assert collection_due(_finished(), 0, now=ENDED)


def test_no_ttl_keeps_a_finished_run() -> None:
    assert collect_at(_finished(), None) is None
    assert not collection_due(_finished(), None, now=ENDED + timedelta(days=3650))


def test_without_a_completion_time_the_finished_condition_then_the_creation_count() -> None:
    condition = {
        "type": "Finished",
        "status": "True",
        "reason": "Failed",
        "lastTransitionTime": _stamp(ENDED),
    }
    assert finished_at(_run(JobRunPhase.FAILED, conditions=[condition])) == ENDED
    assert finished_at(_run(JobRunPhase.FAILED)) == CREATED


def test_the_queues_ttl_wins_over_the_operators_default_even_zero() -> None:
    assert ttl_after_finished(_queue(60), 86400) == 60
    assert ttl_after_finished(_queue(0), 86400) == 0
    assert ttl_after_finished(_queue(None), 86400) == 86400
    assert ttl_after_finished(None, 86400) == 86400  # the queue is gone, or the run names none
    assert ttl_after_finished(_queue(None), None) is None


def test_a_runs_queue_is_the_one_it_was_placed_on_else_the_one_it_asked_for() -> None:
    placed = _run(JobRunPhase.SUCCEEDED, queue="gpu")
    placed["spec"]["queue"] = "default"
    assert run_queue_name(placed) == "gpu"
    asked = _run(JobRunPhase.FAILED)
    asked["spec"]["queue"] = "cpu"
    assert run_queue_name(asked) == "cpu"
    assert run_queue_name(_run(JobRunPhase.FAILED)) is None


def test_the_queue_field_refuses_a_negative_ttl() -> None:
    assert JobQueue.model_validate(_queue(5)).spec.ttl_seconds_after_finished == 5
    with pytest.raises(ValidationError):
        JobQueue.model_validate(_queue(-1))


def test_the_operator_default_is_one_day_and_empty_keeps_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OperatorSettings().run_ttl_seconds == 86400
    monkeypatch.setenv("JOBPLANE_OPERATOR_RUN_TTL_SECONDS", "")
    assert OperatorSettings().run_ttl_seconds is None
    monkeypatch.setenv("JOBPLANE_OPERATOR_RUN_TTL_SECONDS", "0")
    assert OperatorSettings().run_ttl_seconds == 0
    monkeypatch.setenv("JOBPLANE_OPERATOR_RUN_TTL_SECONDS", "-5")
    with pytest.raises(ValidationError):
        OperatorSettings()


def _named(uid: str, *, ended: datetime = ENDED, queue: str = "default") -> dict[str, Any]:
    run = _run(JobRunPhase.SUCCEEDED, completionTime=_stamp(ended), queue=queue)
    run["metadata"]["uid"] = uid
    return run


def test_the_collector_picks_the_due_runs_with_their_queues_ttl() -> None:
    collector = Collector(per_pass=10, retry_after=60)
    due, short = _named("due", queue="slow"), _named("short", queue="fast")
    early = _named("early", ended=ENDED + timedelta(seconds=55), queue="fast")
    asked: list[tuple[str, str | None]] = []

    def ttl_of(namespace: str, queue: str | None) -> int | None:
        asked.append((namespace, queue))
        return {"slow": 60, "fast": 10}[queue or ""]

    picked = collector.pick([due, short, early], ttl_of, now=ENDED + timedelta(seconds=60), moment=0)

    assert picked == [(due, 60), (short, 10)]
    assert asked == [("ns", "slow"), ("ns", "fast")]  # once per queue and pass


def test_a_queues_new_ttl_counts_from_the_next_pass() -> None:
    collector = Collector(per_pass=10, retry_after=60)
    run = _named("r")
    later = ENDED + timedelta(minutes=10)
    assert collector.pick([run], lambda *_: 3600, now=later, moment=0) == []
    assert collector.pick([run], lambda *_: 60, now=later, moment=1) == [(run, 60)]


def test_a_run_first_seen_unfinished_is_picked_once_it_has_ended() -> None:
    collector = Collector(per_pass=10, retry_after=60)
    running = _run(JobRunPhase.RUNNING)
    later = ENDED + timedelta(hours=1)
    assert collector.pick([running], lambda *_: 0, now=later, moment=0) == []
    ended = _run(JobRunPhase.SUCCEEDED, completionTime=_stamp(ENDED))  # the same run (uid), ended
    assert collector.pick([ended], lambda *_: 0, now=later, moment=1) == [(ended, 0)]


def test_the_collector_picks_at_most_its_share_per_pass_and_the_rest_next() -> None:
    collector = Collector(per_pass=2, retry_after=60)
    runs = [_named(f"r{n}") for n in range(5)]
    later = ENDED + timedelta(hours=1)

    first = collector.pick(runs, lambda *_: 0, now=later, moment=0)
    second = collector.pick(runs, lambda *_: 0, now=later, moment=1)

    assert [obj["metadata"]["uid"] for obj, _ in first] == ["r0", "r1"]
    assert [obj["metadata"]["uid"] for obj, _ in second] == ["r2", "r3"]


def test_a_run_picked_is_asked_again_only_after_the_retry_interval_while_still_there() -> None:
    collector = Collector(per_pass=10, retry_after=60)
    run = _named("slow-to-go")
    later = ENDED + timedelta(hours=1)

    assert collector.pick([run], lambda *_: 0, now=later, moment=100)
    assert collector.pick([run], lambda *_: 0, now=later, moment=159) == []  # the index lags its deletion
    assert collector.pick([run], lambda *_: 0, now=later, moment=160) == [(run, 0)]


def test_a_run_gone_from_the_index_is_forgotten() -> None:
    collector = Collector(per_pass=10, retry_after=60)
    run = _named("gone")
    later = ENDED + timedelta(hours=1)
    assert collector.pick([run], lambda *_: 0, now=later, moment=100)

    collector.forget(set())

    # A run of the same uid can only be the same run: seen again (a relist), it is asked for at once.
    assert collector.pick([run], lambda *_: 0, now=later, moment=101) == [(run, 0)]


def test_the_collector_keeps_runs_without_a_ttl_and_unfinished_ones() -> None:
    collector = Collector(per_pass=10, retry_after=60)
    running = _run(JobRunPhase.RUNNING)
    far = ENDED + timedelta(days=3650)
    assert collector.pick([_named("kept"), running], lambda *_: None, now=far, moment=0) == []
    assert collector.pick([running], lambda *_: 0, now=far, moment=0) == []
