"""Job results as the API shows them: the record's fields beside Nautobot's."""

from __future__ import annotations

import uuid

from jobplane_api.services.results import result_record
from jobplane_store.models import JobResult, JobStatus, utcnow

# Nautobot 3.x's JobResultSerializer fields (fields="__all__" of the JobResult model, plus files).
NAUTOBOT_RESULT_FIELDS = {
    *("id", "object_type", "display", "url", "natural_slug", "status", "files", "job_model", "name"),
    *("task_name", "date_created", "date_started", "date_done", "user", "result", "worker", "task_args"),
    *("task_kwargs", "celery_kwargs", "traceback", "meta", "scheduled_job", "custom_fields"),
    *("debug_log_count", "success_log_count", "info_log_count", "warning_log_count", "error_log_count"),
}


def test_a_result_record_has_nautobots_fields_and_jobplanes_additions() -> None:
    """The README's table says which differ: these are the only ones."""
    result = JobResult(
        id=uuid.uuid4(),
        name="Hello",
        job_class_path="hello_world.HelloWorld",
        status=JobStatus.SUCCESS,
        date_created=utcnow(),
        **{f"{level}_log_count": 0 for level in ("debug", "info", "success", "warning", "failure")},
        **{f"{level}_log_count": 0 for level in ("error", "critical")},
        dry_run=False,
    )
    record = result_record(result, "http://api.test")
    fields = set(record.model_dump())
    assert fields - NAUTOBOT_RESULT_FIELDS == {
        *("duration", "failure_log_count", "critical_log_count", "reason", "message"),
        *("run", "requested_by", "commit", "dry_run", "approved_by", "approved_at"),
        *("image_digest", "waiting_reason", "waiting_message"),
    }
    assert NAUTOBOT_RESULT_FIELDS - fields == {"natural_slug", "worker", "meta"}
    # Jobs take keyword arguments only, as Nautobot's do: no positional ones.
    assert record.task_args == []
    assert record.scheduled_job is None


def test_a_result_shows_the_image_digest_and_why_its_run_waits_and_a_list_leaves_the_message_out() -> None:
    digest = "sha256:" + "5e" * 32
    result = JobResult(
        id=uuid.uuid4(),
        name="Hello",
        job_class_path="hello_world.HelloWorld",
        status=JobStatus.PENDING,
        date_created=utcnow(),
        **{f"{level}_log_count": 0 for level in ("debug", "info", "success", "warning", "failure")},
        **{f"{level}_log_count": 0 for level in ("error", "critical")},
        dry_run=False,
        image_digest=digest,
        waiting_reason="SingletonLockHeld",
        waiting_message="Job hello_world.HelloWorld is a singleton and run r7 is active",
    )
    record = result_record(result, "http://api.test")
    assert (record.image_digest, record.waiting_reason) == (digest, "SingletonLockHeld")
    assert record.waiting_message == "Job hello_world.HelloWorld is a singleton and run r7 is active"
    listed = result_record(result, "http://api.test", summary=True)
    assert (listed.waiting_reason, listed.waiting_message) == ("SingletonLockHeld", None)
