"""Benchmark: one operator at scale: 1,000 kwok nodes in 10 pools, a burst of runs and a steady daily rate.

Starts a local cluster (control plane + kwok, no real node), adds --nodes kwok nodes in --pools pools
(label ``pool=pool-<n>``) and one JobQueue per pool, then in one run:

  baseline: the Kubernetes client creates --burst batch Jobs directly (the same pod, the same pools, the
            same --threads), as fast as it can: Job creation -> Job in a watch, -> Job Complete;
  burst:    --burst JobRuns created the same way while `jobplane operator` runs them: JobRun -> its Job,
            JobRun -> terminal (Succeeded); then the operator's RSS with every run finished and present,
            and again once the queues' TTL has collected them (the TTL is lowered to --ttl after the burst);
  steady:   --per-day runs a day (100,000: 1.16 runs/s) for --steady-minutes, the queues' TTL at --ttl:
            the same latencies, the operator's RSS every 15 s (first and last minutes, slope), the JobRuns
            present at the end.
Apiserver requests per run (apiserver_request_total) for each phase. Kwok's pods run 200 ms and succeed.
Run as root (the cluster needs it); `nice -n 19` keeps a shared machine usable:

    .venv/bin/python bench/scale.py [--nodes 1000] [--pools 10] [--burst 10000] [--steady-minutes 30]
        [--per-day 100000] [--ttl 60] [--threads 4] [--trim] [--alloc-log FILE] [--tracemalloc FRAMES]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.operator_throughput import _job, _percentile  # noqa: E402
from bench.schedule_fire_lag import _apiserver_requests, _operator_pids, _rss_mib  # noqa: E402
from tests.cluster.cluster import KWOK_NODE_LABEL, Cluster, wait_for  # noqa: E402
from tests.e2e.support import KWOK_IMAGE, Workspace, running_operator  # noqa: E402

GROUP = ("jobplane.io", "v1alpha1")
TERMINAL = {"Succeeded", "Failed", "Cancelled"}
# Runs are re-checked only when their Job or pod changes (kwok's pods end within a second); the poll
# settings of bench/operator_throughput.py keep one phase's runs from being polled during the next.
OPERATOR_SETTINGS = {"pending_timeout": "3600", "resync_interval": "5", "running_resync_interval": "3600"}


def _hook_path() -> str:
    """PYTHONPATH with bench/heap_hook first, so the operator's interpreter loads its sitecustomize."""
    return os.pathsep.join(filter(None, [str(ROOT / "bench" / "heap_hook"), os.environ.get("PYTHONPATH")]))


class HeapSnapshots:
    """The operator's tracemalloc snapshots at the phase's moments (``--tracemalloc``): what Python holds
    live, by where it was allocated, beside its RSS (which also counts what Python keeps and does not use).
    Tracing starts at the first snapshot (bench/heap_hook), so "before" holds nothing and the later ones
    hold what was allocated since and is still live."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: dict[str, Any] = {}

    @staticmethod
    def environment(directory: Path, frames: int) -> dict[str, str]:
        """What the operator's environment needs for bench/heap_hook to answer SIGUSR2."""
        return {
            "PYTHONPATH": _hook_path(),
            "JOBPLANE_BENCH_HEAP_DIR": str(directory),
            "JOBPLANE_BENCH_HEAP_FRAMES": str(frames),
        }

    def take(self, label: str, pids: list[int]) -> None:
        import tracemalloc

        before = set(self.directory.glob("*.snapshot"))
        for pid in pids:
            os.kill(pid, signal.SIGUSR2)
        wait_for(
            f"the operator's heap snapshot ({label})",
            lambda: (set(self.directory.glob("*.snapshot")) - before) or None,
            timeout=600,
            interval=1,
        )
        (path,) = set(self.directory.glob("*.snapshot")) - before
        self.taken[label] = tracemalloc.Snapshot.load(str(path))

    def traced_mib(self, label: str) -> float:
        return round(sum(stat.size for stat in self.taken[label].statistics("filename")) / 2**20, 1)

    def growth(self, old: str, new: str, per: int, top: int = 12) -> list[str]:
        """The allocation sites (innermost frames of ours or kopf's, a few deep) that grew most from
        ``old`` to ``new``, in KiB per ``per`` runs."""
        lines = []
        for stat in self.taken[new].compare_to(self.taken[old], "traceback")[: top * 4]:
            frames = [
                f"{Path(frame.filename).name}:{frame.lineno}"
                for frame in stat.traceback
                if "jobplane" in frame.filename or "kopf" in frame.filename or "kubernetes" in frame.filename
            ][-4:] or [f"{Path(stat.traceback[-1].filename).name}:{stat.traceback[-1].lineno}"]
            lines.append(
                f"{stat.size_diff / 1024 / per * 1000:+9.1f} KiB/1000 runs "
                f"{stat.count_diff / per * 1000:+8.0f} blocks/1000  " + " < ".join(reversed(frames))
            )
        return lines[:top]


