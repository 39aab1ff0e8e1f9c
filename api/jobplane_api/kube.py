"""The one module of the API that talks to Kubernetes: a cached view of jobs, queues and repositories, and
the writes.

JobDefinitions, JobQueues and JobRepositories of ``settings.namespace`` are listed once and then kept
current by watch threads (:class:`Informer`), so listing them never calls Kubernetes per request. Writes go
straight to the API server; every Kubernetes error leaves this module as a :class:`KubeError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import ValidationError

from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import (
    INPUTS_SECRET_KEY,
    INPUTS_SECRET_TYPE,
    SCHEDULE_INPUTS_SECRET_TYPE,
    VERSION,
    JobDefinition,
    JobQueue,
    JobRepository,
    JobSchedule,
)
from jobplane_crds.v1alpha1.common import Resource

if TYPE_CHECKING:
    from jobplane_api.settings import ApiSettings

__all__ = [
    "INPUTS_KEY",
    "JOB_SCHEDULES",
    "LISTED",
    "MANAGED_BY",
    "REPOSITORY_DISPLAY_NAME",
    "SYNC_REQUESTED_AT",
    "EventHandler",
    "Informer",
    "KubeConflict",
    "KubeError",
    "KubeGateway",
    "KubeInvalid",
    "KubeNotFound",
    "KubeUnavailable",
    "ModelInformer",
    "display_name",
    "find_definition",
    "find_repository",
    "repository_display_name",
    "resolve_job",
]

log = logging.getLogger(__name__)

JOB_DEFINITIONS = "jobdefinitions"
JOB_RUNS = "jobruns"
JOB_QUEUES = "jobqueues"
JOB_REPOSITORIES = "jobrepositories"
JOB_SCHEDULES = "jobschedules"
# Set by the API (a manual or webhook sync); the operator syncs when it differs from status.syncRequest.
SYNC_REQUESTED_AT = "jobplane.io/sync-requested-at"
# A Git repository's name as Nautobot's clients gave it (free text); its object name comes from the slug.
REPOSITORY_DISPLAY_NAME = "jobplane.io/display-name"
API_VERSION = f"{GROUP}/{VERSION}"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jobplane"}
INPUTS_KEY = INPUTS_SECRET_KEY

# An event handler gets the event type (LISTED for each object of a fresh list, then ADDED, MODIFIED or
# DELETED) and the object.
EventHandler = Callable[[str, dict[str, Any]], None]
LISTED = "LISTED"


# --- domain errors ----------------------------------------------------------------------------------
class KubeError(Exception):
    """Kubernetes refused or failed a request; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class KubeNotFound(KubeError):
    """The object does not exist (404)."""


class KubeConflict(KubeError):
    """The object changed meanwhile or already exists (409)."""


class KubeInvalid(KubeError):
    """The object was refused by the schema or a validation rule (400, 422)."""


class KubeUnavailable(KubeError):
    """The API server could not be reached or answered with a server error."""


