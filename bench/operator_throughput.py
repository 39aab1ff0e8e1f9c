"""Benchmark: how fast the operator turns JobRuns into batch Jobs, against creating the Jobs directly.

Starts a local cluster (control plane + kwok pools, no real node), then in the same run:
  baseline: the Kubernetes client creates N batch/v1 Jobs directly, one after the other;
  operator: N JobRuns are created one after the other while `jobplane operator` creates their Jobs;
  backlog: N JobRuns exist before an operator starts; it works through them (first Job to last Job).
Baseline and operator bursts are taken in turn, --rounds times, each once the control plane is quiet
again: a 2 s burst's speed drifts with the machine, so the ratio is of the medians. Reports the rates
(Jobs/s), the ratios, the p50/p99 latency from a JobRun's creation to its Job's appearance in a watch,
and the CPU seconds each component used in each phase. In each round, also at a steady pace
(--paced-rate, 10 runs/s): the raw client's Jobs (POST to watch: the floor of one hop), JobRuns made into
Jobs by a minimal relay (a watch and a create in a process of its own: the least any operator does), and
JobRuns made into Jobs by the operator; p50/p99 from the JobRun's creation to its Job in the watch, and
the operator's p99 over the relay's. Last, in the same run, the time to create one JobRun through the
admission webhook and without it (p50/p99, and what the webhook adds to the p99). Run as root (the
cluster needs it):

    .venv/bin/python bench/operator_throughput.py [--runs 500] [--rounds 3] [--paced-runs 300]
        [--no-backlog] [--no-admission] [--py-spy FILE]

Each clock starts once a first warm-up Job exists (the operator's: once it has turned a warm-up JobRun
into its Job): the figures are the steady rate, not the operator's start-up (imports, API discovery,
first listings).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster.cluster import Cluster, wait_for  # noqa: E402
from tests.e2e.support import KWOK_IMAGE, Workspace, running_operator  # noqa: E402
from tests.stack import ADMISSION_OPT_OUT, start_admission  # noqa: E402


def _cpu_by_component() -> dict[str, float]:
    """CPU seconds used so far by each part of the test cluster, the operator and this script."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    found: dict[int, tuple[int, str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(stat.parent.name)] = (int(fields[1]), command, (int(fields[11]) + int(fields[12])) / ticks)
    for pid, (_, command, seconds) in found.items():
        # Only this script's own processes: other sessions' clusters may share the machine.
        ancestor = pid
        while ancestor not in (0, 1, os.getpid()) and ancestor in found:
            ancestor = found[ancestor][0]
        if ancestor != os.getpid():
            continue
        name = "bench" if pid == os.getpid() else next((part for part in COMPONENTS if part in command), None)
        if name is not None:
            used[name] = used.get(name, 0.0) + seconds
    return used


COMPONENTS = (
    "kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok", "operator", "relay",
)  # fmt: skip


class CpuWindow:
    """CPU seconds each component used between start() and stop(), summed over every such window."""

    def __init__(self) -> None:
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._before = _cpu_by_component()

    def stop(self) -> None:
        after = _cpu_by_component()
        for key in sorted(after):
            spent = self.used.get(key, 0.0) + after[key] - self._before.get(key, 0.0)
            self.used[key] = round(spent, 2)


def _job(name: str, pool: str = "batch") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"pool": pool},
                    "containers": [{"name": "job", "image": KWOK_IMAGE, "command": ["jobplane", "run-pod"]}],
                }
            },
        },
    }


