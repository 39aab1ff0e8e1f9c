"""Prometheus metrics of the operator: runs by phase, reconcile latency, queue depth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobplane_crds.runview import RunView

__all__ = ["METRICS", "Metrics", "serve"]


class _RunsByPhase(Collector):
    """Counts JobRuns by phase from the API at scrape time, so the figure is right after a restart too."""

    def __init__(self) -> None:
        self.list_runs: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "jobplane_runs", "JobRuns by namespace and phase", labels=["namespace", "phase"]
        )
        if self.list_runs is not None:
            counts = Counter(
                (run.namespace, run.phase.value if run.phase else "New")
                for run in map(RunView, self.list_runs())
            )
            for (namespace, phase), count in sorted(counts.items()):
                family.add_metric([namespace, phase], count)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = _RunsByPhase()
        self.registry.register(self.runs)
        self.reconcile_seconds = Histogram(
            "jobplane_reconcile_seconds",
            "Time of one reconcile pass over a JobRun",
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.queue_waiting = Gauge(
            "jobplane_queue_waiting_runs",
            "Runs waiting in phase Queued for a slot of their queue",
            ["namespace", "queue"],
            registry=self.registry,
        )


METRICS = Metrics()


def serve(address: str, port: int, list_runs: Any) -> None:
    """Start /metrics in a background thread (prometheus_client's own server)."""
    METRICS.runs.list_runs = list_runs
    start_http_server(port, addr=address, registry=METRICS.registry)
