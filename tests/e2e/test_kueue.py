"""Kueue admits a JobQueue's runs: Kueue built from its Go module, its manager and webhooks, kwok pods."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.cluster import Cluster, wait_for
from tests.cluster.kueue import running_kueue
from tests.e2e.support import KWOK_IMAGE, Workspace, reporting, running_operator

pytestmark = pytest.mark.cluster

HELLO = "hello_world.HelloWorld"
QUOTA = 2
RUNS = 5
RUN_FOR = 5  # seconds each pod runs on its kwok node
TIME_LIMIT = 12  # the job's hard time limit: less than the last run's wait plus its run


@pytest.fixture(scope="module")
def kueue(jobplane_crds: Cluster) -> Iterator[Path]:
    with running_kueue(jobplane_crds) as log:
        yield log


@pytest.fixture(scope="module")
def operator(kueue: Path, jobplane_crds: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(jobplane_crds, KWOK_IMAGE, log_path) as log:
        yield log


@pytest.fixture
def workspace(cluster: Cluster, namespace: str, operator: Path, kueue: Path) -> Iterator[Workspace]:
    with reporting(Workspace.prepare(cluster, namespace, pool="batch"), operator) as ws:
        yield ws
    if ws.failed:
        print(kueue.read_text()[-6000:])


def _apply(cluster: Cluster, body: dict[str, Any]) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))


def _kueue_queues(cluster: Cluster, namespace: str) -> None:
    """A ResourceFlavor, a ClusterQueue of 2 CPUs for this namespace only, and its LocalQueue ``team``."""
    api = "kueue.x-k8s.io/v1beta2"
    flavor = f"{namespace}-flavor"
    _apply(cluster, {"apiVersion": api, "kind": "ResourceFlavor", "metadata": {"name": flavor}})
    _apply(
        cluster,
        {
            "apiVersion": api,
            "kind": "ClusterQueue",
            "metadata": {"name": f"{namespace}-cq"},
            "spec": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu"],
                        "flavors": [{"name": flavor, "resources": [{"name": "cpu", "nominalQuota": QUOTA}]}],
                    }
                ],
            },
        },
    )
    _apply(
        cluster,
        {
            "apiVersion": api,
            "kind": "LocalQueue",
            "metadata": {"name": "team", "namespace": namespace},
            "spec": {"clusterQueue": f"{namespace}-cq"},
        },
    )

    def active() -> bool:
        queue = cluster.get_json("localqueue", "team", "-n", namespace)
        conditions = (queue.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Active" and c["status"] == "True" for c in conditions)

    wait_for("Kueue's LocalQueue team to be active", active, timeout=60)


def _ended(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


class RunningSampler(threading.Thread):
    """Samples the namespace's Jobs until stopped: how many are resumed (not suspended) and not ended."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        super().__init__(daemon=True)
        self.cluster, self.namespace = cluster, namespace
        self.samples: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            jobs = self.cluster.get_json("jobs", "-n", self.namespace)["items"]
            self.samples.append(sum(1 for j in jobs if not j["spec"].get("suspend") and not _ended(j)))
            self.done.wait(0.2)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant, open at both ends (the times are whole seconds)."""
    points = sorted({t for interval in intervals for t in interval})
    mids = [a + (b - a) / 2 for a, b in itertools.pairwise(points)]
    return max((sum(1 for s, e in intervals if s < m < e) for m in mids), default=0)


def test_kueue_admits_a_queues_runs_two_at_a_time_within_its_quota_and_all_finish(
    workspace: Workspace,
) -> None:
    cluster, namespace = workspace.cluster, workspace.namespace
    _kueue_queues(cluster, namespace)
    workspace.apply(
        "JobQueue",
        "kueued",
        {
            "nodeSelector": {"pool": "batch"},
            "kueueLocalQueue": "team",
            "resources": {"requests": {"cpu": "1"}},
            "podTemplate": {"metadata": {"annotations": {"jobplane.io/kwok-run-for": f"{RUN_FOR}s"}}},
        },
    )
    workspace.enable(HELLO, taskQueues=["kueued"], timeLimit=TIME_LIMIT)
    sampler = RunningSampler(cluster, namespace)
    sampler.start()
    names = [f"k{i}" for i in range(RUNS)]
    try:
        for name in names:
            workspace.run(name, HELLO, queue="kueued", data={"who": name})

        def one_waits_for_kueue() -> dict[str, Any] | None:
            for name in names:
                status = workspace.get("jobrun", name).get("status") or {}
                waiting = next((c for c in status.get("conditions") or [] if c["type"] == "Waiting"), None)
                if waiting and waiting["status"] == "True" and waiting["reason"] == "KueueAdmission":
                    return {"status": status, "waiting": waiting}
            return None

        found = wait_for("a run to wait for Kueue's admission", one_waits_for_kueue, timeout=60)
        assert found["status"]["phase"] == "Pending"
        assert "suspended until Kueue admits it through LocalQueue team" in found["waiting"]["message"]

        def one_quotes_kueue() -> str | None:
            for name in names:
                status = workspace.get("jobrun", name).get("status") or {}
                waiting = next((c for c in status.get("conditions") or [] if c["type"] == "Waiting"), None)
                if waiting and waiting["status"] == "True" and "Kueue: " in waiting["message"]:
                    return str(waiting["message"])
            return None

        # A poll later, Kueue's own word from the Job's Workload: the quota it lacks.
        quoted = wait_for("a waiting run to quote Kueue's Workload", one_quotes_kueue, timeout=60)
        assert "insufficient unused quota" in quoted, quoted
        ended = {name: workspace.wait_phase(name, "Succeeded", "Failed", timeout=180) for name in names}
    finally:
        sampler.done.set()
        sampler.join(timeout=30)
    assert {name: status["phase"] for name, status in ended.items()} == dict.fromkeys(names, "Succeeded")
    assert sampler.samples, "no sample of the Jobs was taken"
    assert max(sampler.samples) <= QUOTA, sampler.samples
    assert max(sampler.samples) == QUOTA, sampler.samples  # the quota was used, not the runs serialised

    jobs = {job["metadata"]["labels"]["jobplane.io/run"]: job for job in workspace.jobs()}
    assert sorted(jobs) == names
    for job in jobs.values():
        assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team"
        assert job["spec"]["activeDeadlineSeconds"] == TIME_LIMIT
    # Resumed at startTime (reset by the Job controller when Kueue admits it), ended at completionTime.
    intervals = [
        (_time(j["status"]["startTime"]), _time(j["status"]["completionTime"])) for j in jobs.values()
    ]
    assert _most_at_once(intervals) <= QUOTA, intervals
    # The time limit counts from the admission, not the creation: the last runs waited suspended so long that
    # creation to end exceeds the limit, and they still completed.
    waited_longest = max(
        (_time(j["status"]["completionTime"]) - _time(j["metadata"]["creationTimestamp"])).total_seconds()
        for j in jobs.values()
    )
    assert waited_longest > TIME_LIMIT, waited_longest
    for name in names:
        status = workspace.get("jobrun", name)["status"]
        waiting = next((c for c in status.get("conditions") or [] if c["type"] == "Waiting"), None)
        assert waiting is not None, status
        assert waiting["status"] == "False", status
    workspace.failed = False


def test_a_queue_may_not_have_both_its_own_limit_and_kueue(workspace: Workspace) -> None:
    refused = workspace.apply(
        "JobQueue", "both", {"concurrencyLimit": 2, "kueueLocalQueue": "team"}, check=False
    )
    assert refused.returncode != 0
    assert "spec.concurrencyLimit and spec.kueueLocalQueue exclude each other" in refused.stderr
    workspace.failed = False
