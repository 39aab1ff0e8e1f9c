"""The kopf handlers: thin; each one finds the JobRun (or JobRepository) concerned and calls
runs.reconcile_run (or repositories.reconcile_repository)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from jobplane.settings import Settings, get_settings
from jobplane_crds import GROUP
from jobplane_crds.runview import RunView
from jobplane_crds.v1alpha1 import KINDS, VERSION, JobDefinition, JobQueue, JobRepository, JobSchedule
from jobplane_operator.kube import Clients, custom_objects_api, served_kinds
from jobplane_operator.parsing import parsed
from jobplane_operator.reconcile.collection import Collector, finished_at, ttl_after_finished
from jobplane_operator.reconcile.jobqueue import queue_loads, queue_status_changes
from jobplane_operator.reconcile.jobrepository import (
    LABEL_REPOSITORY,
    repository_event_matters,
    sync_due,
    sync_job_finished,
)
from jobplane_operator.reconcile.jobrun import (
    LABEL_MANAGED_BY,
    LABEL_RUN,
    LABEL_RUN_UID,
    first_poll_age,
    handled_job,
    indexed_run,
    job_event_matters,
    pod_disruption,
    poll_interval,
    run_event_matters,
)
from jobplane_operator.reconcile.jobschedule import LABEL_SCHEDULE, schedule_event_matters, schedule_run
from jobplane_operator.reconcile.own_writes import OwnWrites
from jobplane_operator.repositories import (
    adopt_definitions,
    forget_missing_repositories,
    forget_repository,
    reconcile_repository,
    repository_lock,
)
from jobplane_operator.runs import DISRUPTED_PODS, reconcile_run, refresh_definition
from jobplane_operator.schedules import finish_schedule, fire_schedule
from jobplane_operator.settings import OperatorSettings

__all__ = [
    "WATCHED_KINDS",
    "FireBurst",
    "build_registry",
    "configure_kopf",
    "scan_only_at_start",
    "wait_for_served_kinds",
]

log = logging.getLogger(__name__)

MANAGED = {LABEL_MANAGED_BY: "jobplane"}
# Handlers are sync and mostly wait on the API: threads for kopf's executor, and as many connections.
HANDLER_THREADS = 20
WORKER_IDLE_SECONDS = 0.5  # kopf's per-object worker: see configure_kopf
# Schedules' fires have threads of their own (and connections), so that a minute's fires never queue
# behind the starts of the runs the previous fires made: a thousand schedules firing in the same minute
# each make their run (one API call), then write status in kopf's executor.
FIRE_THREADS = 10
# At most this many finished runs are deleted per pass of the poll loop (see Collector).
COLLECT_PER_PASS = 200
# How long the operator's other work waits at most for a burst of fires (FireBurst).
BURST_HOLD_SECONDS = 10.0


class FireBurst:
    """While schedules' fires are under way, the operator's other API calls wait for them, up to a bound.

    A thousand schedules firing in the same minute each make one run; everything else the operator would
    do meanwhile (start those runs, write the schedules' status, delete the runs beyond the history
    limits, follow Jobs) also asks the apiserver, which serves the fires more slowly for it: measured,
    seven times the time of the same creates on a quiet cluster. Those calls lose nothing by waiting a
    few seconds; a fire's lag is what a schedule promises. Waiting is bounded (``hold``), so fires that
    never pause (schedules spread over every second) cannot starve the rest.
    """

    def __init__(self, hold: float = BURST_HOLD_SECONDS) -> None:
        self._hold = hold
        self._fires = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def firing(self) -> bool:
        return self._fires > 0

    @contextlib.contextmanager
    def fire(self) -> Iterator[None]:
        """Around one fire (its decision and its run's creation)."""
        self._fires += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._fires -= 1
            if not self._fires:
                self._quiet.set()

    async def wait(self) -> None:
        """Until no fire is under way, or ``hold`` seconds at most."""
        if self._fires:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self._hold)


class _DiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base in annotations, built without copying what kopf then throws away.

    kopf builds the "essence" of every object on every event of every watched kind, for its change
    handlers: a deep copy of the whole object, of which it keeps the spec, the labels and the annotations.
    A run's status, and the managed fields of every object, are most of its size: copying them cost an
    eighth of the operator's CPU for each run. The essence is the same.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        if extra_fields:
            return super().build(body=body, extra_fields=extra_fields)  # they may name status fields
        meta = body.get("metadata") or {}
        kept: dict[str, Any] = {
            key: value for key, value in body.items() if key not in ("metadata", "status")
        }
        kept["metadata"] = {key: meta[key] for key in ("labels", "annotations") if key in meta}
        return super().build(body=kopf.Body(cast(kopf.RawBody, kept)))