class Follow:
    """Every event of one kind in one namespace, from a watch resumed at its last resourceVersion (a relist
    when that is gone), handed to ``seen(obj, monotonic time received)``: no object is missed."""

    def __init__(self, list_call: Callable[..., Any], seen: Callable[[dict[str, Any], float], None]) -> None:
        self._list, self._seen = list_call, seen
        self._stopped = threading.Event()
        self._watch: Any = None
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        version: str | None = None
        while not self._stopped.is_set():
            try:
                if version is None:
                    listed = self._list(_preload_content=False)
                    body = json.loads(listed.data)
                    now = time.monotonic()
                    for obj in body["items"]:
                        self._seen(obj, now)
                    version = body["metadata"]["resourceVersion"]
                self._watch = watch.Watch()
                for event in self._watch.stream(
                    self._list, resource_version=version, timeout_seconds=240, allow_watch_bookmarks=True
                ):
                    obj = event["raw_object"]
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._seen(obj, time.monotonic())
            except ApiException as exc:
                if exc.status == 410:
                    version = None
                else:
                    time.sleep(0.5)
            except Exception:  # a dropped stream under load: resume from version
                time.sleep(0.1)

    def stop(self) -> None:
        self._stopped.set()
        if self._watch is not None:
            self._watch.stop()


class Timeline:
    """Per object: when this script created it, when its Job appeared, when it ended."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.job_seen: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.lock = threading.Lock()

    def latencies(self, names: list[str], of: dict[str, float]) -> list[float]:
        return [of[name] - self.created[name] for name in names if name in of and name in self.created]


def _spread(values: list[float], prefix: str) -> dict[str, float | None]:
    return {
        f"{prefix}_p50_s": round(statistics.median(values), 3) if values else None,
        f"{prefix}_p99_s": round(_percentile(values, 0.99), 3) if values else None,
        f"{prefix}_n": len(values),
    }


def _requests_per(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    diff = {key: (value - before.get(key, 0.0)) / count for key, value in after.items()}
    out = {key: round(value, 2) for key, value in sorted(diff.items()) if value >= 0.05}
    out["total"] = round(sum(diff.values()), 1)
    return out


def add_nodes(cluster: Cluster, count: int, pools: int) -> None:
    """``count`` kwok nodes, spread over ``pools`` pools, in chunks the apiserver takes at once."""
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-scale-{index:04d}",
                "labels": {
                    KWOK_NODE_LABEL: "true",
                    "type": "kwok",
                    "pool": f"pool-{index % pools}",
                    "kubernetes.io/hostname": f"kwok-scale-{index:04d}",
                    "kubernetes.io/os": "linux",
                },
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            },
            "status": {"capacity": capacity, "allocatable": capacity},
        }
        for index in range(count)
    ]
    for first in range(0, count, 200):
        items = nodes[first : first + 200]
        cluster.kubectl(
            "create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        )

    def ready() -> bool | None:
        items = cluster.get_json("nodes", "-l", "pool")["items"]
        up = sum(
            1
            for node in items
            if node["metadata"]["name"].startswith("kwok-scale-")
            and any(
                c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])
            )
            and not any(t["key"].startswith("node.kubernetes.io/") for t in node["spec"].get("taints") or [])
        )
        return up >= count or None

    wait_for(f"{count} kwok nodes Ready", ready, timeout=600, interval=2)


def _run(name: str, queue: str) -> dict[str, Any]:
    return {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobRun",
        "metadata": {"name": name},
        "spec": {"job": "noop.Noop", "queue": queue},
    }


def _create_all(
    create: Callable[[str, int], Any],
    names: list[str],
    timeline: Timeline,
    threads: int,
    per_second: float = 0,
) -> None:
    """Create every name (``create(name, index)``) from ``threads`` threads, at most ``per_second`` a second
    when set (evenly paced from the start), recording each one's creation time just before its call."""
    start = time.monotonic()

    def one(index: int) -> None:
        if per_second:
            delay = start + index / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        name = names[index]
        with timeline.lock:
            timeline.created[name] = time.monotonic()
        create(name, index)

    pool = ThreadPoolExecutor(threads)
    try:
        list(pool.map(one, range(len(names))))
    finally:  # on Ctrl-C, the creates not yet begun are dropped rather than waited for
        pool.shutdown(wait=True, cancel_futures=True)


