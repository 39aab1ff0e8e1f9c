"""Job queues as the API shows them: the operator's counts from the JobQueue's status."""

from __future__ import annotations

from jobplane_api.services.job_queues import queue_record
from tests.builders import job_queue


def test_running_and_queued_are_the_operators_active_and_waiting_counts() -> None:
    queue = job_queue(
        "solo",
        namespace="ops",
        metadata={"uid": "6f1b1c9e-2f0a-4a43-9a51-7d3c1e0b2a10"},
        concurrencyLimit=1,
        status={"active": 1, "waiting": 3, "limit": 1},
    )
    record = queue_record(queue, "http://api.test")
    assert (record.concurrency_limit, record.running, record.queued) == (1, 1, 3)
    fresh = queue_record({**queue, "status": None}, "http://api.test")
    assert (fresh.running, fresh.queued) == (None, None)