def _message_of(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
    return str(getattr(exc, "reason", None) or exc)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn the client's exceptions into domain errors, so none of them leaks out of this module."""
    # local: the kubernetes client takes ~1 s to import, paid only once a gateway talks to a cluster
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        status = exc.status if isinstance(exc.status, int) else None
        message = f"{what}: {_message_of(exc)}"
        if status == 404:
            raise KubeNotFound(message, status) from exc
        if status == 409:
            raise KubeConflict(message, status) from exc
        if status in (400, 422):
            raise KubeInvalid(message, status) from exc
        if status is None or status >= 500 or status == 429:
            raise KubeUnavailable(message, status) from exc
        raise KubeError(message, status) from exc
    except (HTTPError, OSError) as exc:
        raise KubeUnavailable(f"{what}: {exc}") from exc


# --- lookups (pure) ---------------------------------------------------------------------------------
def display_name(definition: JobDefinition | Mapping[str, Any]) -> str:
    """The job's name as the API shows it: the admin's override, else the code's, else its class name."""
    definition = JobDefinition.of(definition)
    status = definition.status
    name = definition.effective().name or (status.effective.name if status and status.effective else None)
    if name:
        return name
    class_path = definition.class_path
    if class_path:
        return class_path.rpartition(".")[2]
    return str(definition.metadata.name)


def find_definition(definitions: list[JobDefinition], key: str) -> JobDefinition | None:
    """The definition a client names: by uid, else display name, else object name, else class path."""
    lookups: tuple[Callable[[JobDefinition], Any], ...] = (
        lambda d: d.metadata.uid,
        display_name,
        lambda d: d.metadata.name,
        lambda d: d.class_path,
    )
    for lookup in lookups:
        for definition in definitions:
            if lookup(definition) == key:
                return definition
    return None


def resolve_job(definitions: list[JobDefinition], job: str) -> JobDefinition | None:
    """The definition a JobRun's spec.job names, as the operator resolves it: object name, else class path."""
    for definition in definitions:
        if definition.metadata.name == job:
            return definition
    for definition in definitions:
        if definition.class_path == job:
            return definition
    return None


def repository_display_name(repository: JobRepository) -> str:
    """The repository's name as the API shows it: the name it was created with, else its object name."""
    meta = repository.metadata
    return str((meta.annotations or {}).get(REPOSITORY_DISPLAY_NAME) or meta.name or "")


def find_repository(repositories: list[JobRepository], key: str) -> JobRepository | None:
    """The JobRepository a client names: by uid, else display name, else object name."""
    lookups: tuple[Callable[[JobRepository], Any], ...] = (
        lambda repository: repository.metadata.uid,
        repository_display_name,
        lambda repository: repository.metadata.name,
    )
    for field_of in lookups:
        for repository in repositories:
            if field_of(repository) == key:
                return repository
    return None


def _resource_version(obj: Mapping[str, Any]) -> int | None:
    # Opaque by contract, but etcd's are integers; comparing them keeps a late event from hiding a write.
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or "")
    except ValueError:
        return None


ModelT = TypeVar("ModelT", bound=Resource)