def _progress(phase: str, figures: dict[str, Any]) -> None:
    """A phase's figures on stderr as soon as it ends, so a later phase's failure does not lose them."""
    print(f"{phase}: {json.dumps(figures)}", file=sys.stderr, flush=True)


def baseline(cluster: Cluster, namespace: str, count: int, pools: int, threads: int) -> dict[str, Any]:
    """The raw client's Jobs: creation -> Job seen (its create's answer, as a watch sees it) -> Complete."""
    from kubernetes import client

    batch = client.BatchV1Api()
    timeline = Timeline()

    def seen(obj: dict[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        timeline.job_seen.setdefault(name, at)
        if any(
            c["type"] == "Complete" and c["status"] == "True"
            for c in (obj.get("status") or {}).get("conditions") or []
        ):
            timeline.ended.setdefault(name, at)

    follow = Follow(lambda **kw: batch.list_namespaced_job(namespace, **kw), seen)
    names = [f"raw-{index:05d}" for index in range(count)]
    before = _apiserver_requests()
    started = time.monotonic()
    _create_all(
        lambda name, index: batch.create_namespaced_job(namespace, _job(name, f"pool-{index % pools}")),
        names,
        timeline,
        threads,
    )
    wait_for(
        "the raw Jobs to complete", lambda: len(timeline.ended) >= count or None, timeout=7200, interval=1
    )
    elapsed = max(timeline.ended.values()) - started
    after = _apiserver_requests()
    follow.stop()
    report = {
        "jobs": count,
        "jobs_per_s_to_complete": round(count / elapsed, 1),
        **_spread(timeline.latencies(names, timeline.job_seen), "create_to_job"),
        **_spread(timeline.latencies(names, timeline.ended), "create_to_complete"),
        "apiserver_requests_per_job": _requests_per(before, after, count),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "nodes_not_ready_at_end": _not_ready(cluster),
    }
    # One DELETE of the collection: `kubectl delete --all` sends one DELETE per Job (10k of them).
    batch.delete_collection_namespaced_job(namespace, propagation_policy="Background")
    return report


class RunTimeline:
    """JobRuns of a namespace and their Jobs, as two watches see them."""

    def __init__(self, namespace: str, prefix: str) -> None:
        from kubernetes import client

        self.prefix = prefix  # the phase's runs: those whose names start so
        self.timeline = Timeline()
        custom = client.CustomObjectsApi()
        batch = client.BatchV1Api()
        self.outcomes: dict[str, int] = {}
        self.runs = Follow(
            lambda **kw: custom.list_namespaced_custom_object(*GROUP, namespace, "jobruns", **kw), self._run
        )
        self.jobs = Follow(lambda **kw: batch.list_namespaced_job(namespace, **kw), self._job)
        self.namespace = namespace

    def _run(self, obj: dict[str, Any], at: float) -> None:
        status = obj.get("status") or {}
        name = obj["metadata"]["name"]
        if (
            name.startswith(self.prefix)
            and status.get("phase") in TERMINAL
            and name not in self.timeline.ended
        ):
            self.timeline.ended[obj["metadata"]["name"]] = at
            outcome = f"{status['phase']}/{status.get('reason') or '-'}"
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def _job(self, obj: dict[str, Any], at: float) -> None:
        owner = next(
            (
                ref["name"]
                for ref in obj["metadata"].get("ownerReferences") or []
                if ref.get("kind") == "JobRun"
            ),
            None,
        )
        if owner is not None and owner.startswith(self.prefix):
            self.timeline.job_seen.setdefault(owner, at)

    def stop(self) -> None:
        self.runs.stop()
        self.jobs.stop()


def _not_ready(cluster: Cluster) -> int:
    """Nodes not Ready now: kwok missing its heartbeats on a starved machine makes a phase's figures
    those of a degraded cluster (the node controller taints and evicts), so every phase reports it."""
    return sum(
        1
        for node in cluster.get_json("nodes")["items"]
        if not any(
            c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])
        )
    )


def _count_runs(cluster: Cluster, namespace: str) -> int:
    listed = cluster.kubectl("get", "jobruns", "-n", namespace, "-o", "name", check=True)
    return len([line for line in listed.stdout.splitlines() if line.strip()])


