"""Benchmark: how late JobSchedules fire when many fire in the same minute, on one operator.

Starts a local cluster (control plane + kwok pools, no real node) and `jobplane operator`, creates N
JobSchedules with the crontab `* * * * *` (each fire a JobRun of noop.Noop on a kwok pool, history limits
1/1, so runs are also started and pruned as in real use), and watches the JobRuns appear. A fire's lag is
the time between its fire time (the run's jobplane.io/scheduled-at) and the moment this script's watch
receives the run. The first minute is a warm-up (schedules still being created); the next --minutes
are measured. Reports p50/p99/max lag (as received, and by the runs' creationTimestamp), fires missing, the
operator's CPU seconds and peak memory and the load average over the measured minutes. ``--py-spy FILE``
records the operator meanwhile (collapsed stacks, idle threads included: where a fire waits). Run as root
(the cluster needs it):

    .venv/bin/python bench/schedule_fire_lag.py [--schedules 1000] [--minutes 3] [--py-spy FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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
FLOOR_NAMESPACE = "bench-floor"
SCHEDULED_AT = "jobplane.io/scheduled-at"


def _operator_pids(kubeconfig: Path) -> list[int]:
    """This cluster's operator (other clusters' operators may run on the machine too)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        try:
            environ = (cmdline.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if "jobplane.cli operator" in command and f"KUBECONFIG={kubeconfig}".encode() in environ:
            pids.append(int(cmdline.parent.name))
    return pids


def _cluster_pids(workdir: Path) -> dict[str, list[int]]:
    """This cluster's own processes (etcd, kube-apiserver, kwok, ...) by program: those naming its work
    directory on their command line."""
    found: dict[str, list[int]] = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(workdir).encode() in arg for arg in argv[1:]):
            found.setdefault(Path(argv[0].decode(errors="replace")).name, []).append(int(cmdline.parent.name))
    return found


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
    """Each JobRun of the namespace as it appears: its fire time, when the watch received it and when the
    apiserver created it.

    A watch that ends (the server's timeout, a dropped connection, 410 Gone) is resumed from the last
    resourceVersion seen, or after a relist when that version is gone: no run is missed by this script.
    A run found by a relist rather than by its ADDED event is counted (``relisted``): its receive lag is
    then the relist's, so the creation lag (creationTimestamp - fire time, whole seconds, the apiserver's
    clock) is reported beside it as the operator's lag free of this script's delays.
    """

    def __init__(self) -> None:
        from kubernetes import client

        self.runs: dict[str, tuple[datetime, float, float]] = {}  # name: fire time, receive lag, creation lag
        self.restarts = self.relists = self.relisted = 0
        self._stopped = threading.Event()
        self._watch: Any = None
        self._api = client.CustomObjectsApi()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _seen(self, obj: dict[str, Any], received: float) -> bool:
        meta = obj["metadata"]
        if meta["name"] in self.runs or SCHEDULED_AT not in (meta.get("annotations") or {}):
            return False
        fired = datetime.fromisoformat(meta["annotations"][SCHEDULED_AT].replace("Z", "+00:00"))
        created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
        lags = (received - fired.timestamp(), (created - fired).total_seconds())
        self.runs[meta["name"]] = (fired, *lags)
        return True

    def _follow(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        args = ("jobplane.io", "v1alpha1", NAMESPACE, "jobruns")
        version: str | None = None
        while not self._stopped.is_set():
            try:
                if version is None:
                    listed = self._api.list_namespaced_custom_object(*args)
                    received = time.time()
                    self.relists += 1
                    self.relisted += sum(self._seen(obj, received) for obj in listed["items"])
                    version = listed["metadata"]["resourceVersion"]
                self._watch = watch.Watch()
                for event in self._watch.stream(
                    self._api.list_namespaced_custom_object, *args, resource_version=version,
                    timeout_seconds=240, allow_watch_bookmarks=True,
                ):  # fmt: skip
                    received = time.time()
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] == "ADDED":
                        self._seen(event["object"], received)
            except ApiException as exc:
                if exc.status == 410:
                    version = None  # too old to resume from: relist
                else:
                    time.sleep(0.5)
            except Exception:  # the stream ended early (ProtocolError, a reset): resume from version
                time.sleep(0.1)
            if not self._stopped.is_set():
                self.restarts += 1

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.stop()


