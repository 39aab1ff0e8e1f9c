"""A JobQueue's status from the runs index: what it counts, and that it is written only on change."""

from __future__ import annotations

from typing import Any

from jobplane_crds.v1alpha1 import JobQueue
from jobplane_operator.reconcile.jobqueue import queue_loads, queue_status_changes


def queue(
    name: str, concurrency: int | None = None, namespace: str = "ops", status: dict[str, Any] | None = None
) -> JobQueue:
    spec = {"concurrencyLimit": concurrency} if concurrency is not None else {}
    obj: dict[str, Any] = {"metadata": {"namespace": namespace, "name": name}, "spec": spec}
    if status:
        obj["status"] = status
    return JobQueue.model_validate(obj)


def run(name: str, namespace: str = "ops", spec_queue: str | None = None, **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"job": "noop.Noop"}
    if spec_queue:
        spec["queue"] = spec_queue
    obj: dict[str, Any] = {"metadata": {"namespace": namespace, "name": name}, "spec": spec}
    if status:
        obj["status"] = status
    return obj


def test_active_runs_hold_a_job_and_waiting_ones_are_queued_each_on_its_own_queue() -> None:
    queues = [queue("limited", 2), queue("default"), queue("limited", 1, namespace="other")]
    runs = [
        run("a", phase="Running", queue="limited", jobName="a-1"),
        run("b", phase="Pending", queue="limited", jobName="b-1"),
        run("c", phase="Queued", queue="limited", reason="ConcurrencyLimit"),
        run("d", phase="Queued", queue="limited", reason="SingletonActive"),
        run("e", phase="Succeeded", queue="limited", jobName="e-1"),  # ended: holds nothing
        run("f", phase="Pending", queue="limited", reason="WaitingForInputs"),  # no Job, not queued
        run("g", phase="Running", queue="default", jobName="g-1"),
        run("h", phase="Queued", namespace="other", queue="limited"),
        run("i", spec_queue="default"),  # no status yet: counted nowhere
        run("j", phase="Queued", spec_queue="default"),  # the queue from its spec until its status has it
        run("k", phase="Running", queue="gone", jobName="k-1"),  # a queue that no longer exists
        run("l", phase="AwaitingApproval", queue="limited"),
    ]
    assert queue_loads(runs, queues) == {
        ("ops", "limited"): {"active": 2, "waiting": 2, "limit": 2},
        ("ops", "default"): {"active": 1, "waiting": 1, "limit": None},
        ("other", "limited"): {"active": 0, "waiting": 1, "limit": 1},
    }


def test_a_queue_is_written_only_when_its_counts_change() -> None:
    shown = queue("limited", 1, status={"active": 1, "waiting": 1, "limit": 1})
    loads = {("ops", "limited"): {"active": 1, "waiting": 1, "limit": 1}}
    assert queue_status_changes(loads, [shown], {}) == {}
    moved = {("ops", "limited"): {"active": 1, "waiting": 0, "limit": 1}}
    assert queue_status_changes(moved, [shown], {}) == moved
    # Written a moment ago and the index does not show it yet: not written again.
    assert queue_status_changes(moved, [shown], dict(moved)) == {}


def test_a_new_queue_gets_its_first_status_and_a_removed_limit_is_cleared() -> None:
    fresh = queue("fresh")
    assert queue_status_changes(queue_loads([], [fresh]), [fresh], {}) == {
        ("ops", "fresh"): {"active": 0, "waiting": 0, "limit": None}
    }
    unlimited = queue("was-limited", status={"active": 0, "waiting": 0, "limit": 3})
    changes = queue_status_changes(queue_loads([], [unlimited]), [unlimited], {})
    assert changes == {("ops", "was-limited"): {"active": 0, "waiting": 0, "limit": None}}


def test_a_thousand_runs_changing_make_one_write_per_queue_per_pass() -> None:
    queues = [queue("bulk", 10, status={"active": 0, "waiting": 0, "limit": 10})]
    runs = [run(f"r{i}", phase="Queued", queue="bulk") for i in range(990)]
    runs += [run(f"s{i}", phase="Running", queue="bulk", jobName=f"s{i}-1") for i in range(10)]
    changes = queue_status_changes(queue_loads(runs, queues), queues, {})
    assert changes == {("ops", "bulk"): {"active": 10, "waiting": 990, "limit": 10}}


def test_runs_suspended_for_kueue_count_as_waiting_not_active() -> None:
    runs = [
        run("a", spec_queue="kq", phase="Pending", reason="KueueAdmission", jobName="a-1"),
        run("b", spec_queue="kq", phase="Running", reason="PodRunning", jobName="b-1"),
    ]
    loads = queue_loads(runs, [queue("kq")])
    assert loads[("ops", "kq")] == {"active": 1, "waiting": 1, "limit": None}