def scan_only_at_start(settings: kopf.OperatorSettings, namespaces: list[str]) -> None:
    """Given its namespaces by name, kopf is told they exist instead of finding them.

    Otherwise it lists the cluster's namespaces first, which a namespaced installation may not (the chart's
    operator may not), retries the refusal for about a minute (kopf's eight backoffs, 54 s) and only then
    falls back to the names it was given: an operator pod started (installed, upgraded, taking over) watched
    nothing for its first minute. The price, which kopf documents with this setting: the custom resource
    definitions are discovered once, at start; ``wait_for_served_kinds`` holds the start until they are.
    """
    settings.scanning.disabled = bool(namespaces)


# Every jobplane.io kind: the operator's handlers and the admission webhook's watch each of them.
WATCHED_KINDS = frozenset(kind.plural for kind in KINDS)


def wait_for_served_kinds(registry: kopf.OperatorRegistry, namespaces: list[str]) -> None:
    """With named namespaces kopf looks for the CRDs once (``scan_only_at_start``): a kind not served yet
    then would never be watched, and a release applies its CRDs and starts the operator together. So the
    start waits (a start-up handler, before kopf's discovery) until every watched kind is served, saying which
    it waits for. Across the whole cluster kopf watches the CRDs and takes a kind up when it appears."""
    if not namespaces:
        return

    @kopf.on.startup(registry=registry)
    def crds_served(**_: Any) -> None:
        missing = sorted(WATCHED_KINDS - served_kinds(custom_objects_api()))
        if missing:
            raise kopf.TemporaryError(
                f"waiting for the jobplane.io CRDs of {', '.join(missing)} to be served", delay=2
            )


def configure_kopf(settings: kopf.OperatorSettings, namespaces: list[str]) -> None:
    """kopf's settings for the operator (its start-up handler applies them); ``namespaces`` as given to
    kopf (empty: the whole cluster)."""
    scan_only_at_start(settings, namespaces)
    # kopf's own bookkeeping goes to annotations, so the status schema stays ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = _DiffBase(prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # Only our Jobs travel: the handlers' label filter is kopf's, in this process, after it has parsed and
    # processed every event of every Job in the cluster (CronJobs', CI systems', ...).
    settings.watching.label_selectors["batch", "v1", "jobs"] = ",".join(
        f"{key}={value}" for key, value in MANAGED.items()
    )
    # The same for pods, as pod_event's filter says (run pods only): kopf also keeps a memory of every
    # object it has seen until it is deleted, which for pods was every pod of the cluster.
    settings.watching.label_selectors["", "v1", "pods"] = ",".join(
        [*(f"{key}={value}" for key, value in MANAGED.items()), LABEL_RUN_UID]
    )
    settings.execution.max_workers = HANDLER_THREADS
    # kopf keeps an object's worker for idle_timeout after its last event (5 s by default), and the waiting
    # worker still holds that event: the whole object, managedFields and all (a Job or pod is 20-40 KB of
    # Python objects). In a burst thousands of Jobs and pods have had an event in the last 5 s. A new event
    # after a shorter wait costs a new worker (an asyncio task), which is cheap beside holding the object.
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS


def _plain(body: Any) -> dict[str, Any]:
    # kopf's Body is a live view; the reconcile functions take a plain copy.
    return copy.deepcopy(dict(body))


class _Shared:
    """What the handlers of every kind share: built with the registry, filled in at start-up."""

    def __init__(self, settings: OperatorSettings, defaults: Settings) -> None:
        self.settings = settings
        self.defaults = defaults
        self.clients: list[Clients] = []
        self.executions: list[Any] = []  # kopf's execution settings: its thread pool for blocking work
        self.own_writes = OwnWrites()  # the runs' status writes the runs index does not show yet
        self.bursts: list[FireBurst] = []  # made in kopf's event loop, at start-up
        # The loops each kind runs beside its handlers, started at start-up with kopf's (live) indexes and
        # its execution settings; and what to stop at clean-up.
        self.pollers: list[Callable[[dict[str, Any], Any], Coroutine[Any, Any, None]]] = []
        self.cleanups: list[Callable[[], None]] = []

    def api(self) -> Clients:
        return self.clients[0]  # made at start-up, before any resource handler runs

    def burst(self) -> FireBurst:
        if not self.bursts:
            self.bursts.append(FireBurst())
        return self.bursts[0]

    async def in_thread(self, function: Any, *args: Any) -> None:
        # Async handlers decide in the event loop whether an event matters (most are the echoes of our
        # own writes); only the work that calls the API goes to kopf's thread pool, after any fires.
        await self.burst().wait()
        await asyncio.get_running_loop().run_in_executor(self.executions[0].executor, function, *args)

    def catalog(self, kwargs: dict[str, Any]) -> IndexCatalog:
        return IndexCatalog(
            kwargs["definitions_by_namespace"], kwargs["queues_by_name"], kwargs["repositories_by_name"]
        )