def _set_ttl(ws: Workspace, pools: int, ttl: int) -> None:
    for pool in range(pools):
        ws.apply(
            "JobQueue",
            f"pool-{pool}",
            {"nodeSelector": {"pool": f"pool-{pool}"}, "ttlSecondsAfterFinished": ttl},
        )


def _sampler(
    pids: list[int], samples: list[tuple[float, float]], stop: threading.Event, every: float
) -> None:
    start = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - start, _rss_mib(pids)))
        stop.wait(every)


def _warm_up(cluster: Cluster, ws: Workspace, pools: int) -> int:
    """One run per pool through the operator, to its end, before the burst's first figures: the operator
    imports and makes some of what it needs at its first run (the Kubernetes client's API classes, its
    threads), which is not the burst's cost. Returns how many runs it left (finished, present)."""
    from kubernetes import client

    custom = client.CustomObjectsApi()
    for pool in range(pools):
        custom.create_namespaced_custom_object(
            *GROUP, ws.namespace, "jobruns", _run(f"warm-{pool}", f"pool-{pool}")
        )

    def ended() -> bool | None:
        runs = cluster.get_json("jobruns", "-n", ws.namespace)["items"]
        done = [run for run in runs if (run.get("status") or {}).get("phase") in TERMINAL]
        return len(done) >= pools or None

    wait_for("the warm-up runs to end", ended, timeout=600, interval=1)
    time.sleep(5)
    return pools


def _trimmed_rss_mib(pids: list[int]) -> float:
    """RSS after the operator ran gc.collect() and malloc_trim(0) (bench/heap_hook, --trim): what it uses."""
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    time.sleep(5)
    return round(_rss_mib(pids), 1)


def burst(
    cluster: Cluster, ws: Workspace, args: argparse.Namespace, heap: HeapSnapshots | None = None
) -> dict[str, Any]:
    """--burst JobRuns at once; the operator's RSS with all of them finished and present, and after TTL."""
    from kubernetes import client

    custom = client.CustomObjectsApi()
    warmed = _warm_up(cluster, ws, args.pools)
    watch = RunTimeline(ws.namespace, "burst-")
    names = [f"burst-{index:05d}" for index in range(args.burst)]
    pids = _operator_pids(cluster.kubeconfig)
    rss_before = _rss_mib(pids)
    if heap is not None:
        heap.take("before", pids)
    before = _apiserver_requests()
    started = time.monotonic()
    _create_all(
        lambda name, index: custom.create_namespaced_custom_object(
            *GROUP, ws.namespace, "jobruns", _run(name, f"pool-{index % args.pools}")
        ),
        names,
        watch.timeline,
        args.threads,
    )
    created_in = time.monotonic() - started
    peak = [0.0]

    def all_ended() -> bool | None:
        peak[0] = max(peak[0], _rss_mib(pids))
        return len(watch.timeline.ended) >= args.burst or None

    wait_for("the burst's runs to end", all_ended, timeout=7200, interval=1)
    elapsed = max(watch.timeline.ended.values()) - started
    after = _apiserver_requests()
    time.sleep(10)  # the last statuses written; nothing is collected yet (the TTL is long)
    present = _count_runs(cluster, ws.namespace) - warmed
    rss_with_finished = _rss_mib(pids)
    trimmed: dict[str, float] = {}
    if args.trim:
        trimmed["with_finished_present"] = _trimmed_rss_mib(pids)
    if heap is not None:
        heap.take("finished_present", pids)
    _set_ttl(ws, args.pools, 1)
    wait_for(
        "the burst's runs to be collected",
        lambda: _count_runs(cluster, ws.namespace) == 0 or None,
        timeout=3600,
        interval=5,
    )
    collected_in = time.monotonic() - started - elapsed
    time.sleep(30)
    watch.stop()
    t = watch.timeline
    rss_after = _rss_mib(pids)
    if args.trim:
        trimmed["after_collection"] = _trimmed_rss_mib(pids)
    heap_report: dict[str, Any] = {}
    if heap is not None:
        heap.take("collected", pids)
        heap_report = {
            "operator_traced_mib": {label: heap.traced_mib(label) for label in heap.taken},
            "traced_growth_with_finished_present": heap.growth("before", "finished_present", present or 1),
            "traced_left_after_collection": heap.growth("before", "collected", present or 1),
        }
    return {
        "runs": args.burst,
        "created_in_s": round(created_in, 1),
        "runs_per_s_to_terminal": round(args.burst / elapsed, 1),
        "outcomes": watch.outcomes,
        **_spread(t.latencies(names, t.job_seen), "jobrun_to_job"),
        **_spread(t.latencies(names, t.ended), "jobrun_to_terminal"),
        "apiserver_requests_per_run": _requests_per(before, after, args.burst),
        "operator_rss_mib_before": round(rss_before, 1),
        "operator_rss_mib_peak": round(peak[0], 1),
        "finished_runs_present": present,
        "operator_rss_mib_with_finished_present": round(rss_with_finished, 1),
        # The figure, per run present: (RSS with them - RSS before the burst) per 1,000 runs.
        "operator_rss_mib_per_1000_present": round(
            (rss_with_finished - rss_before) / (present or 1) * 1000, 1
        ),
        "collected_in_s": round(collected_in, 1),
        "operator_rss_mib_after_collection": round(rss_after, 1),
        **({"operator_rss_mib_after_gc_and_malloc_trim": trimmed} if trimmed else {}),
        **heap_report,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "nodes_not_ready_at_end": _not_ready(cluster),
    }


