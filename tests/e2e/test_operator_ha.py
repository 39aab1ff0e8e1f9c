"""The operator's availability: killed mid-way it loses nothing; of two replicas only one acts at a time.

These tests start their own operators, restricted to the test's namespace, and run in a module of their
own so that no other test's operator is watching at the same time.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.builders import job_run
from tests.cluster.cluster import Cluster, wait_for
from tests.e2e.support import KWOK_IMAGE, Workspace, running_operator

pytestmark = pytest.mark.cluster


def test_killing_the_operator_mid_way_leaves_one_job_per_run_and_every_run_ends(
    cluster: Cluster, namespace: str, jobplane_crds: Cluster, tmp_path: Path
) -> None:
    ws = Workspace.prepare(cluster, namespace, pool="batch")
    ws.enable("noop.Noop")
    runs = [job_run(f"bulk-{i:02d}", job="noop.Noop") for i in range(50)]
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": runs})
    only_here = json.dumps([namespace])
    first_log = tmp_path / "first.log"
    with running_operator(
        cluster, KWOK_IMAGE, first_log, pending_timeout="30", kill_with="SIGKILL", namespaces=only_here
    ) as _:
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=body)
        wait_for("some runs to have Jobs", lambda: len(ws.jobs()) >= 10, timeout=60)
    # The first operator was SIGKILLed in the middle; a new one picks up where it stopped.
    with running_operator(
        cluster, KWOK_IMAGE, tmp_path / "second.log", pending_timeout="30", namespaces=only_here
    ):

        def all_ended() -> bool:
            items = cluster.get_json("jobruns", "-n", namespace)["items"]
            return all((r.get("status") or {}).get("phase") in ("Succeeded", "Failed") for r in items)

        wait_for("every run to end", all_ended, timeout=180)
    items = cluster.get_json("jobruns", "-n", namespace)["items"]
    assert len(items) == 50
    assert {(r.get("status") or {}).get("phase") for r in items} == {"Succeeded"}
    jobs = ws.jobs()
    owners = [j["metadata"]["ownerReferences"][0]["uid"] for j in jobs]
    assert len(jobs) == 50
    assert len(set(owners)) == 50
    assert set(owners) == {r["metadata"]["uid"] for r in items}


def _acted(log: Path) -> bool:
    return "run status run=" in log.read_text()


def test_of_two_replicas_only_the_lease_holder_acts_and_the_other_takes_over(
    cluster: Cluster, namespace: str, jobplane_crds: Cluster, tmp_path: Path
) -> None:
    ws = Workspace.prepare(cluster, namespace, pool="batch")
    ws.enable("noop.Noop")
    lease = f"ha-{namespace}"[:60]
    only_here = json.dumps([namespace])
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    with running_operator(
        cluster, KWOK_IMAGE, first, lease_name=lease, kill_with="SIGKILL", namespaces=only_here
    ):
        wait_for("the first replica to lead", lambda: "leading lease=" in first.read_text(), timeout=60)
        with running_operator(cluster, KWOK_IMAGE, second, lease_name=lease, namespaces=only_here):
            ws.run("one", "noop.Noop")
            ws.wait_phase("one", "Succeeded")
            assert _acted(first)
            assert not _acted(second)
            assert "leading lease=" not in second.read_text()
            # The leader dies without a word; the standby takes over once its Lease expires.
            # (The outer block SIGKILLs the first replica when the inner one ends, so stop it here.)
            first_pid = _lease_holder_pid(cluster, lease)
            os.kill(first_pid, signal.SIGKILL)
            wait_for("the second replica to lead", lambda: "leading lease=" in second.read_text(), timeout=60)
            ws.run("two", "noop.Noop")
            ws.wait_phase("two", "Succeeded")
            assert _acted(second)
    ws.failed = False


def _lease_holder_pid(cluster: Cluster, lease: str) -> int:
    holder = cluster.get_json("lease", lease, "-n", "default")["spec"]["holderIdentity"]
    return int(holder.rsplit("-", 1)[1])
