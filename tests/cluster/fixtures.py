"""pytest fixtures for the local cluster: the session cluster, a namespace per test, log capture on failure.

Import them into a conftest (see tests/e2e/conftest.py); tests that use them are marked
`cluster`. Outside CI a missing binary skips the tests with the command that builds it; with CI=true it fails
them instead, so a CI run can never pass by skipping the cluster.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import images
from tests.cluster.binaries import Binaries
from tests.cluster.cluster import Cluster, ClusterError, reap_stale_clusters, wait_for

log = logging.getLogger(__name__)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"cluster unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    # Remember each phase's outcome on the item so fixtures can tell, at teardown, whether the test failed.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """One cluster (control plane, the real node, kwok pools) for the whole session."""
    missing = Binaries.locate().missing(node=True)
    if missing:
        _unavailable(
            f"missing {', '.join(map(str, missing))}; run scripts/setup-host.sh and "
            "tests/cluster/build-bins.sh"
        )
    if os.geteuid() != 0:
        _unavailable("the kubelet node needs root")
    reap_stale_clusters()
    c = Cluster()
    c.start()
    log.info("cluster up: %s timings=%s rss_mib=%s", c.kubeconfig, c.timings, c.memory_rss_mib())
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def testapp_image(cluster: Cluster) -> str:
    """The small locally built test image, imported into the real node; returns its reference."""
    return cluster.import_image(images.testapp_image())


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, ready for pods; its pods' state and logs are attached to a failing test."""
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    name = f"{base}-{secrets.token_hex(2)}"
    cluster.kubectl("create", "namespace", name)
    wait_for(
        f"default service account in {name}",
        lambda: cluster.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
        timeout=30,
    )
    yield name
    failed = any(
        getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
        for w in ("setup", "call")
    )
    if failed:
        request.node.add_report_section("teardown", "cluster", diagnostics(cluster, name))
    # Deletion completes in the background; test_namespace_deletion_completes checks that it does.
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def diagnostics(cluster: Cluster, namespace: str) -> str:
    """Pods, events and every container's log in namespace, plus the node daemons' recent log lines."""
    parts = []
    for args in (("get", "jobs,pods", "-o", "wide"), ("get", "events", "--sort-by=.lastTimestamp")):
        proc = cluster.kubectl(*args, "-n", namespace, check=False)
        parts.append(f"$ kubectl {' '.join(args)}\n{proc.stdout}{proc.stderr}")
    try:
        pods = cluster.get_json("pods", "-n", namespace)["items"]
    except (ClusterError, json.JSONDecodeError):
        pods = []
    for pod in pods:
        pname = pod["metadata"]["name"]
        parts.append(f"--- pod {pname} status:\n{json.dumps(pod.get('status', {}), indent=1)[:4000]}")
        proc = cluster.kubectl("logs", pname, "-n", namespace, "--all-containers", "--tail=200", check=False)
        parts.append(f"--- logs {pname}:\n{proc.stdout}{proc.stderr}")
    for rec in cluster.state.processes:
        if rec.name in ("kubelet", "containerd", "kwok"):
            text = Path(rec.log).read_text(errors="replace").splitlines()[-40:]
            parts.append(f"--- tail of {rec.log}:\n" + "\n".join(text))
    return "\n".join(parts)