def _measured(watcher: RunWatch, start: float, end: float) -> list[tuple[float, float]]:
    """The receive and creation lags of the runs whose fire time is in [start, end)."""
    return [
        (received, created)
        for fired, received, created in list(watcher.runs.values())
        if start <= fired.timestamp() < end
    ]


def _profile(pids: list[int], out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy recording the operator (every thread, waiting ones too) for the measured minutes."""
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--idle", "--threads", "--format", "raw", "--rate", "20"]
    command += ["--duration", str(int(seconds)), "--pid", str(pids[0]), "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _apiserver_requests() -> dict[str, float]:
    """The apiserver's request counters (apiserver_request_total) by verb and resource."""
    from kubernetes import client

    api_client = client.ApiClient()
    method, url, headers, _, _ = api_client.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
    response = api_client.call_api(method, url, header_params=headers)
    response.read()
    counts: dict[str, float] = {}
    for line in response.data.decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, value = line[len("apiserver_request_total{") :].rsplit("} ", 1)
        fields = dict(part.split("=", 1) for part in labels.split(",") if "=" in part)
        key = " ".join(
            fields.get(name, '""').strip('"')
            for name in ("verb", "resource", "subresource")
            if fields.get(name, '""') != '""'
        )
        counts[key] = counts.get(key, 0.0) + float(value)
    return counts


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


def floor_burst(count: int, threads: int) -> list[float]:
    """The baseline: ``count`` JobRuns like a fire's, created at once by the operator's own client in
    ``threads`` threads (the operator's fire threads) while no operator runs, so nothing else asks the
    apiserver for anything. Each create's completion, in seconds from the burst's start: the floor of a
    minute's fire lag on this cluster and machine. The runs are deleted again and gone before it returns."""
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client

    from jobplane_operator.kube import Clients

    configuration = client.Configuration.get_default_copy()  # the bench's kubeconfig, as main loaded it
    configuration.connection_pool_maxsize = threads
    api_client = client.ApiClient(configuration)
    api = Clients(
        custom=client.CustomObjectsApi(api_client),
        batch=client.BatchV1Api(api_client),
        core=client.CoreV1Api(api_client),
    )
    path = Clients._path("apis", "jobplane.io", "v1alpha1", "namespaces", FLOOR_NAMESPACE, "jobruns")
    fire = datetime.now(UTC).replace(second=0, microsecond=0)
    bodies = [
        {
            "apiVersion": "jobplane.io/v1alpha1",
            "kind": "JobRun",
            "metadata": {
                "name": f"floor-{index:04d}",
                "labels": {
                    "jobplane.io/schedule": f"floor-{index:04d}",
                    "app.kubernetes.io/managed-by": "jobplane",
                },
                "annotations": {SCHEDULED_AT: fire.strftime("%Y-%m-%dT%H:%M:%SZ")},
            },
            "spec": {"job": "noop.Noop", "data": {}},
        }
        for index in range(count)
    ]
    start = time.monotonic()

    def create(body: dict[str, Any]) -> float:
        api._call("POST", path, body)
        return time.monotonic() - start

    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(create, bodies))
    api._call("DELETE", path)  # the collection: nothing of it may reach the operator that starts next
    wait_for(
        "the floor's runs to be gone",
        lambda: not json.loads(api._call("GET", path)).get("items") or None,
        timeout=300,
    )
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=3, help="measured minutes, after one of warm-up")
    parser.add_argument(
        "--grace", type=int, default=180, help="seconds to wait after the last measured minute for its fires"
    )
    parser.add_argument(
        "--floor-threads",
        type=int,
        default=10,
        help="threads of the baseline burst (the operator's fire threads)",
    )
    parser.add_argument(
        "--py-spy", type=Path, help="record the operator with py-spy (idle threads too) into this raw file"
    )
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
        cluster.kubectl("create", "namespace", FLOOR_NAMESPACE)
        floor = floor_burst(args.schedules, args.floor_threads)
        floor_load = os.getloadavg()[0]
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
            pids = _operator_pids(cluster.kubeconfig)
            end = start.timestamp() + 60 * args.minutes
            profiler = _profile(pids, args.py_spy, end - time.time()) if args.py_spy else None
            programs = _cluster_pids(cluster.workdir)
            others_before = {name: _cpu_seconds(found) for name, found in programs.items()}
            cpu_before, peak, loads = _cpu_seconds(pids), 0.0, []
            requests_before = _apiserver_requests()
            while time.time() < end:
                peak = max(peak, _rss_mib(pids))
                loads.append(os.getloadavg()[0])
                time.sleep(1)
            cpu = _cpu_seconds(pids) - cpu_before
            requests_after = _apiserver_requests()
            cluster_cpu = {
                name: round(_cpu_seconds(found) - others_before[name], 1) for name, found in programs.items()
            }
            expected = args.schedules * args.minutes
            # The last measured minute's fires, however late (a later minute's fires keep coming).
            settle = time.time() + args.grace
            while time.time() < settle and len(_measured(watcher, start.timestamp(), end)) < expected:
                time.sleep(1)
            if profiler is not None:
                profiler.wait()
            fired_lines = log.read_text().count("schedule fired ")
        watcher.stop()
    runs = _measured(watcher, start.timestamp(), end)
    received = [lag for lag, _ in runs]
    created = [lag for _, lag in runs]

    def spread(lags: list[float], prefix: str) -> dict[str, float | None]:
        return {
            f"{prefix}_p50_s": round(statistics.median(lags), 3) if lags else None,
            f"{prefix}_p99_s": round(_percentile(lags, 0.99), 3) if lags else None,
            f"{prefix}_max_s": round(max(lags), 3) if lags else None,
        }

    report = {
        "schedules": args.schedules,
        "measured_minutes": args.minutes,
        "fires_expected": expected,
        "fires_seen": len(runs),
        **spread(received, "lag"),
        # The apiserver's creationTimestamp (whole seconds, so up to 1 s early) less the fire time: the
        # operator's lag without this script's watch.
        **spread(created, "created_lag"),
        # The baseline: the same number of creates at once with nothing else on the cluster (floor_burst).
        **spread(floor, "floor"),
        "floor_load_average_1m": round(floor_load, 2),
        "lag_p99_vs_floor_p99": round(_percentile(received, 0.99) / _percentile(floor, 0.99), 2)
        if received
        else None,
        "watch_restarts": watcher.restarts,
        "watch_relisted_runs": watcher.relisted,
        "operator_fired_log_lines": fired_lines,
        "operator_cpu_seconds": round(cpu, 1),
        "operator_cpu_share": round(cpu / (60 * args.minutes), 3),
        "operator_peak_rss_mib": round(peak, 1),
        # The cluster's programs over the same minutes (CPU seconds): what the operator's calls wait on.
        "cluster_cpu_seconds": cluster_cpu,
        # What the cluster asked of the apiserver per fire over the measured minutes, by verb and resource
        # (the operator's calls, the controllers', kwok's, this script's watch).
        "apiserver_requests_per_fire": {
            key: round((after - requests_before.get(key, 0.0)) / expected, 2)
            for key, after in sorted(requests_after.items())
            if (after - requests_before.get(key, 0.0)) / expected >= 0.05
        },
        "fires_made_by_second": {
            f"<= {second} s": round(sum(1 for lag in created if lag <= second) / len(created), 3)
            for second in (1, 2, 5, 10, 20, 40)
        }
        if created
        else None,
        "load_average_1m_mean": round(statistics.mean(loads), 2) if loads else None,
        "load_average_1m_max": round(max(loads), 2) if loads else None,
    }
    print(json.dumps(report, indent=2))
    return 0 if len(runs) == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