class IndexCatalog:
    """The Catalog (runs.Catalog) of the operator's kopf indexes."""

    def __init__(self, definitions: Any, queues: Any, repositories: Any) -> None:
        self._definitions = definitions
        self._queues = queues
        self._repositories = repositories

    def definitions(self, namespace: str) -> list[JobDefinition]:
        return list(self._definitions.get(namespace, []))

    def queue(self, namespace: str, name: str) -> JobQueue | None:
        return next(iter(self._queues.get((namespace, name), [])), None)

    def repository(self, namespace: str, name: str) -> JobRepository | None:
        found = next(iter(self._repositories.get((namespace, name), [])), None)
        return parsed(JobRepository, found) if found is not None else None

    def repositories(self, namespace: str) -> list[JobRepository]:
        stored = [
            obj for key, store in list(self._repositories.items()) if key[0] == namespace for obj in store
        ]
        return [repo for repo in (parsed(JobRepository, obj) for obj in stored) if repo is not None]


def build_registry(settings: OperatorSettings, defaults: Settings | None = None) -> kopf.OperatorRegistry:
    """All handlers, registered with the intervals of these settings (no import-time configuration)."""
    registry = kopf.OperatorRegistry()
    wait_for_served_kinds(registry, settings.namespaces)
    shared = _Shared(settings, defaults or get_settings())
    _register_start_and_stop(registry, shared)
    _register_catalog(registry, shared)
    owner_changed = _register_runs(registry, shared)
    _register_definitions(registry, shared)
    _register_schedules(registry, shared)
    sync_job_changed = _register_repositories(registry, shared)
    _register_jobs_and_pods(registry, shared, owner_changed, sync_job_changed)
    return registry


def _register_start_and_stop(registry: kopf.OperatorRegistry, shared: _Shared) -> None:
    """Log in, configure kopf and the API clients, start each kind's loops; stop them at clean-up."""
    polling: list[asyncio.Task[None]] = []

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, shared.settings.namespaces)
        shared.executions.append(settings.execution)
        # Before the first event: made lazily, a burst of first handlers would each make (and import) it.
        shared.clients.append(Clients.load(connections=HANDLER_THREADS + FIRE_THREADS))
        shared.clients[0].on_run_written = shared.own_writes.wrote

    @kopf.on.startup(registry=registry)
    async def start_polling(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        # kopf hands the (live) indexes to start-up handlers too; they fill once the watches start.
        for poller in shared.pollers:
            polling.append(asyncio.create_task(poller(kwargs, settings.execution)))

    @kopf.on.cleanup(registry=registry)
    async def stop_polling(**_: Any) -> None:
        for task in polling:
            task.cancel()
        for cleanup in shared.cleanups:
            cleanup()


def _register_catalog(registry: kopf.OperatorRegistry, shared: _Shared) -> None:
    """The indexes a run's start reads instead of the API: definitions, queues, repositories."""

    # In-memory copies of the definitions and queues, kept current by kopf's watches: a run's
    # admission then costs no API call for them. Parsed into their models once per change, here.
    # Explicit ids: kopf hands each index to handlers as a keyword argument named by its id.
    @kopf.index(GROUP, VERSION, "jobdefinitions", id="definitions_by_namespace", registry=registry)
    def definitions_by_namespace(namespace: str | None, body: Any, **_: Any) -> dict[Any, Any]:
        definition = parsed(JobDefinition, body)
        return {namespace: definition} if definition is not None else {}

    @kopf.index(GROUP, VERSION, "jobqueues", id="queues_by_name", registry=registry)
    def queues_by_name(namespace: str | None, name: str, body: Any, **_: Any) -> dict[Any, Any]:
        queue = parsed(JobQueue, body)
        return {(namespace, name): queue} if queue is not None else {}

    # The repositories, so that a run of a repository job finds its URL and slug without an API call. As
    # stored: a pass over one writes its status from the stored one (see repositories._StatusWriter).
    @kopf.index(GROUP, VERSION, "jobrepositories", id="repositories_by_name", registry=registry)
    def repositories_by_name(namespace: str | None, name: str, body: Any, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): _plain(body)}