# --- informer ---------------------------------------------------------------------------------------
class Informer:
    """Lists one kind in one namespace, then watches it; keeps a cache and/or calls a handler per event.

    Watches resume from the last resourceVersion; a 410 Gone (history compacted) relists; other errors,
    including an exception from the handler, back off and relist, so a handler sees every object again.
    """

    def __init__(
        self,
        api: Any,
        plural: str,
        namespace: str,
        *,
        handler: EventHandler | None = None,
        on_list: Callable[[list[dict[str, Any]]], None] | None = None,
        keep: bool = True,
        watch_timeout: int = 300,
        relist_interval: float | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self._api = api
        self.plural = plural
        self.namespace = namespace
        self._handler = handler
        self._on_list = on_list
        self._keep = keep
        self._watch_timeout = watch_timeout
        self._relist_interval = relist_interval
        self._backoff = backoff
        self._objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: Any = None

    # --- the cache ---
    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._objects[name] for name in sorted(self._objects)]

    def get(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get(name)

    def put(self, obj: dict[str, Any]) -> None:
        """Store an object just written, unless the cache already holds a newer version of it."""
        name = obj["metadata"]["name"]
        prepared = self._prepare(obj)
        with self._lock:
            current = self._objects.get(name)
            if current is not None and not self._newer_or_same(obj, current):
                return
            self._objects[name] = obj
            self._stored(name, prepared)

    def discard(self, name: str) -> None:
        with self._lock:
            self._objects.pop(name, None)
            self._stored(name, None)

    # Hooks of a subclass that keeps something derived from each object: _prepare runs outside the lock,
    # _stored (one object changed; None: it left) and _replaced (a list replaced them all) under it.
    def _prepare(self, obj: dict[str, Any]) -> Any:
        return None

    def _stored(self, name: str, prepared: Any) -> None:
        pass

    def _replaced(self, prepared: dict[str, Any]) -> None:
        pass

    @staticmethod
    def _newer_or_same(obj: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
        new, old = _resource_version(obj), _resource_version(current)
        return new is None or old is None or new >= old

    # --- lifecycle ---
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"informer-{self.plural}-{self.namespace}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def _run(self) -> None:
        # local: the kubernetes client takes ~1 s to import, paid only once a gateway talks to a cluster
        from kubernetes.client.exceptions import ApiException

        delay = self._backoff[0]
        version: str | None = None
        listed_at = 0.0
        while not self._stop.is_set():
            try:
                due = (
                    self._relist_interval is not None and time.monotonic() - listed_at > self._relist_interval
                )
                if version is None or due:
                    listed_at = time.monotonic()
                    version = self._list()
                version = self._watch_from(version)
                delay = self._backoff[0]
            except ApiException as exc:
                if exc.status == 410:
                    log.info("watch expired, relisting kind=%s namespace=%s", self.plural, self.namespace)
                    version = None
                    continue
                delay = self._failed(exc, delay)
                version = None
            except Exception as exc:
                delay = self._failed(exc, delay)
                version = None

    def _failed(self, exc: Exception, delay: float) -> float:
        if self._stop.is_set():
            return delay
        log.warning(
            "watch failed, retrying kind=%s namespace=%s delay=%.1fs error=%s",
            self.plural,
            self.namespace,
            delay,
            exc,
        )
        self._stop.wait(delay)
        return min(delay * 2, self._backoff[1])

    def _list(self) -> str:
        listed = self._api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural)
        items = [dict(item) for item in listed.get("items", [])]
        if self._keep:
            prepared = {item["metadata"]["name"]: self._prepare(item) for item in items}
            with self._lock:
                self._objects = {item["metadata"]["name"]: item for item in items}
                self._replaced(prepared)
        if self._handler is not None:
            for item in items:
                self._handler(LISTED, item)
        if self._on_list is not None:
            self._on_list(items)
        self._synced.set()
        log.debug("listed kind=%s namespace=%s count=%d", self.plural, self.namespace, len(items))
        return str(listed["metadata"]["resourceVersion"])

    def _watch_from(self, version: str) -> str:
        # local: the kubernetes client takes ~1 s to import, paid only once a gateway talks to a cluster
        from kubernetes import watch

        new_watch: Any = watch.Watch  # untyped in the client
        self._watch = w = new_watch()
        try:
            if self._stop.is_set():  # stop() ran before there was a watch to stop
                return version
            stream = w.stream(
                self._api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                self.plural,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_timeout,
                _request_timeout=(10, self._watch_timeout + 30),
            )
            for event in stream:
                if self._stop.is_set():
                    break
                kind, obj = event["type"], event["raw_object"]
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                self._apply(kind, obj)
        finally:
            w.stop()
            self._watch = None
        return version

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        if self._keep:
            if kind == "DELETED":
                self.discard(obj["metadata"]["name"])
            else:
                self.put(obj)
        if self._handler is not None:
            self._handler(kind, obj)


class ModelInformer(Informer, Generic[ModelT]):
    """An :class:`Informer` that also keeps each cached object parsed into its model, parsed once when it
    enters the cache, so readers use attributes and no request parses. An object the model refuses (a
    newer schema than this API's) is logged and left out of the parsed view."""

    def __init__(self, api: Any, plural: str, namespace: str, *, model: type[ModelT], **options: Any) -> None:
        super().__init__(api, plural, namespace, **options)
        self._model = model
        self._models: dict[str, ModelT] = {}

    def models(self) -> list[ModelT]:
        """The cached objects as the model, by name."""
        with self._lock:
            return [self._models[name] for name in sorted(self._models)]

    def model(self, name: str) -> ModelT | None:
        with self._lock:
            return self._models.get(name)

    def parse(self, obj: Mapping[str, Any]) -> ModelT | None:
        """The object as the model, or None (logged) when the model refuses it."""
        try:
            return self._model.model_validate(obj)
        except ValidationError as exc:
            # The first error's field and message, not pydantic's full text, which quotes the input.
            name = (obj.get("metadata") or {}).get("name")
            error = exc.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(part) for part in error["loc"])
            log.warning(
                "unreadable object left out kind=%s name=%s field=%s error=%s",
                self.plural,
                name,
                field,
                error["msg"],
            )
            return None

    def _prepare(self, obj: dict[str, Any]) -> ModelT | None:
        return self.parse(obj)

    def _stored(self, name: str, prepared: ModelT | None) -> None:
        if prepared is None:
            self._models.pop(name, None)
        else:
            self._models[name] = prepared

    def _replaced(self, prepared: dict[str, ModelT | None]) -> None:
        self._models = {name: model for name, model in prepared.items() if model is not None}


