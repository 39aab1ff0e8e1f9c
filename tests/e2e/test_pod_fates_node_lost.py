"""A run whose pod's node is lost (its kubelet stopped), on a cluster of the test's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import images
from tests.cluster.cluster import Cluster, ClusterError
from tests.e2e.support import Workspace, reporting, running_operator
from tests.stack import apply_crds

pytestmark = pytest.mark.cluster

SLOW = "api_examples.SlowCounter"


# What the test cluster's controller manager waits (--node-monitor-grace-period) before it calls a node
# that stopped reporting lost: Ready Unknown, tainted unreachable.
NODE_GRACE_PERIOD = 40
# Tolerating the lost node's taints for no time: the taint manager takes the pod away at once rather than
# after the 300 s a pod gets by default.
LOST_NODE_TOLERATIONS = [
    {
        "key": f"node.kubernetes.io/{taint}",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 0,
    }
    for taint in ("unreachable", "not-ready")
]


@pytest.fixture
def own_workspace(cluster: Cluster, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on a cluster of this test's own (its real node and kwok pools), with its own operator: its
    kubelet may be stopped without taking the session's node from the other tests. (Asking for `cluster`
    first checks that a cluster can start here at all.)"""
    # With its kwok nodes: were the real node the only one, its loss would be every node's, and the node
    # lifecycle controller, taking that for a network partition of its own, would take no pod away.
    with Cluster() as own:
        apply_crds(own)
        image = own.import_image(images.project_image())
        own.kubectl("create", "namespace", "fates")
        with (
            running_operator(own, image, tmp_path / "operator.log") as log,
            reporting(Workspace.prepare(own, "fates", pool="default"), log) as workspace,
        ):
            yield workspace


def test_a_run_on_a_lost_node_fails_as_node_lost_after_the_nodes_grace_period(
    own_workspace: Workspace,
) -> None:
    workspace = own_workspace
    workspace.apply(
        "JobQueue", "fragile", {"nodeSelector": {"pool": "default"}, "tolerations": LOST_NODE_TOLERATIONS}
    )
    workspace.enable(SLOW, taskQueues=["fragile"])
    workspace.run("stranded", SLOW, data={"steps": 600, "pause": 1})
    running = workspace.wait_phase("stranded", "Running", "Succeeded", "Failed", timeout=180)
    assert running["phase"] == "Running", running

    workspace.cluster.stop_kubelet()
    stopped_at = time.monotonic()
    try:
        status = workspace.wait_phase("stranded", "Succeeded", "Failed", timeout=NODE_GRACE_PERIOD + 60)
    except ClusterError:
        # What the node lifecycle and taint managers made of the lost node, and what became of the pod.
        described = workspace.cluster.kubectl(
            "describe", "nodes,pods,jobs", "-n", workspace.namespace, check=False
        )
        print(described.stdout[-8000:])
        raise
    took = time.monotonic() - stopped_at
    print(
        f"kubelet stopped -> {status['phase']} in {took:.2f} s (grace period {NODE_GRACE_PERIOD} s): {status}"
    )
    assert (status["phase"], status["reason"]) == ("Failed", "NodeLost"), status
    assert status["message"] == "Taint manager: deleting due to NoExecute taint", status
    assert status["podName"] == running["podName"]
    workspace.failed = False