class JobWatch:
    """Records when each Job of a namespace first appears in a watch (local monotonic clock)."""

    def __init__(self, namespace: str) -> None:
        from kubernetes import client, watch

        self.seen: dict[str, float] = {}
        self._stopped = False
        self._watch = watch.Watch()
        self._api = client.BatchV1Api()
        self._namespace = namespace
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from kubernetes import watch

        while not self._stopped:
            try:
                for event in self._watch.stream(
                    self._api.list_namespaced_job, self._namespace, timeout_seconds=600
                ):
                    self.seen.setdefault(event["object"].metadata.name, time.monotonic())
            except Exception as exc:  # The cluster going away ends the watch; the figures are taken by then.
                if self._stopped:
                    return
                # A broken watch under load: watch again (its listing brings back what was missed).
                print(f"job watch restarted: {exc!r}", file=sys.stderr)
                self._watch = watch.Watch()

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def settle(limit: float = 30.0) -> None:
    """Wait until the control plane is quiet: the last burst's pods placed and its Jobs' statuses written,
    so that one burst's aftermath does not weigh on the next."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = _cpu_by_component()
        time.sleep(1.0)
        after = _cpu_by_component()
        if sum(after[key] - before.get(key, 0.0) for key in after if key != "bench") < 0.25:
            return


def baseline(namespace: str, count: int, cpu: CpuWindow) -> float:
    """Jobs/s of the Kubernetes client creating ``count`` Jobs one after the other, as seen by a watch."""
    from kubernetes import client

    api = client.BatchV1Api()
    watcher = JobWatch(namespace)
    api.create_namespaced_job(namespace, _job("warm-up"))
    wait_for("the warm-up Job", lambda: "warm-up" in watcher.seen or None, timeout=60)
    cpu.start()
    start = time.monotonic()
    for index in range(count):
        api.create_namespaced_job(namespace, _job(f"direct-{index:04d}"))
    wait_for("the baseline Jobs", lambda: len(watcher.seen) >= count + 1 or None, timeout=600)
    cpu.stop()
    elapsed = max(watcher.seen.values()) - start
    watcher.stop()
    return count / elapsed


def _run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobRun",
        "metadata": {"name": name},
        "spec": {"job": "noop.Noop"},
    }


@dataclass
class Burst:
    """One streaming burst through the operator: its rate, latencies and how long creating the runs took."""

    rate: float
    latencies: list[float]
    creating: float


def through_operator(namespace: str, count: int, warm_up: bool, cpu: CpuWindow) -> Burst:
    """JobRuns created one after the other while the (running) operator turns them into Jobs."""
    from kubernetes import client

    api = client.CustomObjectsApi()
    watcher = JobWatch(namespace)
    if warm_up:
        api.create_namespaced_custom_object("jobplane.io", "v1alpha1", namespace, "jobruns", _run("warm-up"))
        wait_for("the warm-up run's Job", lambda: len(watcher.seen) >= 1 or None, timeout=120)
    created: dict[str, float] = {}
    cpu.start()
    start = time.monotonic()
    for index in range(count):
        name = f"bench-{index:04d}"
        api.create_namespaced_custom_object("jobplane.io", "v1alpha1", namespace, "jobruns", _run(name))
        created[name] = time.monotonic()
    wait_for("the operator's Jobs", lambda: len(watcher.seen) >= count + warm_up or None, timeout=900)
    cpu.stop()
    watcher.stop()
    latencies = []
    for job_name, seen in watcher.seen.items():
        run_name = job_name.rsplit("-", 1)[0]
        if run_name in created:
            latencies.append(seen - created[run_name])
    elapsed = max(watcher.seen.values()) - start
    return Burst(count / elapsed, latencies, max(created.values()) - start)


@dataclass
class Paced:
    """One paced phase: the rate achieved and each object's latency to its Job in the watch."""

    rate: float
    latencies: list[float]


def _paced(count: int, rate: float, create: Any) -> tuple[dict[str, float], float]:
    """Call ``create(index)`` ``count`` times at ``rate`` per second (one thread, on a fixed schedule, so
    that a slow call does not push the later ones back); returns when each call began, and the rate."""
    began: dict[str, float] = {}
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        began[create(index)] = time.monotonic()
    return began, count / (time.monotonic() - start)


