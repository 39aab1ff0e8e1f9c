"""The gateway's pure parts: definition lookups, error translation, and the informer's recovery loop."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError

from jobplane_api.kube import (
    Informer,
    KubeConflict,
    KubeError,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
    ModelInformer,
    _translated,
    display_name,
    find_definition,
    resolve_job,
)
from jobplane_crds.v1alpha1 import JobDefinition


def _definition(
    name: str,
    uid: str,
    class_path: str | None = None,
    code_name: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status = {"classPath": class_path, "code": {"name": code_name}} if class_path else None
    spec: dict[str, Any] = {"enabled": True, "overrides": overrides or {}}
    return {"metadata": {"name": name, "uid": uid, "resourceVersion": "1"}, "spec": spec, "status": status}


DEFINITIONS = [
    JobDefinition.model_validate(definition)
    for definition in (
        _definition("a", "uid-a", "mod_a.JobA", "b"),
        _definition("b", "uid-b", "mod_b.JobB", "Job B"),
        _definition("c", "uid-c", "mod_c.JobC", "Job C", {"name": "Renamed"}),
        _definition("pending", "uid-p"),
    )
]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("uid-b", "b"),
        ("b", "a"),  # a's display name wins over b's object name
        ("Job B", "b"),
        ("Renamed", "c"),
        ("Job C", None),  # overridden: the code's name no longer names it
        ("c", "c"),
        ("mod_c.JobC", "c"),
        ("pending", "pending"),
        ("missing", None),
    ],
)
def test_find_definition_precedence(key: str, expected: str | None) -> None:
    found = find_definition(DEFINITIONS, key)
    assert (found.metadata.name if found else None) == expected


def test_display_name_falls_back_to_the_class_name_then_the_object_name() -> None:
    assert display_name(_definition("x", "u", "mod.MyJob")) == "MyJob"
    assert display_name(_definition("x", "u")) == "x"
    stale = _definition("x", "u", "mod.MyJob")
    stale["status"]["code"] = {}
    stale["status"]["effective"] = {"name": "From Status"}
    assert display_name(stale) == "From Status"


def test_resolve_job_follows_the_operator_object_name_then_class_path() -> None:
    assert resolve_job(DEFINITIONS, "b").metadata.name == "b"  # type: ignore[union-attr]
    assert resolve_job(DEFINITIONS, "mod_a.JobA").metadata.name == "a"  # type: ignore[union-attr]
    assert resolve_job(DEFINITIONS, "Job B") is None


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ApiException(status=404, reason="Not Found"), KubeNotFound),
        (ApiException(status=409, reason="Conflict"), KubeConflict),
        (ApiException(status=422, reason="Invalid"), KubeInvalid),
        (ApiException(status=403, reason="Forbidden"), KubeError),
        (ApiException(status=503, reason="Unavailable"), KubeUnavailable),
        (MaxRetryError(None, "/apis", "connection refused"), KubeUnavailable),  # type: ignore[arg-type]
        (ConnectionRefusedError(), KubeUnavailable),
    ],
)
def test_client_errors_become_domain_errors(raised: Exception, expected: type[KubeError]) -> None:
    with pytest.raises(expected) as caught, _translated("JobRun x"):
        raise raised
    assert type(caught.value) is expected
    assert caught.value.message.startswith("JobRun x: ")


def test_the_server_message_is_kept() -> None:
    exc = ApiException(status=422, reason="Unprocessable", body='{"message": "spec.job: Required value"}')
    with pytest.raises(KubeInvalid, match=r"spec\.job: Required value"), _translated("JobRun x"):
        raise exc


class FakeApi:
    def __init__(self) -> None:
        self.lists = 0

    def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.lists += 1
        rv = str(self.lists)
        return {"metadata": {"resourceVersion": rv}, "items": [_definition(f"d{self.lists}", "u", "m.J")]}


def _informer_with(failures: list[Exception], **options: Any) -> tuple[Informer, FakeApi, threading.Event]:
    api = FakeApi()
    informer = Informer(api, "jobdefinitions", "ns", backoff=(0.01, 0.02), **options)
    done = threading.Event()

    def watch_from(version: str) -> str:
        if failures:
            raise failures.pop(0)
        done.set()
        informer._stop.wait(5)
        return version

    informer._watch_from = watch_from  # type: ignore[method-assign]
    return informer, api, done


@pytest.mark.parametrize(
    "failure", [ApiException(status=410, reason="Gone"), ApiException(status=500), OSError("reset")]
)
def test_the_informer_relists_after_an_expired_or_broken_watch(failure: Exception) -> None:
    informer, api, done = _informer_with([failure])
    informer.start()
    try:
        assert done.wait(5)
        assert informer.wait_synced(0)
        assert api.lists == 2
        assert [d["metadata"]["name"] for d in informer.items()] == ["d2"]
    finally:
        informer.stop()


def test_a_failing_handler_makes_the_informer_list_again() -> None:
    seen: list[str] = []

    def handler(kind: str, obj: dict[str, Any]) -> None:
        seen.append(obj["metadata"]["name"])
        if len(seen) == 1:
            raise RuntimeError("database down")

    informer, _, done = _informer_with([], handler=handler, keep=False)
    informer.start()
    try:
        assert done.wait(5)
        assert seen == ["d1", "d2"]
        assert informer.items() == []
    finally:
        informer.stop()


def test_put_keeps_the_newer_version() -> None:
    informer = Informer(FakeApi(), "jobdefinitions", "ns")
    newer = _definition("x", "u", "m.J", overrides={"grouping": "new"})
    newer["metadata"]["resourceVersion"] = "10"
    older = _definition("x", "u", "m.J")
    older["metadata"]["resourceVersion"] = "9"
    informer.put(newer)
    informer.put(older)
    assert informer.get("x") is newer


class _Deletes:
    """CustomObjectsApi.delete_namespaced_custom_object, answering with a status; records the options."""

    def __init__(self, status: int | None = None) -> None:
        self.status = status
        self.bodies: list[Any] = []

    def delete_namespaced_custom_object(self, *_args: Any, body: Any = None) -> dict[str, Any]:
        self.bodies.append(body)
        if self.status is not None:
            raise ApiException(status=self.status, reason="refused")
        return {}


def _gateway(deletes: _Deletes) -> Any:
    from jobplane_api.kube import KubeGateway
    from jobplane_api.settings import ApiSettings

    gateway = KubeGateway(ApiSettings(namespace="jobs", kubernetes=False), api_client=object())
    gateway._custom = deletes
    return gateway


def test_delete_run_deletes_only_the_run_with_that_uid_in_the_background() -> None:
    deletes = _Deletes()
    _gateway(deletes).delete_run("jobs", "hello-x1", uid="uid-1")
    (body,) = deletes.bodies
    assert (body.propagation_policy, body.preconditions.uid) == ("Background", "uid-1")


@pytest.mark.parametrize(("status", "uid"), [(404, None), (404, "uid-1"), (409, "uid-1")])
def test_delete_run_takes_a_run_already_gone_as_done(status: int, uid: str | None) -> None:
    # With a uid, 409 is the precondition failing: the name now belongs to another run.
    _gateway(_Deletes(status)).delete_run("jobs", "hello-x1", uid=uid)


@pytest.mark.parametrize(("status", "uid", "error"), [(409, None, KubeConflict), (403, "uid-1", KubeError)])
def test_delete_run_reports_other_refusals(status: int, uid: str | None, error: type[KubeError]) -> None:
    with pytest.raises(error):
        _gateway(_Deletes(status)).delete_run("jobs", "hello-x1", uid=uid)


def test_a_model_informer_parses_each_object_once_when_it_enters_the_cache(
    caplog: pytest.LogCaptureFixture,
) -> None:
    informer = ModelInformer(FakeApi(), "jobdefinitions", "ns", model=JobDefinition)
    informer.put(_definition("x", "u", "m.J"))
    first = informer.model("x")
    assert first is not None
    assert first.class_path == "m.J"
    assert informer.models() == [first]
    assert informer.models()[0] is first
    newer = _definition("x", "u", "m.K")
    newer["metadata"]["resourceVersion"] = "2"
    informer.put(newer)
    assert informer.model("x").class_path == "m.K"  # type: ignore[union-attr]
    refused = _definition("y", "v", "m.J")
    refused["spec"]["enabled"] = "not a boolean"
    with caplog.at_level(logging.WARNING, logger="jobplane_api.kube"):
        informer.put(refused)
    assert informer.get("y") is refused
    assert informer.model("y") is None
    (warning,) = [record.getMessage() for record in caplog.records if "left out" in record.getMessage()]
    assert "kind=jobdefinitions name=y field=spec.enabled" in warning
    assert "not a boolean" not in warning  # the refused value is not logged
    informer.discard("x")
    assert informer.models() == []
