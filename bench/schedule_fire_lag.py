"""Benchmark: how late JobSchedules fire when many fire in the same minute, on one operator.

Starts a local cluster (control plane + kwok pools, no real node) and `jobplane operator`, creates N
JobSchedules with the crontab `* * * * *` (each fire a JobRun of noop.Noop on a kwok pool, history limits
1/1, so runs are also started and pruned as in real use), and watches the JobRuns appear. A fire's lag is
the time between its fire time (the run's jobplane.io/scheduled-at) and the moment this script's watch
receives the run. The first minute is a warm-up (schedules still being created); the next --minutes
are measured. Reports p50/p99/max lag, fires missing, and the operator's CPU seconds and peak memory over
the measured minutes. Run as root (the cluster needs it):

    .venv/bin/python bench/schedule_fire_lag.py [--schedules 1000] [--minutes 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.operator_throughput import _percentile  # noqa: E402
from tests.cluster.cluster import Cluster, wait_for  # noqa: E402
from tests.e2e.support import KWOK_IMAGE, Workspace, running_operator  # noqa: E402

NAMESPACE = "bench-schedules"
SCHEDULED_AT = "jobplane.io/scheduled-at"


def _operator_pids() -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "jobplane.cli operator" in command:
            pids.append(int(cmdline.parent.name))
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _rss_mib(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


class RunWatch:
    """Each JobRun of the namespace as it appears: its fire time and when the watch received it."""

    def __init__(self) -> None:
        from kubernetes import client, watch

        self.lags: dict[str, tuple[datetime, float]] = {}
        self._watch = watch.Watch()
        api = client.CustomObjectsApi()

        def follow() -> None:
            for event in self._watch.stream(
                api.list_namespaced_custom_object, "jobplane.io", "v1alpha1", NAMESPACE, "jobruns"
            ):
                if event["type"] != "ADDED":
                    continue
                received = time.time()
                meta = event["object"]["metadata"]
                fired = datetime.fromisoformat(meta["annotations"][SCHEDULED_AT].replace("Z", "+00:00"))
                self.lags.setdefault(meta["name"], (fired, received - fired.timestamp()))

        self._thread = threading.Thread(target=follow, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._watch.stop()


def _schedule(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobSchedule",
        "metadata": {"name": name},
        "spec": {
            "job": "noop.Noop",
            "schedule": {"interval": "Crontab", "crontab": "* * * * *"},
            "successfulRunsHistoryLimit": 1,
            "failedRunsHistoryLimit": 1,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=3, help="measured minutes, after one of warm-up")
    args = parser.parse_args()
    with Cluster(node=False) as cluster, tempfile.TemporaryDirectory() as tmp:
        from kubernetes import client, config

        config.load_kube_config(str(cluster.kubeconfig))
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        cluster.kubectl("create", "namespace", NAMESPACE)
        wait_for(
            "the default service account",
            lambda: cluster.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode == 0,
            timeout=60,
        )
        Workspace.prepare(cluster, NAMESPACE, pool="batch").enable("noop.Noop")
        log = Path(tmp) / "operator.log"
        watcher = RunWatch()
        with running_operator(cluster, KWOK_IMAGE, log):
            wait_for("the operator to lead", lambda: "leading lease=" in log.read_text() or None, timeout=60)
            api = client.CustomObjectsApi()
            for index in range(args.schedules):
                api.create_namespaced_custom_object(
                    "jobplane.io", "v1alpha1", NAMESPACE, "jobschedules", _schedule(f"bench-{index:04d}")
                )
            # Measure from the first minute boundary after every schedule exists (and was seen once).
            time.sleep(60 - time.time() % 60 + 1)
            start = datetime.now(UTC).replace(second=0, microsecond=0)
            pids = _operator_pids()
            cpu_before, peak = _cpu_seconds(pids), 0.0
            end = start.timestamp() + 60 * args.minutes
            while time.time() < end + 30:  # the last measured minute's fires, and their lag
                peak = max(peak, _rss_mib(pids))
                time.sleep(1)
            cpu = _cpu_seconds(pids) - cpu_before
        watcher.stop()
    measured = [lag for fired, lag in watcher.lags.values() if start.timestamp() <= fired.timestamp() < end]
    expected = args.schedules * args.minutes
    report = {
        "schedules": args.schedules,
        "measured_minutes": args.minutes,
        "fires_expected": expected,
        "fires_seen": len(measured),
        "lag_p50_s": round(statistics.median(measured), 3) if measured else None,
        "lag_p99_s": round(_percentile(measured, 0.99), 3) if measured else None,
        "lag_max_s": round(max(measured), 3) if measured else None,
        "operator_cpu_seconds": round(cpu, 1),
        "operator_cpu_share": round(cpu / (60 * args.minutes + 30), 3),
        "operator_peak_rss_mib": round(peak, 1),
    }
    print(json.dumps(report, indent=2))
    return 0 if len(measured) == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