def _register_runs(registry: kopf.OperatorRegistry, shared: _Shared) -> Callable[..., None]:
    """JobRuns: their index, their events, and the loop that polls them and collects the finished ones.
    Returns what a run's Job event calls (owner_changed)."""
    api, in_thread, catalog, burst = shared.api, shared.in_thread, shared.catalog, shared.burst
    settings, defaults, own_writes = shared.settings, shared.defaults, shared.own_writes

    # The runs as last seen, so that a Job event costs no read of its run. It lags our own status writes
    # by a moment: own_writes stands in for it meanwhile; another writer's change makes the resourceVersion
    # refuse our write, and the run is read again. Only what is read of them (indexed_run): finished runs
    # stay for their TTL, a day by default.
    @kopf.index(GROUP, VERSION, "jobruns", id="runs_by_name", registry=registry)
    async def runs_by_name(namespace: str | None, name: str, body: Any, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): indexed_run(body)}

    def reconcile(obj: dict[str, Any], kwargs: dict[str, Any], polled: bool = False) -> None:
        reconcile_run(api(), obj, settings, defaults, catalog(kwargs), polled=polled)

    # An event handler rather than on.create/on.resume/on.field: those make kopf store its progress
    # and a diff base in the run's annotations, two more writes per run. Nothing is lost: a run whose
    # handling failed is still unstarted, which the pending poll retries, and at start-up the initial
    # listing (event type None) hands over every unfinished run, as on.resume did.
    @kopf.on.event(GROUP, VERSION, "jobruns", registry=registry)
    async def run_event(body: Any, type: str | None, **kwargs: Any) -> None:
        if type != "DELETED" and run_event_matters(body, listing=type is None):
            await in_thread(reconcile, _plain(body), kwargs)

    # Job events carry a run from its Job's creation to its end; polling is for what no event
    # announces (see poll_interval). One loop over the runs index rather than kopf timers: a timer
    # makes kopf put a finalizer on every run, two more writes per run and a run that cannot be
    # deleted while the operator is down. The same loop deletes the finished runs whose TTL is over
    # (see reconcile.collection): the clock, not an event, makes them due.
    intervals = {
        "queued": settings.resync_interval,
        "pending": max(settings.resync_interval, settings.pending_timeout / 3),
        "running": settings.running_resync_interval,
    }

    def queue_ttl(queues: Any, namespace: str, name: str | None) -> int | None:
        queue = next(iter(queues.get((namespace, name), [])), None) if name else None
        return ttl_after_finished(queue, settings.run_ttl_seconds)

    def collect(obj: dict[str, Any], ttl: int | None) -> None:
        run = RunView(obj)
        if api().delete_run(run.namespace, run.name, str(run.uid)):
            log.info(
                "collected finished run run=%s/%s uid=%s finished=%s ttl=%s",
                run.namespace, run.name, run.uid, finished_at(obj), ttl,
            )  # fmt: skip

    async def poll_forever(indices: dict[str, Any], execution: Any) -> None:
        loop = asyncio.get_running_loop()
        began = datetime.now(UTC)
        last_polled: dict[str, float] = {}  # by run uid (loop time); see first_poll_age for a new one
        queues_written: dict[tuple[str, str], dict[str, Any]] = {}  # see queue_status_changes
        collector = Collector(per_pass=COLLECT_PER_PASS, retry_after=settings.running_resync_interval)
        while True:
            await asyncio.sleep(min(intervals.values()))
            now, due, seen = loop.time(), [], set()
            finished: list[dict[str, Any]] = []
            wall = datetime.now(UTC)
            versions: dict[tuple[str, str], str | None] = {}
            for store in list(indices["runs_by_name"].values()):
                for indexed in list(store):
                    stored = RunView(indexed)
                    versions[(stored.namespace, stored.name)] = stored.resource_version
                    obj = own_writes.latest(indexed) or indexed
                    run = RunView(obj)
                    uid = str(run.uid)
                    seen.add(uid)
                    interval = poll_interval(run, **intervals)
                    if uid not in last_polled:
                        last_polled[uid] = now - first_poll_age(run, now=wall, began=began)
                    if interval is not None and now - last_polled[uid] >= interval:
                        last_polled[uid] = now
                        due.append(obj)
                    elif interval is None:
                        finished.append(obj)
            for uid in set(last_polled) - seen:
                del last_polled[uid]
            collector.forget(seen)
            own_writes.forget(versions)
            ttl_of = functools.partial(queue_ttl, indices["queues_by_name"])
            ended = collector.pick(finished, ttl_of, now=wall, moment=now)
            queue_writes = queue_status_changes_of(indices, queues_written)
            if due or queue_writes or ended:
                await burst().wait()
            if queue_writes:
                written = await loop.run_in_executor(execution.executor, write_queue_statuses, queue_writes)
                queues_written.update(written)
            outcomes = await asyncio.gather(
                *(loop.run_in_executor(execution.executor, reconcile, obj, indices, True) for obj in due),
                return_exceptions=True,
            )
            for obj, outcome in zip(due, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    run = RunView(obj)
                    log.warning("poll failed run=%s/%s error=%r", run.namespace, run.name, outcome)
            collected = await asyncio.gather(
                *(loop.run_in_executor(execution.executor, collect, obj, ttl) for obj, ttl in ended),
                return_exceptions=True,
            )
            for (obj, _), outcome in zip(ended, collected, strict=True):
                if isinstance(outcome, Exception):
                    run = RunView(obj)
                    log.warning("collect failed run=%s/%s error=%r", run.namespace, run.name, outcome)

    def queue_status_changes_of(
        indices: dict[str, Any], written: dict[tuple[str, str], dict[str, Any]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The queues' status writes due, counted from the runs index: at most one per queue per pass,
        and none while its counts stay the same, however many runs come and go. ``written`` (the last
        writes) forgets the queues that are gone."""
        runs = [obj for store in list(indices["runs_by_name"].values()) for obj in list(store)]
        queues = [obj for store in list(indices["queues_by_name"].values()) for obj in list(store)]
        present = {(queue.metadata.namespace or "", queue.metadata.name or "") for queue in queues}
        for key in set(written) - present:
            del written[key]
        return queue_status_changes(queue_loads(runs, queues), queues, written)

    def write_queue_statuses(
        writes: dict[tuple[str, str], dict[str, Any]],
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Write the queues' new loads; returns those written (a failed one is tried again next pass)."""
        written = {}
        for (namespace, name), load in writes.items():
            try:
                if api().patch_queue_status(namespace, name, load):
                    written[(namespace, name)] = load
            except Exception as exc:
                log.warning("queue status write failed queue=%s/%s error=%r", namespace, name, exc)
        return written

    def owner_changed(
        namespace: str, name: str, job_name: str, job: dict[str, Any] | None, kwargs: dict[str, Any]
    ) -> None:
        known = own_writes.latest(next(iter(kwargs["runs_by_name"].get((namespace, name), [])), None))
        run = known or api().get_run(namespace, name)
        if run is None or not job_event_matters(job, RunView(run)):
            return
        # The event carries the Job as it is now (or its deletion): no need to read it again. It also
        # tells that the run started, though its status may not say so yet.
        deleted = None if job is not None else job_name

        def decide(run: dict[str, Any]) -> bool:
            return reconcile_run(
                api(), run, settings, defaults, catalog(kwargs), job=job, deleted_job=deleted
            )

        # Our own retry, not kopf's: kopf retries no event handler (see run_event for why runs have no
        # change handlers); a status write refused for its resourceVersion is decided again on a fresh read.
        if not decide(run) and known:
            run = api().get_run(namespace, name)  # the index lagged behind a write: decide again
            if run is not None:
                decide(run)

    def start_polling(kwargs: dict[str, Any], execution: Any) -> Coroutine[Any, Any, None]:
        names = ("definitions_by_namespace", "queues_by_name", "runs_by_name", "repositories_by_name")
        return poll_forever({key: kwargs[key] for key in names}, execution)

    shared.pollers.append(start_polling)
    return owner_changed


def _register_definitions(registry: kopf.OperatorRegistry, shared: _Shared) -> None:
    """JobDefinitions: an admin's edit of the overrides refreshes status.effective."""
    api = shared.api

    @kopf.on.resume(GROUP, VERSION, "jobdefinitions", registry=registry)
    @kopf.on.create(GROUP, VERSION, "jobdefinitions", registry=registry)
    @kopf.on.update(GROUP, VERSION, "jobdefinitions", field="spec", registry=registry)
    def definition_changed(body: Any, namespace: str | None, **_: Any) -> None:
        obj = dict(body)
        definition = parsed(JobDefinition, obj)
        if definition is None:
            return  # It does not fit the model (parsed warned): decided again once it, or the CRD, changes.
        code = definition.status.code if definition.status else None
        if namespace and definition.spec.class_path and not (code and code.model_fields_set):
            # Applied before discovery: a sync may have made a definition of its class meanwhile.
            adopt_definitions(api(), namespace)
        if not refresh_definition(api(), obj):
            # Changed since this body was read: kopf calls the handler again, with the object as it is.
            raise kopf.TemporaryError("the definition changed while its status was refreshed", delay=1)


def _register_schedules(registry: kopf.OperatorRegistry, shared: _Shared) -> None:
    """JobSchedules: their index, their events and their runs' ends, and the loop that fires them."""
    api, burst, executions, settings = shared.api, shared.burst, shared.executions, shared.settings

    # The schedules as last seen: one loop wakes each second and fires those due. Not kopf timers or
    # daemons: those put a finalizer on every schedule, which then cannot be deleted while the operator
    # is down (a GitOps tool's prune hangs). A fire's run has a deterministic name, so two passes (an
    # event and the loop, or a restart) never make two runs of one fire.
    @kopf.index(GROUP, VERSION, "jobschedules", id="schedules_by_name", registry=registry)
    async def schedules_by_name(namespace: str | None, name: str, body: Any, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): _plain(body)}

    # Each schedule's runs (what a pass reads of them), so that a pass lists nothing: at a thousand
    # schedules, a LIST by label per fire read every run of the namespace each time.
    @kopf.index(
        GROUP, VERSION, "jobruns", labels={LABEL_SCHEDULE: kopf.PRESENT}, id="runs_by_schedule",
        registry=registry,
    )  # fmt: skip
    async def runs_by_schedule(namespace: str | None, body: Any, **_: Any) -> dict[Any, Any]:
        schedule = RunView(body).labels.get(LABEL_SCHEDULE)
        return {(namespace, schedule): copy.deepcopy(schedule_run(dict(body)))}

    schedules_in_flight: set[tuple[str, str]] = set()
    schedule_indexes: dict[str, Any] = {}  # definitions and runs by schedule, once start-up hands them over
    fire_executor: list[ThreadPoolExecutor] = []
    # kopf calls resource handlers only once every index is filled: until a schedule's first event, the
    # runs index may hold some of a schedule's runs and not others (an active one unseen: Forbid fires).
    indexed = asyncio.Event()

    async def reconcile_schedule_now(obj: dict[str, Any]) -> bool:
        """One pass over a schedule (unless one is under way); whether it wrote the schedule's status."""
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in schedules_in_flight:
            return False  # the pass under way (or the loop's next) sees this change
        schedules_in_flight.add(key)
        loop = asyncio.get_running_loop()
        try:
            definitions = runs = None
            if schedule_indexes:
                definitions = list(schedule_indexes["definitions_by_namespace"].get(key[0], []))
                runs = list(schedule_indexes["runs_by_schedule"].get(key, []))
            if not fire_executor:
                fire_executor.append(ThreadPoolExecutor(FIRE_THREADS, thread_name_prefix="schedule-fire"))
            # The fire first, in its own threads; status and history after, in kopf's, once the fires
            # of the moment are made.
            with burst().fire():
                done = await loop.run_in_executor(
                    fire_executor[0], fire_schedule, api(), obj, datetime.now(UTC), definitions, runs
                )
            await burst().wait()
            return bool(await loop.run_in_executor(executions[0].executor, finish_schedule, api(), done))
        except kopf.TemporaryError as exc:
            log.info("schedule pass deferred schedule=%s/%s reason=%s", *key, exc)
        except Exception as exc:
            log.warning("schedule pass failed schedule=%s/%s error=%r", *key, exc)
        finally:
            schedules_in_flight.discard(key)
        return False

    @kopf.on.event(GROUP, VERSION, "jobschedules", registry=registry)
    async def schedule_event(body: Any, type: str | None, **_: Any) -> None:
        indexed.set()
        if type != "DELETED" and schedule_event_matters(dict(body), datetime.now(UTC)):
            await reconcile_schedule_now(_plain(body))

    # A scheduled run that ends changes its schedule's status (its runs' phases) and may exceed the history
    # limits: its schedule is looked at then, rather than polled.
    @kopf.on.event(GROUP, VERSION, "jobruns", labels={LABEL_SCHEDULE: kopf.PRESENT}, registry=registry)
    async def scheduled_run_event(body: Any, type: str | None, namespace: str | None, **kwargs: Any) -> None:
        run = RunView(body)
        key = (namespace, run.labels.get(LABEL_SCHEDULE))
        stored = next(iter(kwargs["schedules_by_name"].get(key, [])), None)
        if type is None or stored is None:
            return  # at start-up, the schedules' own listing looks at them all
        schedule = parsed(JobSchedule, stored)  # only at a scheduled run's event: a few per fire
        if schedule is None:
            return
        listed = {entry.name: entry.phase for entry in (schedule.status.runs if schedule.status else [])}
        ended = run.finished and listed.get(run.name) != run.phase
        if ended or (type == "DELETED" and run.name in listed):
            await reconcile_schedule_now(stored)

    async def poll_schedules(schedules: Any, execution: Any) -> None:
        """Fire the schedules that are due, and look at every one each running_resync_interval (a safety
        net: their runs' ends are followed by events)."""
        loop = asyncio.get_running_loop()
        looked: dict[str, float] = {}  # by schedule uid: the last pass (loop time)
        # By uid: the resourceVersion a pass wrote the status over. The index may still hold that version
        # for a moment after the write; a pass over it would decide the same fire again (409) and write a
        # status that the resourceVersion refuses.
        written: dict[str, str] = {}
        passes: set[asyncio.Task[None]] = set()  # held until done (the loop keeps only weak references)

        async def look(obj: dict[str, Any]) -> None:
            meta = obj["metadata"]
            if await reconcile_schedule_now(obj):
                written[meta["uid"]] = meta.get("resourceVersion")

        await indexed.wait()
        while True:
            await asyncio.sleep(1)
            now, moment, seen = datetime.now(UTC), loop.time(), set()
            for store in list(schedules.values()):
                for obj in list(store):
                    uid = obj["metadata"]["uid"]
                    seen.add(uid)
                    if written.get(uid) == obj["metadata"].get("resourceVersion"):
                        continue  # the index has not caught up with the last pass's write yet
                    stale = moment - looked.setdefault(uid, moment) >= settings.running_resync_interval
                    if stale or schedule_event_matters(obj, now):
                        looked[uid] = moment
                        task = asyncio.create_task(look(obj))
                        passes.add(task)
                        task.add_done_callback(passes.discard)
            for uid in set(looked) - seen:
                del looked[uid]
            for uid in set(written) - seen:
                del written[uid]

    def start_polling(kwargs: dict[str, Any], execution: Any) -> Coroutine[Any, Any, None]:
        schedule_indexes.update(
            {key: kwargs[key] for key in ("definitions_by_namespace", "runs_by_schedule")}
        )
        return poll_schedules(kwargs["schedules_by_name"], execution)

    def stop_fires() -> None:
        for executor in fire_executor:
            executor.shutdown(wait=False, cancel_futures=True)

    shared.pollers.append(start_polling)
    shared.cleanups.append(stop_fires)


def _register_repositories(registry: kopf.OperatorRegistry, shared: _Shared) -> Callable[..., None]:
    """JobRepositories: their events and the loop that checks them when due. Returns what a sync Job's
    event calls (sync_job_changed)."""
    api, catalog, settings = shared.api, shared.catalog, shared.settings

    def reconcile_repository_now(obj: dict[str, Any], kwargs: dict[str, Any]) -> None:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        lock = repository_lock(namespace, name)
        waited = not lock.acquire(blocking=False)
        if waited:
            lock.acquire()
        try:
            fresh: dict[str, Any] | None = obj
            if waited:
                # Another pass just ran (and probably wrote): decide on what it left.
                fresh = api().get_job_repository(namespace, name)
            # Our own retry, not kopf's: kopf retries no event handler (and a change handler would put
            # its progress annotations on every repository); a status write refused for its
            # resourceVersion is decided again at once, on a fresh read.
            for _ in range(2):
                if fresh is None or reconcile_repository(api(), fresh, settings, catalog(kwargs)):
                    return
                fresh = api().get_job_repository(namespace, name)  # it changed meanwhile: decide again
        finally:
            lock.release()

    # An event handler, as for runs: no kopf annotations or finalizers on repositories (a GitOps tool's
    # re-apply then changes nothing). Deleted: its definitions are kept, marked not installed.
    @kopf.on.event(GROUP, VERSION, "jobrepositories", registry=registry)
    def repository_event(
        body: Any, type: str | None, namespace: str | None, name: str, **kwargs: Any
    ) -> None:
        obj = _plain(body)
        if not namespace:
            return
        if type == "DELETED":
            forget_repository(api(), namespace, name)
        elif (repo := parsed(JobRepository, obj)) is not None and repository_event_matters(
            repo, datetime.now(UTC), listing=type is None
        ):
            reconcile_repository_now(obj, kwargs)

    def sync_job_changed(
        meta: Any, namespace: str, job: dict[str, Any] | None, kwargs: dict[str, Any]
    ) -> None:
        # The owner reference names the repository in full (the label may be cut to 63 characters).
        owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "JobRepository"), None)
        if owner is None or not sync_job_finished(job):
            return

        def following(stored: dict[str, Any] | None) -> bool:
            repo = parsed(JobRepository, stored) if stored is not None else None
            return repo is not None and repo.status is not None and repo.status.sync_job == meta["name"]

        known = next(iter(kwargs["repositories_by_name"].get((namespace, owner["name"]), [])), None)
        if not following(known):
            known = api().get_job_repository(namespace, owner["name"])  # the index may lag our write
        if known is not None and following(known):
            reconcile_repository_now(known, kwargs)

    async def poll_repositories(indices: dict[str, Any], execution: Any) -> None:
        """Look every repository_poll_check seconds for repositories whose interval elapsed, and now and
        then at a running sync Job (its events do the work). One pass per repository at a time. A loop of
        ours rather than kopf timers, as for runs and schedules: a timer puts a finalizer on every
        repository, which then cannot be deleted while the operator is down."""
        loop = asyncio.get_running_loop()
        try:
            namespaces = list(settings.namespaces)
            await loop.run_in_executor(execution.executor, forget_missing_repositories, api(), namespaces)
        except Exception as exc:
            log.warning("checking for deleted repositories failed error=%r", exc)
        in_flight: set[tuple[str, str]] = set()
        followed: dict[str, float] = {}  # by repository uid: the last look at its running sync Job

        def done(key: tuple[str, str], future: asyncio.Future[None]) -> None:
            in_flight.discard(key)
            if not future.cancelled() and future.exception() is not None:
                log.warning("repository poll failed repository=%s/%s error=%r", *key, future.exception())

        while True:
            await asyncio.sleep(settings.repository_poll_check)
            now, moment = datetime.now(UTC), loop.time()
            seen = set()
            for store in list(indices["repositories_by_name"].values()):
                for obj in list(store):
                    # Tens of repositories, every repository_poll_check seconds: parsed at each look.
                    repo = parsed(JobRepository, obj)
                    if repo is None:
                        continue
                    uid = str(repo.metadata.uid)
                    seen.add(uid)
                    key = (repo.metadata.namespace or "", repo.metadata.name or "")
                    if key in in_flight:
                        continue
                    if repo.status and repo.status.sync_job:
                        if moment - followed.setdefault(uid, moment) < settings.running_resync_interval:
                            continue
                        followed[uid] = moment
                    elif sync_due(repo, now) is None:
                        continue
                    in_flight.add(key)
                    future = loop.run_in_executor(execution.executor, reconcile_repository_now, obj, indices)
                    future.add_done_callback(functools.partial(done, key))
            for uid in set(followed) - seen:
                del followed[uid]

    def start_polling(kwargs: dict[str, Any], execution: Any) -> Coroutine[Any, Any, None]:
        names = ("definitions_by_namespace", "queues_by_name", "runs_by_name", "repositories_by_name")
        return poll_repositories({key: kwargs[key] for key in names}, execution)

    shared.pollers.append(start_polling)
    return sync_job_changed


