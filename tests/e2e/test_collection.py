"""Finished runs collected on the whole stack: a JobRun of a queue with a 5 s TTL is deleted once 5 s have
passed since it ended, its Job and pod with it, while its JobResult, logs and files stay readable through
the API, can be re-run and deleted; and ``jobplane results-retention`` deletes old results from Postgres."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.cluster.cluster import wait_for
from tests.e2e.api_support import Api
from tests.stack import Stack

pytestmark = pytest.mark.cluster

HELLO = "hello_world.HelloWorld"
FILE_JOB = "api_examples.ExampleFile"
TTL = 5


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    admin = Api(api_stack, api_stack.admin_token)
    for job in (HELLO, FILE_JOB):
        admin.enable(job)
    # The module's namespace is its own: its default queue keeps finished runs TTL seconds.
    patch = json.dumps({"spec": {"ttlSecondsAfterFinished": TTL}})
    api_stack.cluster.kubectl(
        "patch", "jobqueue", "default", "-n", api_stack.namespace, "--type=merge", "-p", patch
    )
    return api_stack


def _run(stack: Stack, name: str) -> dict[str, Any] | None:
    found = stack.cluster.kubectl("get", "jobrun", name, "-n", stack.namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def _owned(stack: Stack, kind: str, run_uid: str) -> list[str]:
    """The Jobs (or pods) of the namespace owned, directly or through their Job, by the run."""
    items = stack.cluster.get_json(kind, "-n", stack.namespace)["items"]
    jobs = {
        job["metadata"]["uid"]
        for job in stack.cluster.get_json("jobs", "-n", stack.namespace)["items"]
        if any(ref["uid"] == run_uid for ref in job["metadata"].get("ownerReferences") or [])
    }
    return [
        item["metadata"]["name"]
        for item in items
        if any(ref["uid"] in {run_uid, *jobs} for ref in item["metadata"].get("ownerReferences") or [])
    ]


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_finished_run_is_deleted_after_its_ttl_and_its_result_logs_and_files_stay(stack: Stack) -> None:
    admin = Api(stack, stack.admin_token)
    answer = admin.client.post(
        f"/api/extras/jobs/{FILE_JOB}/run/",
        data={"interval": "0"},
        files={"myfile": ("hosts.txt", b"edge-1\nedge-2\n", "text/plain")},
    )
    assert answer.status_code == 201, answer.text
    result = admin.wait_result(answer.json()["job_result"]["id"], timeout=180)
    assert result["status"]["value"] == "SUCCESS", result
    run_name = result["run"]["name"]
    ended = wait_for(
        f"jobrun {run_name} ended",
        lambda: (run := _run(stack, run_name)) and (run.get("status") or {}).get("completionTime") and run,
        timeout=60,
    )
    finished = _stamp(ended["status"]["completionTime"])
    assert ended["status"]["phase"] == "Succeeded"
    assert _owned(stack, "jobs", ended["metadata"]["uid"]), "the run had a Job"
    logs = admin.logs(result["id"])

    wait_for(f"jobrun {run_name} collected", lambda: _run(stack, run_name) is None, timeout=120, interval=0.5)
    # Not before its TTL: it was still there until at least TTL seconds after it ended.
    assert datetime.now(UTC) >= finished + timedelta(seconds=TTL)
    # Its Job and pod go with it (owner references, background deletion).
    wait_for("its Job and pod gone", lambda: not _owned(stack, "jobs", ended["metadata"]["uid"])
             and not _owned(stack, "pods", ended["metadata"]["uid"]), timeout=120)  # fmt: skip

    # Everything in Postgres stays as it was: the result (not revoked as a deleted run), logs and files.
    kept = admin.client.get(f"/api/extras/job-results/{result['id']}/")
    assert kept.status_code == 200, kept.text
    assert kept.json()["status"]["value"] == "SUCCESS"
    assert kept.json()["result"] == {"lines": 2}
    assert kept.json()["reason"] == ended["status"]["reason"] == "Completed"  # not JobRunDeleted
    assert admin.logs(result["id"]) == logs
    assert [e["message"] for e in logs if e["grouping"] == "lines"] == ["line 1: edge-1", "line 2: edge-2"]
    (report,) = kept.json()["files"]
    download = admin.client.get(f"/api/extras/file-proxies/{report['id']}/download/")
    assert download.status_code == 200
    assert download.content == b"1: edge-1\n2: edge-2\n"

    # A collected run's result can still be deleted (its JobRun is gone already), for good.
    deleted = admin.client.delete(f"/api/extras/job-results/{result['id']}/")
    assert deleted.status_code == 204, deleted.text
    assert admin.client.get(f"/api/extras/job-results/{result['id']}/").status_code == 404


def test_a_collected_runs_result_is_re_run_and_its_new_run_is_collected_too(stack: Stack) -> None:
    admin = Api(stack, stack.admin_token)
    answer = admin.run(HELLO)
    assert answer.status_code == 201, answer.text
    first = admin.wait_result(answer.json()["job_result"]["id"], timeout=180)
    assert first["status"]["value"] == "SUCCESS", first
    wait_for("the first run collected", lambda: _run(stack, first["run"]["name"]) is None, timeout=120)

    again = admin.client.post(f"/api/extras/job-results/{first['id']}/rerun/")
    assert again.status_code == 201, again.text
    second = admin.wait_result(again.json()["job_result"]["id"], timeout=180)
    assert second["status"]["value"] == "SUCCESS", second
    assert second["result"] == first["result"]
    wait_for("the re-run collected", lambda: _run(stack, second["run"]["name"]) is None, timeout=120)
    assert admin.client.get(f"/api/extras/job-results/{first['id']}/").json()["status"]["value"] == "SUCCESS"


LOGS_OF = "SELECT count(*) FROM job_log_entry WHERE job_result_id = ANY(%s)"
AGE_BY_60_DAYS = "UPDATE job_result SET date_created = date_created - interval '60 days' WHERE id = ANY(%s)"


def test_results_retention_deletes_old_results_with_their_logs_and_files(stack: Stack) -> None:
    admin = Api(stack, stack.admin_token)
    answer = admin.run(HELLO)
    assert answer.status_code == 201, answer.text
    recent = admin.wait_result(answer.json()["job_result"]["id"], timeout=180)
    old = [admin.run(HELLO).json()["job_result"]["id"] for _ in range(3)]
    for result_id in old:
        assert admin.wait_result(result_id, timeout=180)["status"]["value"] == "SUCCESS"
    url = stack.database_url.replace("postgresql+psycopg://", "postgresql://")
    aged = [uuid.UUID(result_id) for result_id in old]
    with psycopg.connect(url) as connection:
        # Age three of them by 60 days, as if they had run then.
        connection.execute(AGE_BY_60_DAYS, (aged,))
        logged = connection.execute(LOGS_OF, (aged,))
        assert logged.fetchone()[0] > 0  # type: ignore[index]

    done = subprocess.run(
        [sys.executable, "-m", "jobplane.cli", "results-retention", "--max-age", "30d", "--batch-size", "2"],
        env=stack.env(JOBPLANE_DATABASE_URL=stack.database_url),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "Results retention: deleted 3 results" in done.stdout, done.stdout
    assert "in 2 batches" in done.stdout
    for result_id in old:
        assert admin.client.get(f"/api/extras/job-results/{result_id}/").status_code == 404
    with psycopg.connect(url) as connection:
        logged = connection.execute(LOGS_OF, (aged,))
        assert logged.fetchone()[0] == 0  # type: ignore[index]
    assert admin.client.get(f"/api/extras/job-results/{recent['id']}/").json()["status"]["value"] == "SUCCESS"


def test_a_queue_with_a_negative_ttl_is_refused(stack: Stack) -> None:
    queue = stack.default_queue(stack.namespace)
    queue["metadata"]["name"] = "negative-ttl"
    queue["spec"]["ttlSecondsAfterFinished"] = -1
    refused = stack.cluster.kubectl("apply", "-f", "-", input=json.dumps(queue), check=False)
    assert refused.returncode != 0
    assert "ttlSecondsAfterFinished" in refused.stderr


def test_a_run_of_a_queue_without_a_ttl_is_collected_after_the_operators_default(stack: Stack) -> None:
    # Last in the module: the queue loses its TTL and the operator restarts with a default of 3 s.
    namespace = stack.namespace
    patch = json.dumps({"spec": {"ttlSecondsAfterFinished": None}})
    stack.cluster.kubectl("patch", "jobqueue", "default", "-n", namespace, "--type=merge", "-p", patch)
    queue = stack.cluster.get_json("jobqueue", "default", "-n", namespace)
    assert "ttlSecondsAfterFinished" not in queue["spec"]
    stack.operator_env["JOBPLANE_OPERATOR_RUN_TTL_SECONDS"] = "3"
    stack.restart_operator()
    admin = Api(stack, stack.admin_token)

    answer = admin.run(HELLO)
    assert answer.status_code == 201, answer.text
    result = admin.wait_result(answer.json()["job_result"]["id"], timeout=180)
    assert result["status"]["value"] == "SUCCESS", result
    run_name = result["run"]["name"]
    ended = wait_for(
        f"jobrun {run_name} ended",
        lambda: (run := _run(stack, run_name)) and (run.get("status") or {}).get("completionTime") and run,
        timeout=60,
    )

    wait_for(f"jobrun {run_name} collected", lambda: _run(stack, run_name) is None, timeout=120, interval=0.5)
    assert datetime.now(UTC) >= _stamp(ended["status"]["completionTime"]) + timedelta(seconds=3)
    assert admin.client.get(f"/api/extras/job-results/{result['id']}/").json()["status"]["value"] == "SUCCESS"
