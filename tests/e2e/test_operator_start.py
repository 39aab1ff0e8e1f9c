"""An operator started before its CRDs are served (a release applies both at once): it waits, says for
which, and watches them once they are — kopf, given named namespaces, discovers the CRDs only at its start."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.builders import job_queue
from tests.cluster.cluster import Cluster, wait_for
from tests.stack import CRD_NAMES, CRDS_DIR

NAMESPACE = "early"


def test_an_operator_started_before_its_crds_waits_for_them_then_reconciles() -> None:
    with Cluster(node=False, kwok=False) as cluster:
        cluster.kubectl("create", "namespace", NAMESPACE)
        env = {
            "KUBECONFIG": str(cluster.kubeconfig),
            "JOBPLANE_OPERATOR_NAMESPACES": json.dumps([NAMESPACE]),
            "JOBPLANE_OPERATOR_RUN_TOKEN_KEY": "c" * 64,
            "JOBPLANE_OPERATOR_LEASE_NAMESPACE": NAMESPACE,
            "JOBPLANE_OPERATOR_METRICS_PORT": "0",
            "JOBPLANE_OPERATOR_RESYNC_INTERVAL": "1",
        }
        # Spawned by the cluster, as the stack's admission process: stopped with it.
        cluster._spawn("jobplane-operator", Path(sys.executable), ["-m", "jobplane.cli", "operator"], env)
        log = cluster.logs / "jobplane-operator.log"

        def waiting() -> str | None:
            cluster._check_alive()  # an operator that exited says why
            text = log.read_text(errors="replace")
            return text if "waiting for the jobplane.io CRDs of" in text else None

        said = wait_for("the operator to say what it waits for", waiting, timeout=90)
        assert "jobdefinitions, jobqueues, jobrepositories, jobruns, jobschedules" in said, said

        cluster.kubectl("apply", "--server-side", "-f", str(CRDS_DIR))
        for name in CRD_NAMES:
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        queue = job_queue("late", namespace=NAMESPACE, concurrencyLimit=3)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(queue))

        def queue_status() -> dict[str, object] | None:
            got = cluster.get_json("jobqueue", "late", "-n", NAMESPACE)
            return got.get("status") or None

        status = wait_for("the late queue's status, written by the operator", queue_status, timeout=90)
        assert status.get("limit") == 3, (status, log.read_text(errors="replace")[-3000:])