def paced_direct(namespace: str, count: int, rate: float) -> Paced:
    """The floor of a Job's latency at ``rate``: the client's POST of a Job until the watch shows it."""
    from kubernetes import client

    api = client.BatchV1Api()
    watcher = JobWatch(namespace)

    def create(index: int) -> str:
        name = f"paced-{index:04d}"
        started = time.monotonic()
        api.create_namespaced_job(namespace, _job(name))
        starts[name] = started
        return name

    starts: dict[str, float] = {}
    _, achieved = _paced(count, rate, create)
    wait_for("the paced Jobs", lambda: len(watcher.seen) >= count or None, timeout=300)
    watcher.stop()
    return Paced(achieved, [watcher.seen[name] - starts[name] for name in starts])


def relay(namespace: str) -> None:
    """The least an operator does: watch the namespace's JobRuns and create a Job for each new one, from
    as many threads as the operator's handlers, in a process of its own as the operator is. The floor of
    a JobRun's way to its Job on this machine."""
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client, config, watch

    config.load_kube_config()
    custom, batch = client.CustomObjectsApi(), client.BatchV1Api()
    with ThreadPoolExecutor(RELAY_THREADS) as pool:
        for event in watch.Watch().stream(
            custom.list_namespaced_custom_object, "jobplane.io", "v1alpha1", namespace, "jobruns"
        ):
            if event["type"] == "ADDED":
                name = event["object"]["metadata"]["name"]
                pool.submit(batch.create_namespaced_job, namespace, _job(f"{name}-relay"))


RELAY_THREADS = 20  # the operator's handler threads (HANDLER_THREADS)


def paced_relay(namespace: str, count: int, rate: float) -> Paced:
    """JobRuns created at ``rate`` and made into Jobs by :func:`relay` rather than the operator; the clock
    starts once the relay has made a warm-up run's Job (its start-up is not what is measured)."""
    process = subprocess.Popen([sys.executable, __file__, "--relay", namespace])
    try:
        return paced_operator(namespace, count, rate, warm_up=True)
    finally:
        process.terminate()
        process.wait(timeout=20)


def paced_operator(namespace: str, count: int, rate: float, *, warm_up: bool = False) -> Paced:
    """JobRuns created at ``rate`` while the operator runs: each one's time from its creation (the
    POST's answer: the JobRun exists) until its Job is in the watch. ``warm_up``: first one run whose Job
    is awaited, left out of the figures."""
    from kubernetes import client

    api = client.CustomObjectsApi()
    watcher = JobWatch(namespace)

    def create(index: int) -> str:
        name = f"paced-{index:04d}"
        api.create_namespaced_custom_object("jobplane.io", "v1alpha1", namespace, "jobruns", _run(name))
        return name

    if warm_up:
        api.create_namespaced_custom_object("jobplane.io", "v1alpha1", namespace, "jobruns", _run("warm-up"))
        wait_for("the warm-up run's Job", lambda: watcher.seen or None, timeout=300)
    created, achieved = _paced(count, rate, create)
    wait_for("the paced runs' Jobs", lambda: len(watcher.seen) >= count + warm_up or None, timeout=300)
    watcher.stop()
    latencies = [
        seen - created[job.rsplit("-", 1)[0]]
        for job, seen in watcher.seen.items()
        if job.rsplit("-", 1)[0] in created
    ]
    return Paced(achieved, latencies)


# The two kwok nodes of the pool hold 220 pods, so most runs' pods wait, unschedulable, and kwok's never
# end. The re-checks of waiting and running runs (every pending_timeout/3 and running_resync_interval) are
# set beyond the bench's length, so that one burst's runs are not polled during a later burst.
OPERATOR_SETTINGS = {"pending_timeout": "3600", "resync_interval": "5", "running_resync_interval": "3600"}