def _register_jobs_and_pods(
    registry: kopf.OperatorRegistry,
    shared: _Shared,
    owner_changed: Callable[..., None],
    sync_job_changed: Callable[..., None],
) -> None:
    """The Jobs (and disrupted pods) of runs and of repositories' syncs: each event goes to its owner."""
    in_thread, own_writes = shared.in_thread, shared.own_writes

    # One thing about a pod its Job does not say: why Kubernetes took it away. An evicted pod that stops at
    # once is deleted before its Job's failure is read; its last state waits here (only disrupted pods').
    @kopf.on.event("", "v1", "pods", labels={**MANAGED, LABEL_RUN_UID: kopf.PRESENT}, registry=registry)
    async def pod_event(body: Any, **_: Any) -> None:
        if pod_disruption(body) is not None:
            DISRUPTED_PODS.remember(_plain(body))

    # Job events are enough to follow the pods: the Job's active/ready/failed counts and conditions
    # change with them. Pod events would multiply the work, and the polls cover the rest
    # (a pod that stays unschedulable changes nothing on its Job).
    @kopf.on.event("batch", "v1", "jobs", labels=MANAGED, registry=registry)
    async def job_event(body: Any, meta: Any, namespace: str | None, type: str | None, **kwargs: Any) -> None:
        labels = meta.get("labels") or {}
        if not namespace:
            return
        if LABEL_REPOSITORY in labels:
            # A repository's sync Job: its end is applied at once (a webhook's push shows in seconds).
            # At start-up the repositories' own listing follows their running syncs.
            if type is not None:
                job = None if type == "DELETED" else handled_job(body)
                await in_thread(sync_job_changed, _plain(meta), namespace, job, kwargs)
            return
        name = labels.get(LABEL_RUN)
        if not name:
            return
        # A deleted Job is looked up again (and found gone): the run then says why it ended.
        known = own_writes.latest(next(iter(kwargs["runs_by_name"].get((namespace, name), [])), None))
        run = RunView(known) if known is not None else None
        if run is not None and run.finished:
            return  # its run has ended: nothing its Job does changes it (its collection deletes the Job)
        if run is not None and not job_event_matters(None if type == "DELETED" else body, run):
            return  # decided from the index on kopf's view of the Job: no copy, no thread, no API call
        job = None if type == "DELETED" else handled_job(body)
        await in_thread(owner_changed, namespace, name, str(meta.get("name")), job, kwargs)