def steady(cluster: Cluster, ws: Workspace, args: argparse.Namespace) -> dict[str, Any]:
    """--per-day runs a day for --steady-minutes, collected --ttl seconds after they end."""
    from kubernetes import client

    custom = client.CustomObjectsApi()
    _set_ttl(ws, args.pools, args.ttl)
    rate = args.per_day / 86400
    count = int(rate * 60 * args.steady_minutes)
    watch = RunTimeline(ws.namespace, "steady-")
    names = [f"steady-{index:06d}" for index in range(count)]
    pids = _operator_pids(cluster.kubeconfig)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sampler, args=(pids, samples, stop, 15.0), daemon=True)
    sampler.start()
    present: list[int] = []
    before = _apiserver_requests()
    loads: list[float] = []

    def create(name: str, index: int) -> None:
        custom.create_namespaced_custom_object(
            *GROUP, ws.namespace, "jobruns", _run(name, f"pool-{index % args.pools}")
        )
        if index % max(1, int(rate * 60)) == 0:  # once a minute
            loads.append(os.getloadavg()[0])

    _create_all(create, names, watch.timeline, 2, per_second=rate)
    wait_for(
        "the steady runs to end", lambda: len(watch.timeline.ended) >= count or None, timeout=600, interval=1
    )
    after = _apiserver_requests()
    present.append(_count_runs(cluster, ws.namespace))
    stop.set()
    sampler.join()
    watch.stop()
    t = watch.timeline
    minute = [rss for at, rss in samples if at <= 60]
    last = [rss for at, rss in samples if at >= samples[-1][0] - 60]
    xs = [at / 60 for at, _ in samples]
    ys = [rss for _, rss in samples]
    slope = statistics.linear_regression(xs, ys).slope if len(samples) >= 2 else None
    half = [rss for at, rss in samples if at >= samples[-1][0] / 2]
    return {
        "runs": count,
        "runs_per_s": round(rate, 3),
        "outcomes": watch.outcomes,
        "minutes": args.steady_minutes,
        "ttl_s": args.ttl,
        **_spread(t.latencies(names, t.job_seen), "jobrun_to_job"),
        **_spread(t.latencies(names, t.ended), "jobrun_to_terminal"),
        "apiserver_requests_per_run": _requests_per(before, after, count),
        "jobruns_present_at_end": present[0],
        "operator_rss_mib_first_minute": round(statistics.mean(minute), 1) if minute else None,
        "operator_rss_mib_last_minute": round(statistics.mean(last), 1) if last else None,
        "operator_rss_mib_max": round(max(ys), 1) if ys else None,
        "operator_rss_mib_slope_per_min": round(slope, 3) if slope is not None else None,
        # Flatness once warm: the slope over the second half alone (start-up allocations excluded).
        "operator_rss_mib_slope_per_min_second_half": round(
            statistics.linear_regression(
                [at / 60 for at, _ in samples if at >= samples[-1][0] / 2], half
            ).slope,
            3,
        )
        if len(half) >= 2
        else None,
        "load_average_1m_mean": round(statistics.mean(loads), 2) if loads else None,
        "nodes_not_ready_at_end": _not_ready(cluster),
    }


