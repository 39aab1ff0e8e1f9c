"""The trust boundary, tried as people who are not cluster admins, with the admission webhook active.

Each user is a client certificate of the test cluster with only the rights a Role gives it: ``mallory`` may
create and read JobRuns (nothing else), ``queue-writer`` may create JobQueues but not pods. What they can
make Jobplane do on their behalf must stay within what they could do themselves.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.cluster import Cluster, wait_for
from tests.e2e.api_support import Api
from tests.stack import Stack

pytestmark = pytest.mark.cluster

HELLO = "hello_world.HelloWorld"
NOOP = "noop.Noop"
SLOW = "api_examples.SlowCounter"
LOGIN = "device_login.DeviceLogin"
VARIABLES = "api_examples.ExampleVariables"


class User:
    """kubectl as one identity of the cluster, with the rights its Role gives it and no more."""

    def __init__(self, cluster: Cluster, namespace: str, name: str, rules: list[dict[str, Any]]) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.kubeconfig: Path = cluster.user_kubeconfig(name)
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": rules,
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
        }
        for obj in (role, binding):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.cluster.bins.kubectl), f"--kubeconfig={self.kubeconfig}", "-n", self.namespace, *args],
            input=input, text=True, capture_output=True, timeout=60, check=False,
        )  # fmt: skip

    def apply(self, kind: str, name: str, spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        body = {"apiVersion": "jobplane.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
        return self.kubectl("apply", "-f", "-", input=json.dumps(body))


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    return api_stack


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Api:
    api = Api(stack, stack.admin_token)
    for class_path in (HELLO, NOOP, SLOW, LOGIN, VARIABLES):
        api.enable(class_path)
    return api


@pytest.fixture(scope="module")
def mallory(stack: Stack, admin: Api) -> User:
    rules = [{"apiGroups": ["jobplane.io"], "resources": ["jobruns"], "verbs": ["create", "get", "list"]}]
    user = User(stack.cluster, stack.namespace, "mallory", rules)
    assert user.kubectl("auth", "can-i", "get", "secrets").stdout.strip() == "no"
    assert user.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "no"
    return user


def run_status(stack: Stack, name: str, *phases: str, timeout: float = 120) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = stack.cluster.get_json("jobrun", name, "-n", stack.namespace).get("status") or {}
        return status if status.get("phase") in phases else None

    return wait_for(f"jobrun {name} in {phases}", check, timeout=timeout, interval=0.5)


def definition_name(stack: Stack, class_path: str) -> str:
    for item in stack.cluster.get_json("jobdefinitions", "-n", stack.namespace)["items"]:
        if (item.get("status") or {}).get("classPath") == class_path:
            return str(item["metadata"]["name"])
    raise AssertionError(f"no JobDefinition of {class_path}")


def override(stack: Stack, class_path: str, **overrides: Any) -> None:
    patch = json.dumps({"spec": {"overrides": overrides}})
    name = definition_name(stack, class_path)
    stack.cluster.kubectl("patch", "jobdefinition", name, "-n", stack.namespace, "--type=merge", "-p", patch)


# --- who asked ----------------------------------------------------------------------------------------------


def test_a_spoofed_requester_is_replaced_by_the_real_user_and_the_job_result_shows_it(
    stack: Stack, admin: Api, mallory: User
) -> None:
    name = f"spoof-{secrets.token_hex(3)}"
    applied = mallory.apply("JobRun", name, {"job": HELLO, "data": {"who": "x"}, "requestedBy": "admin"})
    assert applied.returncode == 0, applied.stderr
    stored = stack.cluster.get_json("jobrun", name, "-n", stack.namespace)
    assert stored["spec"]["requestedBy"] == "mallory"
    uid = stored["metadata"]["uid"]
    result = admin.wait_result(uid, timeout=180)
    assert result["status"]["value"] == "SUCCESS", result
    assert result["requested_by"] == "mallory"
    assert result["user"] is None  # a Kubernetes user only: no API user of that name to point at
    # and it cannot be rewritten afterwards, by her or anyone (immutable)
    patch = json.dumps({"spec": {"requestedBy": "admin"}})
    refused = stack.cluster.kubectl(
        "patch", "jobrun", name, "-n", stack.namespace, "--type=merge", "-p", patch, check=False
    )
    assert refused.returncode != 0
    assert "requestedBy is immutable" in refused.stderr


def test_runs_made_through_the_api_keep_the_api_user_as_requester(stack: Stack, admin: Api) -> None:
    answer = admin.run(HELLO, {"data": {"who": "api"}})
    assert answer.status_code == 201, answer.text
    result_id = answer.json()["job_result"]["id"]
    run = next(
        item
        for item in stack.cluster.get_json("jobruns", "-n", stack.namespace)["items"]
        if item["metadata"]["uid"] == result_id
    )
    assert run["spec"]["requestedBy"] == "admin"  # the API user, kept for the API's own identity


# --- what a run may claim -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "spec", "reason", "message"),
    [
        (VARIABLES, {"data": {"string_variable": "x", "integer_variable": "many"}}, "InvalidInputs",
         '"integer_variable"'),
        ("no_such.Job", {}, "JobNotFound", "No JobDefinition named 'no_such.Job'"),
        ("hostname_check.CheckHostnames", {}, "JobDisabled", "an admin must enable it"),
        (HELLO, {"queue": "gpu"}, "QueueNotAllowed", "Queue 'gpu' is not one of the job's queues"),
    ],
)  # fmt: skip
def test_a_run_that_could_not_start_is_refused_at_apply_and_never_stored(
    stack: Stack, mallory: User, job: str, spec: dict[str, Any], reason: str, message: str
) -> None:
    name = f"refused-{secrets.token_hex(3)}"
    refused = mallory.apply("JobRun", name, {"job": job, **spec})
    assert refused.returncode != 0
    assert f"denied the request: {reason}: " in refused.stderr
    assert message in refused.stderr
    assert stack.cluster.kubectl("get", "jobrun", name, "-n", stack.namespace, check=False).returncode != 0


def test_bad_data_is_refused_with_the_same_errors_as_the_api(stack: Stack, admin: Api, mallory: User) -> None:
    data = {"string_variable": "x", "integer_variable": "many", "extra": 1}
    through_api = admin.run(VARIABLES, {"data": data})
    assert through_api.status_code == 400
    refused = mallory.apply("JobRun", f"bad-{secrets.token_hex(3)}", {"job": VARIABLES, "data": data})
    assert refused.returncode != 0
    document = refused.stderr.split("InvalidInputs: ", 1)[1].strip()
    assert json.loads(document) == through_api.json()


# --- Secrets ------------------------------------------------------------------------------------------------


def secret_state(stack: Stack, name: str) -> tuple[str, list[Any]]:
    secret = stack.cluster.get_json("secret", name, "-n", stack.namespace)
    return secret["metadata"]["resourceVersion"], secret["metadata"].get("ownerReferences") or []


def test_a_run_naming_someone_elses_secret_is_refused_and_the_secret_is_untouched(
    stack: Stack, mallory: User
) -> None:
    victim = f"database-{secrets.token_hex(3)}"
    stack.cluster.kubectl(
        "create", "secret", "generic", victim, "-n", stack.namespace, "--from-literal=data.json={}"
    )
    before = secret_state(stack, victim)
    spec = {"job": LOGIN, "inputsSecretRef": victim}
    refused = mallory.apply("JobRun", f"steal-{secrets.token_hex(3)}", spec)
    assert refused.returncode != 0
    assert "InputsSecretExists: " in refused.stderr
    assert secret_state(stack, victim) == before  # same resourceVersion, no owner


def test_a_secret_made_after_the_run_but_not_for_it_is_never_mounted_adopted_or_deleted(
    stack: Stack, mallory: User
) -> None:
    name, victim = f"late-{secrets.token_hex(3)}", f"later-{secrets.token_hex(3)}"
    applied = mallory.apply("JobRun", name, {"job": LOGIN, "inputsSecretRef": victim})
    assert applied.returncode == 0, applied.stderr
    stack.cluster.kubectl(
        "create", "secret", "generic", victim, "-n", stack.namespace, "--from-literal=data.json={}"
    )
    before = secret_state(stack, victim)
    status = run_status(stack, name, "Failed")
    assert status["reason"] == "InputsSecretNotOwned"
    assert not status.get("jobName")
    assert secret_state(stack, victim) == before  # still there after the run ended, unchanged


# --- singletons ---------------------------------------------------------------------------------------------


def _interval(stack: Stack, pod: str) -> tuple[datetime, datetime]:
    status = stack.cluster.get_json("pod", pod, "-n", stack.namespace)["status"]
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    parse = datetime.fromisoformat
    return parse(terminated["startedAt"].replace("Z", "+00:00")), parse(
        terminated["finishedAt"].replace("Z", "+00:00")
    )


def test_two_runs_of_a_singleton_job_never_overlap(stack: Stack, mallory: User) -> None:
    override(stack, SLOW, isSingleton=True)
    try:
        names = [f"single-{i}-{secrets.token_hex(2)}" for i in range(2)]
        for name in names:
            applied = mallory.apply("JobRun", name, {"job": SLOW, "data": {"steps": 4, "pause": 1}})
            assert applied.returncode == 0, applied.stderr
        second = wait_for(
            "a run waiting for the singleton",
            lambda: next(
                (
                    status
                    for name in names
                    if (status := stack.cluster.get_json("jobrun", name, "-n", stack.namespace).get("status"))
                    and status.get("reason") == "SingletonActive"
                ),
                None,
            ),
            timeout=60,
            interval=0.3,
        )
        assert second["phase"] == "Queued"
        waiting = _condition(second, "Waiting")
        assert (waiting["status"], waiting["reason"]) == ("True", "SingletonLockHeld")
        assert any(f"run {name} is active" in waiting["message"] for name in names), waiting["message"]
        ended = [run_status(stack, name, "Succeeded", "Failed", timeout=240) for name in names]
        assert [status["phase"] for status in ended] == ["Succeeded", "Succeeded"]
        first, then = sorted(_interval(stack, status["podName"]) for status in ended)
        assert first[1] <= then[0], f"the pods overlapped: {first} and {then}"
    finally:
        override(stack, SLOW, isSingleton=None)


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == kind)


def _cancel(stack: Stack, name: str) -> None:
    patch = json.dumps({"spec": {"cancel": True}})
    stack.cluster.kubectl("patch", "jobrun", name, "-n", stack.namespace, "--type=merge", "-p", patch)


def test_a_forced_run_takes_a_held_singleton_lock_over_and_a_run_not_forced_still_waits(
    stack: Stack, admin: Api, mallory: User
) -> None:
    override(stack, SLOW, isSingleton=True)
    rules = [
        {"apiGroups": ["jobplane.io"], "resources": ["jobruns"], "verbs": ["create", "get", "list", "force"]}
    ]
    oncall = User(stack.cluster, stack.namespace, "oncall", rules)
    tag = secrets.token_hex(2)
    stuck, forced, third = f"stuck-{tag}", f"forced-{tag}", f"third-{tag}"
    long, short = {"steps": 600, "pause": 1}, {"steps": 1, "pause": 0}
    made: list[str] = []
    try:
        assert mallory.apply("JobRun", stuck, {"job": SLOW, "data": long}).returncode == 0
        made.append(stuck)
        run_status(stack, stuck, "Running", timeout=180)

        # Creating runs is not enough to break a singleton: forcing takes the verb force too.
        sneaked = mallory.apply(
            "JobRun", f"sneak-{tag}", {"job": SLOW, "data": short, "ignoreSingletonLock": True}
        )
        assert sneaked.returncode != 0
        assert "NotAllowedToForce" in sneaked.stderr
        assert "verb force on jobruns" in sneaked.stderr

        applied = oncall.apply("JobRun", forced, {"job": SLOW, "data": long, "ignoreSingletonLock": True})
        assert applied.returncode == 0, applied.stderr
        made.append(forced)
        status = run_status(stack, forced, "Running", timeout=180)
        assert stack.cluster.get_json("jobrun", stuck, "-n", stack.namespace)["status"]["phase"] == "Running"
        assert status["singletonLockTakenFrom"] == [stuck]
        ignored = _condition(status, "SingletonLockIgnored")
        assert (ignored["status"], ignored["reason"]) == ("True", "Forced")
        assert "Forced by oncall (spec.ignoreSingletonLock)" in ignored["message"]
        assert f"from active run {stuck}, which was not stopped" in ignored["message"]

        assert mallory.apply("JobRun", third, {"job": SLOW, "data": short}).returncode == 0
        made.append(third)
        waiting = run_status(stack, third, "Queued")
        assert (waiting["reason"], f"run {forced} is active" in waiting["message"]) == (
            "SingletonActive",
            True,
        )
        # The forced run ends; the run it started beside still holds the lock.
        _cancel(stack, forced)
        wait_for(
            "the third run to wait for the stuck one",
            lambda: (
                f"run {stuck} is active"
                in (stack.cluster.get_json("jobrun", third, "-n", stack.namespace).get("status") or {}).get(
                    "message", ""
                )
            ),
            timeout=120,
            interval=0.5,
        )

        # Nautobot's key on the API's run endpoint, multipart as its run form posts it (curl -F): the run
        # starts beside the stuck one and the result is the caller's.
        from tests.e2e.test_api import curl

        token, host = stack.admin_token, stack.api_url
        job_id = admin.job(SLOW)["id"]
        answer = curl(
            "-X", "POST", "-H", f"Authorization: Token {token}", "-H", "Accept: application/json",
            "-F", "steps=1", "-F", "pause=0", "-F", "_ignore_singleton_lock=true",
            f"{host}/api/extras/jobs/{job_id}/run/",
        )  # fmt: skip
        assert answer["status"] == 201, answer
        result_id = answer["body"]["job_result"]["id"]  # type: ignore[index]
        runs = stack.cluster.get_json("jobruns", "-n", stack.namespace)["items"]
        api_run = next(item for item in runs if item["metadata"]["uid"] == result_id)
        made.append(api_run["metadata"]["name"])
        assert api_run["spec"]["ignoreSingletonLock"] is True
        assert admin.wait_result(result_id, "SUCCESS", timeout=180)["status"]["value"] == "SUCCESS"
        assert stack.cluster.get_json("jobrun", stuck, "-n", stack.namespace)["status"]["phase"] == "Running"
        api_status = stack.cluster.get_json("jobrun", api_run["metadata"]["name"], "-n", stack.namespace)[
            "status"
        ]
        assert stuck in api_status["singletonLockTakenFrom"]
        assert "Forced by admin" in _condition(api_status, "SingletonLockIgnored")["message"]

        # The stuck run ends: the run that was not forced gets its turn.
        _cancel(stack, stuck)
        assert run_status(stack, third, "Succeeded", timeout=180)["phase"] == "Succeeded"
    finally:
        for name in made:
            _cancel(stack, name)
        override(stack, SLOW, isSingleton=None)


# --- queues and repositories --------------------------------------------------------------------------------


def test_a_queue_from_someone_who_may_not_create_pods_is_refused(stack: Stack) -> None:
    rules = [{"apiGroups": ["jobplane.io"], "resources": ["jobqueues"], "verbs": ["create", "get"]}]
    writer = User(stack.cluster, stack.namespace, "queue-writer", rules)
    # A privileged pod on every node, through the operator: what a queue could otherwise buy.
    privileged = {"name": "job", "securityContext": {"privileged": True}}
    spec = {"podTemplate": {"spec": {"containers": [privileged]}}}
    refused = writer.apply("JobQueue", "escalate", spec)
    assert refused.returncode != 0
    assert "NotAllowedToCreatePods: 'queue-writer' may not create pods" in refused.stderr
    assert stack.cluster.kubectl("get", "jobqueue", "escalate", "-n", stack.namespace, check=False).returncode
