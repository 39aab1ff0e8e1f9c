"""`jobplane operator`: the kopf handlers, behind a Lease so that of several replicas only one acts."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

import kopf
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from jobplane.settings import Settings
from jobplane_operator.admission import build_admission_registry
from jobplane_operator.handlers import build_registry
from jobplane_operator.kube import Clients, load_config
from jobplane_operator.metrics import serve
from jobplane_operator.settings import OperatorSettings, get_operator_settings

__all__ = ["run_operator"]

log = logging.getLogger(__name__)


def _kopf_kwargs(settings: OperatorSettings, defaults: Settings) -> dict[str, Any]:
    return {
        "registry": build_registry(settings, defaults),
        # Peering would freeze replicas of equal priority; the Lease below decides who acts instead.
        "standalone": True,
        "clusterwide": not settings.namespaces,
        "namespaces": settings.namespaces,
    }


def _serve_metrics(settings: OperatorSettings) -> None:
    if not settings.metrics_port:
        return
    clients = Clients.load()
    # With a namespace list the operator may have no cluster-wide rights (the chart's RBAC): list each.
    namespaces = list(settings.namespaces)
    serve(settings.metrics_address, settings.metrics_port, lambda: clients.list_all_runs(namespaces))
    log.info("metrics address=%s port=%d", settings.metrics_address, settings.metrics_port)


class _Admission:
    """The admission webhook on every replica, leader or not (the apiserver calls any of them): a kopf
    operator of its own, with only the admission handlers and their indexes, in a thread.

    Stopped before the process exits, through kopf's stop flag: the server stops listening and answers
    the reviews it has accepted, so a replica going away mid-review fails no one's request.
    """

    def __init__(self, settings: OperatorSettings) -> None:
        self._stop = threading.Event()
        operator = kopf.operator(
            registry=build_admission_registry(settings),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            stop_flag=self._stop,
        )
        self._thread = threading.Thread(target=asyncio.run, args=(operator,), name="admission", daemon=True)
        self._thread.start()
        log.info("admission webhook address=%s port=%d", settings.webhook_address, settings.webhook_port)

    def wait(self) -> None:
        self._thread.join()

    def stop(self, timeout: float = 20.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def run_operator(defaults: Settings) -> int:
    settings = get_operator_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kopf logs every handler call that succeeded, a dozen lines per run from its run's, Job's and pod's
    # events; the operator logs what each run came to. kopf's failures and retries are warnings or errors.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    log.info("operator starting namespaces=%s image=%s", settings.namespaces or "all", settings.image)
    admission = _Admission(settings) if settings.webhook_port else None
    try:
        if admission is not None and not settings.controllers:
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
            admission.wait()
            return 1  # the webhook server stopped by itself
        _serve_metrics(settings)
        if not settings.leader_election:
            kopf.run(**_kopf_kwargs(settings, defaults))
            return 0
        return _run_as_leader(settings, defaults)
    finally:
        if admission is not None:
            admission.stop()


def _run_as_leader(settings: OperatorSettings, defaults: Settings) -> int:
    """Wait for the Lease, act while holding it, and exit when it is lost (a restart makes a standby)."""
    load_config()
    logging.getLogger("leaderelection").setLevel(logging.WARNING)  # it logs every renewal at INFO
    identity = f"{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()

    def lead() -> None:
        log.info("leading lease=%s/%s identity=%s", settings.lease_namespace, settings.lease_name, identity)
        asyncio.run(kopf.operator(**_kopf_kwargs(settings, defaults), stop_flag=stop))

    def stopped() -> None:
        log.warning("lost the lease; stopping so that a restart comes back as a standby")
        stop.set()

    def terminate(signum: int, frame: Any) -> None:
        stop.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    duration = settings.lease_duration
    config = electionconfig.Config(
        LeaseLock(settings.lease_name, settings.lease_namespace, identity),  # type: ignore[no-untyped-call]
        lease_duration=duration,
        renew_deadline=max(1, duration * 2 // 3),
        retry_period=max(1, duration // 8),
        onstarted_leading=lead,
        onstopped_leading=stopped,
    )
    leaderelection.LeaderElection(config).run()  # type: ignore[no-untyped-call]
    return 1