# --- the gateway ------------------------------------------------------------------------------------
def _default_api_client() -> Any:
    """An ApiClient from the pod's service account, else from the kubeconfig (KUBECONFIG), as the operator."""
    # local: the kubernetes client takes ~1 s to import, paid only once a gateway talks to a cluster
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class KubeGateway:
    """Everything the API reads from and writes to Kubernetes."""

    def __init__(self, settings: ApiSettings, *, api_client: Any = None) -> None:
        # local: the kubernetes client takes ~1 s to import, paid only once a gateway talks to a cluster
        from kubernetes import client

        self.namespace = settings.namespace
        self._api_client = api_client if api_client is not None else _default_api_client()
        # Typed loosely: the bodies are plain dicts, which the generated signatures do not describe.
        self._custom: Any = client.CustomObjectsApi(self._api_client)
        self._core: Any = client.CoreV1Api(self._api_client)
        self._definitions = ModelInformer(self._custom, JOB_DEFINITIONS, self.namespace, model=JobDefinition)
        self._queues = ModelInformer(self._custom, JOB_QUEUES, self.namespace, model=JobQueue)
        # Not part of `synced`: an installation without the JobRepository CRD still serves jobs.
        self._repositories = ModelInformer(
            self._custom, JOB_REPOSITORIES, self.namespace, model=JobRepository
        )
        # Not part of `synced` either: the scheduled-jobs endpoints list them now while it has no first list.
        self._schedules = ModelInformer(self._custom, JOB_SCHEDULES, self.namespace, model=JobSchedule)

    # --- lifecycle ---
    def start(self) -> None:
        self._definitions.start()
        self._queues.start()
        self._repositories.start()
        self._schedules.start()

    def stop(self) -> None:
        self._definitions.stop()
        self._queues.stop()
        self._repositories.stop()
        self._schedules.stop()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """True once both caches hold a first list; False if the timeout came first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for informer in (self._definitions, self._queues):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not informer.wait_synced(left):
                return False
        return True

    @property
    def synced(self) -> bool:
        return self._definitions.synced and self._queues.synced

    def informer(self, plural: str, namespace: str, handler: EventHandler, **options: Any) -> Informer:
        """An informer (not started) that calls ``handler`` for every object of ``plural`` in ``namespace``.

        ``options`` go to :class:`Informer` (on_list, relist_interval, watch_timeout, backoff).
        """
        return Informer(self._custom, plural, namespace, handler=handler, keep=False, **options)

    def run_informer(self, namespace: str, handler: EventHandler, **options: Any) -> Informer:
        return self.informer(JOB_RUNS, namespace, handler, **options)

    # --- JobDefinitions (cached) ---
    def definitions(self) -> list[JobDefinition]:
        return self._definitions.models()

    def find_definition(self, key: str) -> JobDefinition | None:
        """By metadata.uid, else display name, else metadata.name, else class path."""
        return find_definition(self.definitions(), key)

    def resolve_definition(self, job: str, namespace: str) -> JobDefinition | None:
        """The definition a run's spec.job names, when the run is in the namespace this API caches."""
        if namespace != self.namespace:
            return None
        return resolve_job(self.definitions(), job)

    def patch_definition_spec(self, name: str, spec_patch: dict[str, Any]) -> JobDefinition:
        """A JSON merge patch of the definition's spec; the cache holds the result at once."""
        with _translated(f"JobDefinition {name}"):
            updated = dict(
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_DEFINITIONS, name, {"spec": spec_patch}
                )
            )
        return self._written(self._definitions, updated)

    def delete_definition(self, name: str) -> None:
        with _translated(f"JobDefinition {name}"):
            self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOB_DEFINITIONS, name
            )
        self._definitions.discard(name)

    # --- JobQueues (cached) ---
    def queues(self) -> list[JobQueue]:
        return self._queues.models()

    def queue(self, name: str) -> JobQueue | None:
        return self._queues.model(name)

    # --- JobRepositories (cached once listed) ---
    def repositories(self) -> list[JobRepository]:
        """All JobRepositories of the namespace: from the cache, or listed now while it has no first list."""
        if self._repositories.synced:
            return self._repositories.models()
        with _translated(f"JobRepositories in {self.namespace}"):
            listed = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOB_REPOSITORIES
            )
        return self._parsed_list(self._repositories, listed)

    @staticmethod
    def _parsed_list(informer: ModelInformer[ModelT], listed: Mapping[str, Any]) -> list[ModelT]:
        """A list answer's items as the informer's model (refused ones left out, as in its cache), by name."""
        parsed = (informer.parse(dict(item)) for item in listed.get("items", []))
        return sorted((item for item in parsed if item is not None), key=lambda item: str(item.metadata.name))

    @staticmethod
    def _written(informer: ModelInformer[ModelT], obj: dict[str, Any]) -> ModelT:
        """Cache an object just written; return it as the model (a write the model refuses is an error)."""
        informer.put(obj)
        parsed = informer.model(obj["metadata"]["name"])
        if parsed is None or parsed.metadata.resource_version != obj["metadata"].get("resourceVersion"):
            parsed = informer.parse(obj)  # the cache holds a newer version already: answer with this one
        if parsed is None:
            raise KubeError(f"{informer.plural}: the API server answered with an object this API cannot read")
        return parsed

    def find_repository(self, key: str) -> JobRepository | None:
        """By metadata.uid, else display name, else metadata.name."""
        return find_repository(self.repositories(), key)

    def create_repository(
        self, name: str, spec: dict[str, Any], annotations: Mapping[str, str] | None = None
    ) -> JobRepository:
        metadata: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if annotations:
            metadata["annotations"] = dict(annotations)
        body = {"apiVersion": API_VERSION, "kind": "JobRepository", "metadata": metadata, "spec": spec}
        with _translated(f"JobRepository {name}"):
            created = dict(
                self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_REPOSITORIES, body
                )
            )
        log.info("created repository repository=%s/%s url=%s", self.namespace, name, spec.get("url"))
        return self._written(self._repositories, created)

    def patch_repository(self, name: str, patch: dict[str, Any]) -> JobRepository:
        """A JSON merge patch of the repository (its spec, or its metadata); the cache holds the result."""
        with _translated(f"JobRepository {name}"):
            updated = dict(
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_REPOSITORIES, name, patch
                )
            )
        return self._written(self._repositories, updated)

    def request_sync(self, name: str, requested_at: str) -> JobRepository:
        """Ask the operator to sync now: the annotation changes, never the spec (no new generation)."""
        updated = self.patch_repository(
            name, {"metadata": {"annotations": {SYNC_REQUESTED_AT: requested_at}}}
        )
        log.info("sync requested repository=%s/%s at=%s", self.namespace, name, requested_at)
        return updated

    def delete_repository(self, name: str) -> None:
        with _translated(f"JobRepository {name}"):
            self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOB_REPOSITORIES, name
            )
        self._repositories.discard(name)
        log.info("deleted repository repository=%s/%s", self.namespace, name)

    # --- JobSchedules (cached once listed) ---
    def schedules(self) -> list[JobSchedule]:
        """All JobSchedules of the namespace: from the cache, or listed now while it has no first list."""
        if self._schedules.synced:
            return self._schedules.models()
        with _translated(f"JobSchedules in {self.namespace}"):
            listed = self._custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, JOB_SCHEDULES)
        return self._parsed_list(self._schedules, listed)

    def create_schedule(
        self,
        *,
        generate_name: str,
        spec: dict[str, Any],
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
    ) -> JobSchedule:
        """Create a JobSchedule named from ``generate_name``; returns it as stored (with its uid)."""
        metadata: dict[str, Any] = {
            "generateName": generate_name,
            "namespace": self.namespace,
            "labels": dict(labels),
            "annotations": dict(annotations),
        }
        body = {"apiVersion": API_VERSION, "kind": "JobSchedule", "metadata": metadata, "spec": spec}
        with _translated(f"JobSchedule {generate_name}*"):
            created = dict(
                self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_SCHEDULES, body
                )
            )
        schedule = self._written(self._schedules, created)
        log.info(
            "created schedule schedule=%s/%s uid=%s job=%s",
            self.namespace,
            schedule.metadata.name,
            schedule.metadata.uid,
            schedule.spec.job,
        )
        return schedule

    def patch_schedule_spec(self, name: str, spec_patch: dict[str, Any]) -> JobSchedule:
        """A JSON merge patch of the schedule's spec; the cache holds the result at once."""
        with _translated(f"JobSchedule {name}"):
            updated = dict(
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_SCHEDULES, name, {"spec": spec_patch}
                )
            )
        log.info(
            "patched schedule schedule=%s/%s fields=%s", self.namespace, name, ",".join(sorted(spec_patch))
        )
        return self._written(self._schedules, updated)

    def decide_schedule(self, name: str, patch: dict[str, Any], *, uid: str) -> JobSchedule:
        """An approval decision on that schedule (a merge patch of its approval annotation and
        spec.approval, which admission checks and stamps); the uid test keeps a schedule that took the name
        since from being decided instead."""
        body = {**patch, "metadata": {**patch.get("metadata", {}), "uid": uid}}
        with _translated(f"JobSchedule {name}"):
            updated = dict(
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_SCHEDULES, name, body
                )
            )
        decided = self._written(self._schedules, updated)
        approval = decided.spec.approval
        log.info(
            "decided schedule schedule=%s/%s by=%s", self.namespace, name, approval.by if approval else None
        )
        return decided

    def delete_schedule(self, name: str, *, uid: str) -> None:
        """Delete that schedule (gone already is fine); its runs and inputs Secret follow by owner reference.

        The uid precondition keeps a later schedule that took the same name from being deleted instead.
        """
        # local: the kubernetes client takes ~1 s to import, paid only once a gateway talks to a cluster
        from kubernetes import client

        body = client.V1DeleteOptions(
            propagation_policy="Background", preconditions=client.V1Preconditions(uid=uid)
        )
        with contextlib.suppress(KubeNotFound, KubeConflict), _translated(f"JobSchedule {name}"):
            self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOB_SCHEDULES, name, body=body
            )
        self._schedules.discard(name)
        log.info("deleted schedule schedule=%s/%s uid=%s", self.namespace, name, uid)

    def create_schedule_inputs_secret(self, *, schedule: JobSchedule, name: str, data_json: str) -> None:
        """The Secret holding a sensitive schedule's inputs under ``data.json``: of Jobplane's schedule-inputs
        type and owned by the schedule from its creation, as the operator requires before a fire copies it
        to the fire's run (deleting the schedule deletes it too)."""
        self._create_owned_secret(
            owner=(str(schedule.metadata.name), str(schedule.metadata.uid), self.namespace),
            kind="JobSchedule",
            name=name,
            secret_type=SCHEDULE_INPUTS_SECRET_TYPE,
            data_json=data_json,
        )

    # --- JobRuns ---
    def create_run(
        self, *, namespace: str, generate_name: str, spec: dict[str, Any], labels: dict[str, str]
    ) -> dict[str, Any]:
        """Create a JobRun named from ``generate_name``; returns it as stored (with its uid)."""
        body = {
            "apiVersion": API_VERSION,
            "kind": "JobRun",
            "metadata": {"generateName": generate_name, "namespace": namespace, "labels": dict(labels)},
            "spec": spec,
        }
        with _translated(f"JobRun {generate_name}*"):
            created = dict(
                self._custom.create_namespaced_custom_object(GROUP, VERSION, namespace, JOB_RUNS, body)
            )
        log.info(
            "created run run=%s/%s uid=%s job=%s",
            namespace,
            created["metadata"]["name"],
            created["metadata"]["uid"],
            spec.get("job"),
        )
        return created

    def get_run(self, namespace: str, name: str) -> dict[str, Any]:
        with _translated(f"JobRun {namespace}/{name}"):
            return dict(self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, JOB_RUNS, name))

    def list_runs(self, namespace: str) -> list[dict[str, Any]]:
        with _translated(f"JobRuns in {namespace}"):
            listed = self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, JOB_RUNS)
        return [dict(item) for item in listed.get("items", [])]

    def cancel_run(self, namespace: str, name: str) -> dict[str, Any]:
        """Ask the operator to stop the run (spec.cancel=true); returns the run."""
        with _translated(f"JobRun {namespace}/{name}"):
            updated = dict(
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, JOB_RUNS, name, {"spec": {"cancel": True}}
                )
            )
        log.info("cancel requested run=%s/%s", namespace, name)
        return updated

    # --- the inputs Secret of a sensitive run ---
    def create_inputs_secret(self, *, run: Mapping[str, Any], name: str, data_json: str) -> None:
        """The Secret holding a sensitive run's inputs under ``data.json``: of Jobplane's inputs type and
        owned by the run from its creation, the only kind of Secret the operator mounts for a run (and
        deletes when the run ends; deleting the run deletes it too)."""
        meta = run["metadata"]  # the JobRun as create_run returned it
        self._create_owned_secret(
            owner=(meta["name"], meta["uid"], meta["namespace"]),
            kind="JobRun",
            name=name,
            secret_type=INPUTS_SECRET_TYPE,
            data_json=data_json,
        )

    def _create_owned_secret(
        self, *, owner: tuple[str, str, str], kind: str, name: str, secret_type: str, data_json: str
    ) -> None:
        """A Secret in the owner's namespace, owned by it; ``owner`` is its name, uid and namespace."""
        # local: the kubernetes client takes ~1 s to import, paid only once a gateway talks to a cluster
        from kubernetes import client

        owner_name, owner_uid, namespace = owner
        reference = client.V1OwnerReference(
            api_version=API_VERSION,
            kind=kind,
            name=owner_name,
            uid=owner_uid,
            controller=True,
            block_owner_deletion=True,
        )
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels=dict(MANAGED_BY), owner_references=[reference]),
            type=secret_type,
            string_data={INPUTS_KEY: data_json},
        )
        with _translated(f"Secret {name}"):
            self._core.create_namespaced_secret(namespace, body)

    def delete_run(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        """Delete the run (gone already is fine); its Job, pod and Secrets follow by owner reference.

        With ``uid``, only that run: a later run that took the same name is another run's record, and
        the precondition's 409 means the one meant is gone.
        """
        # local: the kubernetes client takes ~1 s to import, paid only once a gateway talks to a cluster
        from kubernetes import client

        body = client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=uid) if uid is not None else None,
        )
        gone: tuple[type[KubeError], ...] = (KubeNotFound,) if uid is None else (KubeNotFound, KubeConflict)
        with contextlib.suppress(*gone), _translated(f"JobRun {namespace}/{name}"):
            self._custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, JOB_RUNS, name, body=body)
        log.info("deleted run run=%s/%s uid=%s", namespace, name, uid)
