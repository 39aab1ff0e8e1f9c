"""Jobs as the API shows them: records from JobDefinitions, filters, PATCH → spec patches, variables."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from jobplane import FileVar, IntegerVar, Job, MultiChoiceVar, StringVar
from jobplane_api.errors import BadRequest
from jobplane_api.schemas import JobUpdate
from jobplane_api.services.jobs import filter_jobs, job_record, job_variables, queue_patch, spec_patch
from jobplane_crds.v1alpha1 import JobDefinition, JobQueue
from tests.builders import job_definition
from tests.builders import job_queue as queue_body

BASE = "http://api.test"


class Upload(Job):
    interval = StringVar(max_length=5, description="Seconds")
    count = IntegerVar(min_value=0, max_value=9, default=1)
    colours = MultiChoiceVar(choices=(("r", "Red"), ("g", "Green")), required=False)
    myfile = FileVar()


def definition(
    class_path: str = "tools.Upload",
    *,
    code: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    enabled: bool = False,
    installed: bool = True,
    uid: str = "0b5a2c4e-7d1f-4a39-9a57-2f3f3c1d0e11",
) -> dict[str, Any]:
    return job_definition(
        "tools-upload-abc123",
        metadata={"uid": uid, "creationTimestamp": "2026-11-25T10:00:00Z"},
        enabled=enabled,
        overrides=overrides or {},
        status={
            "classPath": class_path,
            "installed": installed,
            "supportsDryrun": False,
            "code": {"name": "Upload", "grouping": "Tools", "description": "Uploads.", **(code or {})},
            "variablesSchema": Upload.json_schema(),
        },
    )


def test_a_record_shows_code_values_until_an_override_replaces_them() -> None:
    plain = job_record(definition(), BASE)
    assert (plain.name, plain.grouping, plain.name_override) == ("Upload", "Tools", False)
    assert (plain.module_name, plain.job_class_name) == ("tools", "Upload")
    assert plain.url == f"{BASE}/api/extras/jobs/{plain.id}/"
    assert plain.task_queues == ["default"]
    assert plain.has_sensitive_variables is True  # Nautobot's default when the code says nothing

    renamed = job_record(definition(overrides={"name": "Uploader", "taskQueues": ["gpu", "default"]}), BASE)
    assert (renamed.name, renamed.name_override) == ("Uploader", True)
    assert renamed.task_queues == ["gpu", "default"]
    assert renamed.task_queues_override is True


def test_job_queues_are_nested_as_nautobot_renders_them_or_left_out() -> None:
    gpu_id = "5d2c3f4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
    record = job_record(definition(overrides={"taskQueues": ["gpu", "default"]}), BASE, {"gpu": gpu_id})
    gpu = {
        "id": uuid.UUID(gpu_id),
        "object_type": "extras.jobqueue",
        "url": f"{BASE}/api/extras/job-queues/{gpu_id}/",
    }
    # "default" has no JobQueue resource: no object to point at, so it is not listed (task_queues names it).
    assert [queue.model_dump() for queue in record.job_queues] == [gpu]
    assert record.default_job_queue is not None
    assert record.default_job_queue.model_dump() == gpu
    unknown = job_record(definition(), BASE, {})
    assert (unknown.job_queues, unknown.default_job_queue) == ([], None)
    assert unknown.model_dump(mode="json")["default_job_queue"] is None


def test_a_definition_applied_before_discovery_is_not_installed() -> None:
    applied = definition()
    applied["status"] = None
    applied["spec"]["classPath"] = "later.Job"
    record = job_record(applied, BASE)
    assert (record.installed, record.class_path, record.name) == (False, "later.Job", "Job")


def test_filters_match_nautobot_names() -> None:
    records = [
        job_record(definition("tools.Upload", enabled=True), BASE),
        job_record(
            definition(
                "net.Check", code={"name": "Check", "grouping": "Compliance", "description": "Checks."}
            ),
            BASE,
        ),
    ]
    assert [r.name for r in filter_jobs(records, {"enabled": ["true"]})] == ["Upload"]
    assert [r.name for r in filter_jobs(records, {"grouping": ["Compliance"]})] == ["Check"]
    assert [r.name for r in filter_jobs(records, {"module_name__isw": ["NE"]})] == ["Check"]
    assert [r.name for r in filter_jobs(records, {"q": ["uploads"]})] == ["Upload"]
    with pytest.raises(BadRequest) as refused:
        filter_jobs(records, {"enabled": ["maybe"]})
    assert refused.value.body() == {"enabled": ["'maybe' is not a valid boolean: use true or false."]}


def test_a_patch_sets_and_clears_overrides_as_a_merge_patch() -> None:
    assert spec_patch(JobUpdate(enabled=True)) == {"enabled": True}
    assert spec_patch(JobUpdate(name="Uploader", name_override=True)) == {"overrides": {"name": "Uploader"}}
    # A value without its flag overrides too; a flag set to false goes back to the code's value.
    assert spec_patch(JobUpdate(time_limit=30)) == {"overrides": {"timeLimit": 30}}
    assert spec_patch(JobUpdate(grouping_override=False)) == {"overrides": {"grouping": None}}
    assert spec_patch(JobUpdate(task_queues=["gpu"], job_queues_override=True)) == {
        "overrides": {"taskQueues": ["gpu"]}
    }


def test_a_patch_refuses_what_it_cannot_apply() -> None:
    with pytest.raises(BadRequest) as flag_only:
        spec_patch(JobUpdate(name_override=True))
    assert "name" in flag_only.value.body()


def test_a_patch_ignores_read_only_and_unknown_keys_as_nautobot_does() -> None:
    # DRF drops keys that are not writable fields of the serializer: a record sent back from a GET, or a
    # misspelt key, changes nothing rather than failing.
    sent_back = {"installed": False, "module_name": "x", "supports_dryrun": True, "enabled": False}
    assert spec_patch(JobUpdate.model_validate(sent_back)) == {"enabled": False}
    assert spec_patch(JobUpdate.model_validate({"enabeld": True})) == {}
    assert JobUpdate.model_validate({"enabeld": True, "id": "x"}).model_dump(exclude_unset=True) == {}


def test_variables_are_read_back_from_the_schema_in_form_order() -> None:
    variables = job_variables(definition())
    assert [(v.name, v.type, v.required) for v in variables] == [
        ("interval", "StringVar", True),
        ("count", "IntegerVar", False),
        ("colours", "MultiChoiceVar", False),
        ("myfile", "FileVar", True),
    ]
    interval, count, colours, _ = variables
    assert (interval.max_length, interval.help_text) == (5, "Seconds")
    assert (count.min_value, count.max_value, count.default) == (0, 9, 1)
    assert colours.choices == [["r", "Red"], ["g", "Green"]]


QUEUE_UIDS = {
    "default": "d0000000-0000-4000-8000-000000000001",
    "gpu": "d0000000-0000-4000-8000-000000000002",
    "cpu": "d0000000-0000-4000-8000-000000000003",
}


def job_queue(name: str) -> dict[str, Any]:
    return queue_body(name, metadata={"uid": QUEUE_UIDS[name]})


def queued(overrides: dict[str, Any] | None = None, code_queues: list[str] | None = None) -> dict[str, Any]:
    return definition(code={"taskQueues": code_queues or ["default", "gpu"]}, overrides=overrides)


def queue_change(
    body: dict[str, Any], job: dict[str, Any] | None = None, visible: tuple[str, ...] = ()
) -> Any:
    """queue_patch of a PATCH body on ``job`` (code queues default, gpu), with these JobQueues visible."""
    job = job or queued()
    queues = [job_queue(name) for name in visible or tuple(QUEUE_UIDS)]
    record = job_record(job, BASE, {name: QUEUE_UIDS[name] for name in QUEUE_UIDS})
    typed = [JobQueue.model_validate(queue) for queue in queues]
    return queue_patch(JobUpdate.model_validate(body), JobDefinition.model_validate(job), record, typed)


def test_job_queues_and_default_job_queue_are_written_as_nautobot_keeps_them() -> None:
    # By name, id, URL or an object: the default (from the code: default) stays among the queues.
    assert queue_change({"job_queues": ["cpu"]}) == {"taskQueues": ["default", "cpu"]}
    assert queue_change({"job_queues": [QUEUE_UIDS["cpu"], {"name": "gpu"}]}) == {
        "taskQueues": ["default", "cpu", "gpu"]
    }
    url = f"{BASE}/api/extras/job-queues/{QUEUE_UIDS['cpu']}/"
    assert queue_change(
        {"job_queues": [{"id": QUEUE_UIDS["cpu"], "object_type": "extras.jobqueue", "url": url}]}
    ) == {"taskQueues": ["default", "cpu"]}
    assert queue_change({"job_queues": [url]}) == {"taskQueues": ["default", "cpu"]}
    # A default not among the queues joins them, first; with both, the default leads the queues given.
    assert queue_change({"default_job_queue": {"id": QUEUE_UIDS["cpu"]}}) == {
        "taskQueues": ["cpu", "default", "gpu"]
    }
    assert queue_change({"default_job_queue": "gpu", "job_queues": ["cpu", "gpu"]}) == {
        "taskQueues": ["gpu", "cpu"]
    }
    assert queue_change({"default_job_queue": "gpu", "default_job_queue_override": True}) == {
        "taskQueues": ["gpu", "default"]
    }


def test_queue_writes_refuse_what_nautobot_refuses_with_its_shape() -> None:
    def refused(body: dict[str, Any], **options: Any) -> dict[str, Any]:
        with pytest.raises(BadRequest) as caught:
            queue_change(body, **options)
        answer: dict[str, Any] = caught.value.body()
        return answer

    assert list(refused({"job_queues": ["tpu"]})) == ["job_queues"]
    assert "'tpu'" in refused({"job_queues": ["cpu", "tpu"]})["job_queues"][0]
    assert list(refused({"default_job_queue": {"name": "tpu"}})) == ["default_job_queue"]
    assert list(refused({"job_queues": [{"display": "cpu"}]})) == ["job_queues"]
    assert refused({"job_queues": []}) == {"job_queues": ["A job needs at least one queue."]}
    assert list(refused({"job_queues": "cpu"})) == ["job_queues"]
    assert refused({"default_job_queue": None}) == {"default_job_queue": ["This field may not be null."]}
    # A queue the caller may not view is as unknown as one that does not exist.
    assert list(refused({"job_queues": ["cpu"]}, visible=("default", "gpu"))) == ["job_queues"]
    # A false flag keeps the code's queues: other queues with it are refused rather than dropped.
    assert (
        "default, gpu"
        in refused({"job_queues": ["cpu"], "job_queues_override": False})["job_queues_override"][0]
    )


def test_queue_flags_and_a_record_sent_back() -> None:
    overridden = queued(overrides={"taskQueues": ["cpu", "gpu"]})
    # A false flag drops the override (either flag: one override holds both here); on code queues, no-op.
    assert queue_change({"job_queues_override": False}, overridden) == {"taskQueues": None}
    assert queue_change({"default_job_queue_override": False}, overridden) == {"taskQueues": None}
    assert queue_change({"job_queues_override": False}) == {}
    assert queue_change({"job_queues_override": False, "job_queues": ["default", "gpu"]}, overridden) == {
        "taskQueues": None
    }
    # A true flag alone keeps the queues in effect as the override.
    assert queue_change({"job_queues_override": True}) == {"taskQueues": ["default", "gpu"]}
    assert queue_change({"job_queues_override": True}, overridden) == {}
    # A record sent back (PUT of a GET) changes nothing, overridden or not, even where a queue has no
    # JobQueue (job_queues [] and default_job_queue null on the record).
    for job in (queued(), overridden, queued(code_queues=["tpu"])):
        record = job_record(job, BASE, QUEUE_UIDS).model_dump(mode="json")
        assert queue_change(record, job) == {}
        assert "taskQueues" not in spec_patch(JobUpdate.model_validate(record)).get("overrides", {})
    # task_queues (jobplane's writable list) with a flag is spec_patch's, not queue_patch's.
    assert queue_change({"task_queues": ["gpu"], "job_queues_override": True}) == {}


# Nautobot 3.x's JobSerializer fields (fields="__all__" of the Job model, with its base serializer's).
NAUTOBOT_JOB_FIELDS = {
    *("id", "object_type", "display", "url", "natural_slug", "created", "last_updated"),
    *("tags", "custom_fields", "notes_url", "task_queues", "task_queues_override"),
    *("module_name", "job_class_name", "grouping", "name", "description", "installed", "enabled"),
    *("is_job_hook_receiver", "is_job_button_receiver", "has_sensitive_variables", "is_singleton"),
    *("console_log_default", "hidden", "dryrun_default", "read_only", "soft_time_limit", "time_limit"),
    *("supports_dryrun", "job_queues", "default_job_queue"),
    *(f"{field}_override" for field in ("grouping", "name", "console_log_default", "description")),
    *(f"{field}_override" for field in ("dryrun_default", "hidden", "soft_time_limit", "time_limit")),
    *(f"{field}_override" for field in ("has_sensitive_variables", "job_queues", "default_job_queue")),
    "is_singleton_override",
}


def test_a_job_record_has_nautobots_fields() -> None:
    """The README's table says which differ: these are the only ones."""
    fields = set(job_record(definition(), BASE).model_dump())
    assert fields - NAUTOBOT_JOB_FIELDS == {"class_path", "approval_required", "approval_required_override"}
    assert NAUTOBOT_JOB_FIELDS - fields == {"console_log_default", "console_log_default_override"}
