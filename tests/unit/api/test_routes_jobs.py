"""The run endpoint's JSON body: what Nautobot ignores is ignored, an unknown job variable is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.requests import Request

from jobplane import IntegerVar, Job
from jobplane_api.errors import BadRequest
from jobplane_api.routes.jobs import _json
from jobplane_api.services.runs import RunRequest, _validated
from jobplane_crds.v1alpha1 import JobDefinition
from tests.conftest import run_coroutine


class Count(Job):
    times = IntegerVar()


DEFINITION = JobDefinition.model_validate({"status": {"variablesSchema": Count.json_schema()}})


def parsed(body: Any) -> RunRequest:
    raw = json.dumps(body).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", b"application/json")]}
    return run_coroutine(_json(Request(scope, receive)))


def test_unknown_top_level_keys_are_ignored_as_nautobot_does() -> None:
    # pynautobot's jobs.run(job_id=..., data=...) puts job_id in the body; Nautobot's serializer drops it.
    request = parsed(
        {
            "job_id": "0b5a2c4e-7d1f-4a39-9a57-2f3f3c1d0e11",
            "data": {"times": 2},
            "schedule": {"interval": "immediately", "url": "ignored too"},
            "anything": [1],
        }
    )
    assert (request.data, request.schedule_interval, request.task_queue) == (
        {"times": 2},
        "immediately",
        None,
    )
    assert _validated(DEFINITION, request, {}) == {"times": 2}


def test_known_keys_are_still_checked() -> None:
    with pytest.raises(BadRequest) as caught:
        parsed({"job_id": 1, "task_queue": ["a list"]})
    assert set(caught.value.body()) == {"task_queue"}


def test_an_unknown_job_variable_is_refused_as_nautobot_does() -> None:
    with pytest.raises(BadRequest) as caught:
        _validated(DEFINITION, parsed({"data": {"times": 2, "job_id": "x"}}), {})
    assert caught.value.body() == {"errors": {"job_id": ["Job data contained an unknown property"]}}
    with pytest.raises(BadRequest) as not_a_dict:
        _validated(DEFINITION, parsed({"data": [1]}), {})
    assert not_a_dict.value.body() == {"errors": ["Job data needs to be a dict"]}


def test_nautobot_s_ignore_singleton_lock_key_is_read_from_the_json_body() -> None:
    assert parsed({"data": {}, "_ignore_singleton_lock": True}).ignore_singleton_lock is True
    assert parsed({"data": {}}).ignore_singleton_lock is False
    with pytest.raises(BadRequest) as caught:
        parsed({"_ignore_singleton_lock": "maybe"})
    assert set(caught.value.body()) == {"_ignore_singleton_lock"}
