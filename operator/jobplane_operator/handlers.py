"""The kopf handlers: thin; each one finds the JobRun concerned and calls runs.reconcile_run."""

from __future__ import annotations

import copy
import logging
from typing import Any

import kopf

from jobplane.settings import Settings, get_settings
from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import VERSION, JobRunPhase
from jobplane_operator.kube import Clients
from jobplane_operator.reconcile.jobrun import LABEL_MANAGED_BY, LABEL_RUN
from jobplane_operator.runs import reconcile_run, refresh_definition
from jobplane_operator.settings import OperatorSettings

__all__ = ["build_registry"]

log = logging.getLogger(__name__)

MANAGED = {LABEL_MANAGED_BY: "jobplane"}


def _plain(body: Any) -> dict[str, Any]:
    # kopf's Body is a live view; the reconcile functions take a plain copy.
    return copy.deepcopy(dict(body))


def _unfinished(body: Any, **_: Any) -> bool:
    phase = (body.get("status") or {}).get("phase")
    return phase is None or not JobRunPhase(phase).is_terminal


def _running(body: Any, **_: Any) -> bool:
    return (body.get("status") or {}).get("phase") == JobRunPhase.RUNNING.value


def _queued(body: Any, **_: Any) -> bool:
    return (body.get("status") or {}).get("phase") == JobRunPhase.QUEUED.value


def _pending(body: Any, **_: Any) -> bool:
    # Not yet Running, Queued or ended: includes a run the create handler could not finish.
    return _unfinished(body) and not _running(body) and not _queued(body)


def build_registry(settings: OperatorSettings, defaults: Settings | None = None) -> kopf.OperatorRegistry:
    """All handlers, registered with the intervals of these settings (no import-time configuration)."""
    registry = kopf.OperatorRegistry()
    defaults = defaults or get_settings()
    clients: list[Clients] = []

    def api() -> Clients:
        if not clients:
            clients.append(Clients.load())
        return clients[0]

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf's own bookkeeping goes to annotations, so the status schema stays ours.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.execution.max_workers = 20  # handlers are sync and mostly wait on the API

    # In-memory copies of the definitions and queues, kept current by kopf's watches: a run's
    # admission then costs no API call for them.
    # Explicit ids: kopf hands each index to handlers as a keyword argument named by its id.
    @kopf.index(GROUP, VERSION, "jobdefinitions", id="definitions_by_namespace", registry=registry)
    def definitions_by_namespace(namespace: str | None, body: Any, **_: Any) -> dict[Any, Any]:
        return {namespace: _plain(body)}

    @kopf.index(GROUP, VERSION, "jobqueues", id="queues_by_name", registry=registry)
    def queues_by_name(namespace: str | None, name: str, body: Any, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): _plain(body)}

    class IndexCatalog:
        def __init__(self, definitions: Any, queues: Any) -> None:
            self._definitions = definitions
            self._queues = queues

        def definitions(self, namespace: str) -> list[dict[str, Any]]:
            return list(self._definitions.get(namespace, []))

        def queue(self, namespace: str, name: str) -> dict[str, Any] | None:
            return next(iter(self._queues.get((namespace, name), [])), None)

    def catalog(kwargs: dict[str, Any]) -> IndexCatalog:
        return IndexCatalog(kwargs["definitions_by_namespace"], kwargs["queues_by_name"])

    def reconcile(body: Any, kwargs: dict[str, Any]) -> None:
        reconcile_run(api(), _plain(body), settings, defaults, catalog(kwargs))

    @kopf.on.resume(GROUP, VERSION, "jobruns", registry=registry, when=_unfinished)
    @kopf.on.create(GROUP, VERSION, "jobruns", registry=registry)
    @kopf.on.field(
        GROUP, VERSION, "jobruns", field="spec.cancel", new=True, registry=registry, when=_unfinished
    )
    def run_changed(body: Any, **kwargs: Any) -> None:
        reconcile(body, kwargs)

    # Job events carry a run from its Job's creation to its end; polling is for what no event
    # announces: a free slot for a Queued run (often), a pod that stays unschedulable or cannot pull
    # its image (a few times per pending timeout), and a slow safety net for Running runs.
    def resync(body: Any, **kwargs: Any) -> None:
        reconcile(body, kwargs)

    polls = (
        ("queued_resync", settings.resync_interval, _queued),
        ("pending_resync", max(settings.resync_interval, settings.pending_timeout / 3), _pending),
        ("running_resync", settings.running_resync_interval, _running),
    )
    for handler_id, interval, when in polls:
        kopf.timer(
            GROUP,
            VERSION,
            "jobruns",
            id=handler_id,
            registry=registry,
            interval=interval,
            initial_delay=interval,
            when=when,
        )(resync)

    @kopf.on.resume(GROUP, VERSION, "jobdefinitions", registry=registry)
    @kopf.on.create(GROUP, VERSION, "jobdefinitions", registry=registry)
    @kopf.on.update(GROUP, VERSION, "jobdefinitions", field="spec", registry=registry)
    def definition_changed(body: Any, **_: Any) -> None:
        refresh_definition(api(), dict(body))

    def owner_changed(
        meta: Any, namespace: str | None, job: dict[str, Any] | None, kwargs: dict[str, Any]
    ) -> None:
        name = (meta.get("labels") or {}).get(LABEL_RUN)
        if not name or not namespace:
            return
        run = api().get_run(namespace, name)
        if run is not None:
            # The event carries the Job as it is now: no need to read it again.
            reconcile_run(api(), run, settings, defaults, catalog(kwargs), job=job)

    # Job events are enough to follow the pods: the Job's active/ready/failed counts and conditions
    # change with them. Pod events would multiply the work, and the resync timer covers the rest
    # (a pod that stays unschedulable changes nothing on its Job).
    @kopf.on.event("batch", "v1", "jobs", labels=MANAGED, registry=registry)
    def job_event(body: Any, meta: Any, namespace: str | None, type: str | None, **kwargs: Any) -> None:
        # A deleted Job is looked up again (and found gone): the run then says why it ended.
        owner_changed(meta, namespace, None if type == "DELETED" else _plain(body), kwargs)

    return registry