def backlog_drain(namespace: str, count: int, log: Path, cluster: Cluster, cpu: CpuWindow) -> float:
    """Jobs/s while the operator works through a backlog: every JobRun exists before it starts.

    The clock runs from the first Job to the last, so neither the operator's start-up nor the speed at
    which this script can create JobRuns counts: only how fast the operator turns runs into Jobs.
    """
    from kubernetes import client

    api = client.CustomObjectsApi()
    for index in range(count):
        api.create_namespaced_custom_object(
            "jobplane.io", "v1alpha1", namespace, "jobruns", _run(f"backlog-{index:04d}")
        )
    watcher = JobWatch(namespace)
    # Its namespace only: the earlier phases' runs (the relay's, which it would refuse) are not its work.
    with running_operator(cluster, KWOK_IMAGE, log, **OPERATOR_SETTINGS, namespaces=json.dumps([namespace])):
        wait_for("the backlog's first Job", lambda: watcher.seen or None, timeout=120)
        cpu.start()
        wait_for("the backlog's Jobs", lambda: len(watcher.seen) >= count or None, timeout=900)
        cpu.stop()
        watcher.stop()
    times = sorted(watcher.seen.values())
    return (count - 1) / (times[-1] - times[0])


def admission_latency(cluster: Cluster, count: int, block: int = 50) -> dict[str, list[float]]:
    """Seconds to create one JobRun, through the admission webhook and without it (a namespace opted out),
    in alternating blocks so that both see the same machine. The webhook is the tests' (tests/stack.py):
    `jobplane operator` serving admission only, behind the chart's webhook configurations."""
    from kubernetes import client

    start_admission(cluster)
    api = client.CustomObjectsApi()
    namespaces = {"with_webhook": "bench-admission", "without_webhook": "bench-no-admission"}
    for namespace in namespaces.values():
        cluster.kubectl("create", "namespace", namespace)
        Workspace.prepare(cluster, namespace, pool="batch").enable("noop.Noop")
    cluster.kubectl("label", "namespace", namespaces["without_webhook"], f"{ADMISSION_OPT_OUT}=disabled")
    seconds: dict[str, list[float]] = {key: [] for key in namespaces}
    for first in range(0, count, block):
        for key, namespace in namespaces.items():
            for i in range(first, min(count, first + block)):
                body = {**_run(f"latency-{i}"), "metadata": {"name": f"latency-{i}"}}
                began = time.perf_counter()
                api.create_namespaced_custom_object("jobplane.io", "v1alpha1", namespace, "jobruns", body)
                seconds[key].append(time.perf_counter() - began)
    return seconds