def _namespaces(cluster: Cluster, *names: str) -> Iterator[str]:
    for name in names:
        cluster.kubectl("create", "namespace", name)
    wait_for(
        "service accounts",
        lambda: cluster.kubectl("get", "sa", "default", "-n", names[-1], check=False).returncode == 0 or None,
        timeout=60,
    )
    yield from names


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # the cluster's context then stops it (a background job ignores SIGINT)


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pools", type=int, default=10)
    parser.add_argument(
        "--burst", type=int, default=10000, help="runs of the burst (and raw Jobs of the baseline)"
    )
    parser.add_argument("--steady-minutes", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=100000)
    parser.add_argument(
        "--ttl", type=int, default=60, help="the queues' ttlSecondsAfterFinished in the steady phase"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="threads creating the burst (and the baseline)"
    )
    parser.add_argument("--skip", choices=("baseline", "burst", "steady"), action="append", default=[])
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="FRAMES",
        help="trace the operator's allocations (FRAMES deep; slows it) and report where the burst's memory "
        "went: its snapshots before the burst, with the runs finished and present, after collection",
    )
    parser.add_argument(
        "--trim",
        action="store_true",
        help="also read the operator's RSS after a full gc and malloc_trim(0) (bench/heap_hook, SIGUSR1): "
        "what it still uses, beside what its allocators keep",
    )
    parser.add_argument(
        "--alloc-log",
        type=Path,
        metavar="FILE",
        help="append to FILE every 5 s what the operator's memory is made of (bench/heap_hook): RSS, "
        "Python's arenas and live blocks, glibc's in use and free but kept",
    )
    args = parser.parse_args()
    report: dict[str, Any] = {"nodes": args.nodes, "pools": args.pools}
    began = time.monotonic()
    with Cluster(node=False) as cluster, tempfile.TemporaryDirectory() as tmp:
        from kubernetes import config

        config.load_kube_config(str(cluster.kubeconfig))
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        add_nodes(cluster, args.nodes, args.pools)
        report["nodes_ready_after_s"] = round(time.monotonic() - began, 1)
        raw_ns, runs_ns = _namespaces(cluster, "bench-raw", "bench-scale")
        ws = Workspace.prepare(cluster, runs_ns, pool="pool-0")
        # An hour's hard limit: in a 10k burst kwok ends pods minutes late (the raw Jobs' p50 to Complete
        # was 229 s), and the default 300 s would end runs DeadlineExceeded, measuring the limit instead.
        ws.enable("noop.Noop", taskQueues=[f"pool-{pool}" for pool in range(args.pools)], timeLimit=3600)
        _set_ttl(ws, args.pools, 86400)  # the burst's runs stay until its figures are taken
        if "baseline" not in args.skip:
            report["baseline_raw_jobs"] = baseline(cluster, raw_ns, args.burst, args.pools, args.threads)
            _progress("baseline_raw_jobs", report["baseline_raw_jobs"])
            wait_for(
                "the raw Jobs to be gone",
                lambda: not cluster.get_json("pods", "-n", raw_ns)["items"] or None,
                timeout=3600,
                interval=5,
            )
        log = Path(tmp) / "operator.log"
        heap = HeapSnapshots(Path(tmp)) if args.tracemalloc else None
        if heap is not None:
            os.environ.update(HeapSnapshots.environment(heap.directory, args.tracemalloc))
        if args.trim:
            os.environ.update({"PYTHONPATH": _hook_path(), "JOBPLANE_BENCH_TRIM": "1"})
        if args.alloc_log:
            os.environ.update({"PYTHONPATH": _hook_path(), "JOBPLANE_BENCH_ALLOC_LOG": str(args.alloc_log)})
        with running_operator(cluster, KWOK_IMAGE, log, **OPERATOR_SETTINGS):
            wait_for("the operator to lead", lambda: "leading lease=" in log.read_text() or None, timeout=60)
            if "burst" not in args.skip:
                report["burst"] = burst(cluster, ws, args, heap)
                _progress("burst", report["burst"])
            if "steady" not in args.skip:
                report["steady"] = steady(cluster, ws, args)
    base, ours = report.get("baseline_raw_jobs"), report.get("burst")
    if base and ours:
        report["burst_vs_raw"] = {
            "rate_ratio": round(ours["runs_per_s_to_terminal"] / base["jobs_per_s_to_complete"], 2),
            "terminal_p99_ratio": round(
                ours["jobrun_to_terminal_p99_s"] / base["create_to_complete_p99_s"], 2
            ),
            "requests_ratio": round(
                ours["apiserver_requests_per_run"]["total"] / base["apiserver_requests_per_job"]["total"], 2
            ),
        }
    report["load_average"] = [round(load, 2) for load in os.getloadavg()]
    report["wall_s"] = round(time.monotonic() - began, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