def _child_operator() -> int:
    """The pid of the `jobplane operator` this script started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == os.getpid() and b"jobplane.cli\0operator" in command:
            return int(stat.parent.name)
    raise RuntimeError("no operator process found")


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording the operator (every thread, waiting ones too) until SIGINT."""
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--idle", "--threads", "--format", "raw", "--rate", "50"]
    command += ["--pid", str(pid), "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def print_summary(report: dict[str, Any]) -> None:
    """The figures the issue's aims name, one line each, before the JSON."""
    print(f"{'round':>5} {'load':>5} {'raw Jobs/s':>10} {'operator Jobs/s':>15} {'ratio':>6}", end="")
    paced = report.get("paced")
    if paced:
        print(
            f" {'paced/s':>8} {'p50 s':>6} {'p99 s':>6} {'relay p50':>9} {'relay p99':>9} {'x relay':>7} "
            f"{'floor p50':>9} {'floor p99':>9}",
            end="",
        )
    print()
    for index in range(report["rounds"]):
        print(
            f"{index + 1:>5} {report['load_1m'][index]:>5} {report['baseline_jobs_per_s'][index]:>10} "
            f"{report['operator_jobs_per_s'][index]:>15} {report['operator_vs_baseline_by_round'][index]:>6}",
            end="",
        )
        if paced:
            row = paced["by_round"][index]
            print(
                f" {row['achieved_runs_per_s']:>8} {row['p50_s']:>6} {row['p99_s']:>6} "
                f"{row['relay_p50_s']:>9} "
                f"{row['relay_p99_s']:>9} {row['p99_vs_relay_p99']:>7} {row['floor_p50_s']:>9} "
                f"{row['floor_p99_s']:>9}",
                end="",
            )
        print()
    print(
        f"operator/raw client (medians): {report['operator_vs_baseline']} (aim >= 0.8); burst latency p50 "
        f"{report['latency_p50_s']} s, p99 {report['latency_p99_s']} s"
    )
    if paced:
        print(
            f"JobRun->Job at {paced['rate']:g} runs/s ({paced['runs']} runs x {report['rounds']}): p50 "
            f"{paced['p50_s']} s, p99 {paced['p99_s']} s (aim <= 0.25 s); a minimal relay (watch + create) "
            f"p50 {paced['relay_p50_s']} s, p99 {paced['relay_p99_s']} s; the raw client's Job POST to watch "
            f"p99 {paced['floor_p99_s']} s"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and operator bursts, taken in turn")
    parser.add_argument("--paced-rate", type=float, default=10.0, help="runs/s of the paced latency phase")
    parser.add_argument("--paced-runs", type=int, default=300, help="runs per paced phase (0: none)")
    parser.add_argument("--no-backlog", action="store_true", help="skip the backlog drain")
    parser.add_argument("--no-admission", action="store_true", help="skip the admission webhook's latency")
    parser.add_argument("--py-spy", type=Path, help="record the operator with py-spy (raw) over the rounds")
    parser.add_argument("--relay", help=argparse.SUPPRESS)  # the relay's own process (paced_relay)
    args = parser.parse_args()
    if args.relay:
        relay(args.relay)
        return 0
    rounds = range(args.rounds)
    with Cluster(node=False) as cluster, tempfile.TemporaryDirectory() as tmp:
        from kubernetes import config

        config.load_kube_config(str(cluster.kubeconfig))
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        directs = [f"bench-direct-{r}" for r in rounds]
        streams = [f"bench-operator-{r}" for r in rounds]
        paced_directs = [f"bench-paced-direct-{r}" for r in rounds]
        paced_streams = [f"bench-paced-operator-{r}" for r in rounds]
        # Not watched by the operator's handlers: a JobRun there has no definition, so the operator
        # refuses it (it never creates a Job there); the relay creates one for each.
        paced_relays = [f"bench-paced-relay-{r}" for r in rounds]
        every = [*directs, *streams, *paced_directs, *paced_streams, *paced_relays, "bench-backlog"]
        for namespace in every:
            cluster.kubectl("create", "namespace", namespace)
        wait_for(
            "service accounts",
            lambda: (
                cluster.kubectl("get", "sa", "default", "-n", "bench-backlog", check=False).returncode == 0
                or None
            ),
            timeout=60,
        )
        for namespace in [*streams, *paced_streams, "bench-backlog"]:
            Workspace.prepare(cluster, namespace, pool="batch").enable("noop.Noop")
        windows = {"baseline": CpuWindow(), "operator": CpuWindow(), "backlog": CpuWindow()}
        direct_rates: list[float] = []
        bursts: list[Burst] = []
        paced: list[tuple[Paced, Paced, Paced]] = []
        loads: list[float] = []
        log = Path(tmp) / "operator.log"
        # Its namespaces only: the relay's runs (no definitions there) are not the operator's to refuse.
        watched = json.dumps([*streams, *paced_streams])
        with running_operator(cluster, KWOK_IMAGE, log, **OPERATOR_SETTINGS, namespaces=watched):
            wait_for("the operator to lead", lambda: "leading lease=" in log.read_text() or None, timeout=60)
            profiler = _py_spy(_child_operator(), args.py_spy) if args.py_spy else None
            # In turn, each after the last one's aftermath: the machine's speed drifts over a minute.
            for r in rounds:
                loads.append(os.getloadavg()[0])
                settle()
                direct_rates.append(baseline(directs[r], args.runs, windows["baseline"]))
                settle()
                bursts.append(through_operator(streams[r], args.runs, r == 0, windows["operator"]))
                if args.paced_runs:
                    settle()
                    floor = paced_direct(paced_directs[r], args.paced_runs, args.paced_rate)
                    settle()
                    relayed = paced_relay(paced_relays[r], args.paced_runs, args.paced_rate)
                    settle()
                    ours = paced_operator(paced_streams[r], args.paced_runs, args.paced_rate)
                    paced.append((floor, relayed, ours))
                figures = {"raw_jobs_per_s": direct_rates[-1], "operator_jobs_per_s": bursts[-1].rate}
                if paced:
                    figures.update(
                        {
                            f"{key}_p{q}": round(_percentile(phase.latencies, q / 100), 3)
                            for key, phase in zip(("raw", "relay", "operator"), paced[-1], strict=True)
                            for q in (50, 99)
                        }
                    )
                print(f"  round {r + 1} done (load {loads[-1]:.1f}): {figures}", file=sys.stderr)
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=120)
        drain_rate = None
        if not args.no_backlog:
            settle()
            drain_rate = backlog_drain(
                "bench-backlog", args.runs, Path(tmp) / "backlog.log", cluster, windows["backlog"]
            )
        created = None
        if not args.no_admission:
            settle()
            created = admission_latency(cluster, args.runs)
    direct = statistics.median(direct_rates)
    streaming = statistics.median(burst.rate for burst in bursts)
    latencies = [latency for burst in bursts for latency in burst.latencies]
    report: dict[str, Any] = {
        "runs": args.runs,
        "rounds": args.rounds,
        "load_1m": [round(load, 1) for load in loads],
        "baseline_jobs_per_s": [round(rate, 1) for rate in direct_rates],
        "operator_jobs_per_s": [round(burst.rate, 1) for burst in bursts],
        "operator_vs_baseline_by_round": [
            round(burst.rate / rate, 2) for burst, rate in zip(bursts, direct_rates, strict=True)
        ],
        "operator_vs_baseline": round(streaming / direct, 2),
        "jobruns_created_in_s": [round(burst.creating, 2) for burst in bursts],
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(_percentile(latencies, 0.99), 3),
        "cpu_seconds": {phase: window.used for phase, window in windows.items()},
        "aim": (
            "operator_vs_baseline >= 0.8 (medians of the rounds); paced p99 <= 0.25 s; "
            "admission_adds_p99_ms <= 20"
        ),
    }
    if paced:
        report["paced"] = {
            "runs": args.paced_runs,
            "rate": args.paced_rate,
            "by_round": [
                {
                    "achieved_runs_per_s": round(ours.rate, 1),
                    "p50_s": round(statistics.median(ours.latencies), 3),
                    "p99_s": round(_percentile(ours.latencies, 0.99), 3),
                    "floor_p50_s": round(statistics.median(floor.latencies), 3),
                    "floor_p99_s": round(_percentile(floor.latencies, 0.99), 3),
                    "relay_p50_s": round(statistics.median(relayed.latencies), 3),
                    "relay_p99_s": round(_percentile(relayed.latencies, 0.99), 3),
                    "p99_vs_relay_p99": round(
                        _percentile(ours.latencies, 0.99) / _percentile(relayed.latencies, 0.99), 2
                    ),
                }
                for floor, relayed, ours in paced
            ],
        }
        every = [latency for _, _, ours in paced for latency in ours.latencies]
        floors = [latency for floor, _, _ in paced for latency in floor.latencies]
        relays = [latency for _, relayed, _ in paced for latency in relayed.latencies]
        report["paced"]["p50_s"] = round(statistics.median(every), 3)
        report["paced"]["p99_s"] = round(_percentile(every, 0.99), 3)
        report["paced"]["floor_p99_s"] = round(_percentile(floors, 0.99), 3)
        report["paced"]["relay_p50_s"] = round(statistics.median(relays), 3)
        report["paced"]["relay_p99_s"] = round(_percentile(relays, 0.99), 3)
    if drain_rate is not None:
        report["operator_backlog_drain_jobs_per_s"] = round(drain_rate, 1)
        report["backlog_drain_vs_baseline"] = round(drain_rate / direct, 2)
    if created is not None:
        report["jobrun_create_ms"] = {
            key: {
                "p50": round(1000 * statistics.median(values), 1),
                "p99": round(1000 * _percentile(values, 0.99), 1),
            }
            for key, values in created.items()
        }
        report["admission_adds_p99_ms"] = round(
            1000
            * (_percentile(created["with_webhook"], 0.99) - _percentile(created["without_webhook"], 0.99)),
            1,
        )
    print_summary(report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
