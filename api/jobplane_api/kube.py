"""The one module of the API that talks to Kubernetes: a cached view of jobs, queues and repositories, and
the writes.

JobDefinitions, JobQueues and JobRepositories of ``settings.namespace`` are listed once and then kept
current by watch threads (:class:`Informer`), so listing them never calls Kubernetes per request. Writes go
straight to the API server; every Kubernetes error leaves this module as a :class:`KubeError`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import (
    INPUTS_SECRET_KEY,
    INPUTS_SECRET_TYPE,
    SCHEDULE_INPUTS_SECRET_TYPE,
    VERSION,
)
from jobplane_crds.v1alpha1.jobdefinition import effective_of

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
    import json

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
def _class_path(definition: Mapping[str, Any]) -> str | None:
    status = definition.get("status") or {}
    found = status.get("classPath") or (definition.get("spec") or {}).get("classPath")
    return str(found) if found else None


def display_name(definition: Mapping[str, Any]) -> str:
    """The job's name as the API shows it: the admin's override, else the code's, else its class name."""
    status = definition.get("status") or {}
    effective = effective_of(definition)
    name = effective.get("name") or (status.get("effective") or {}).get("name")
    if name:
        return str(name)
    class_path = _class_path(definition)
    if class_path:
        return class_path.rpartition(".")[2]
    return str(definition["metadata"]["name"])


def find_definition(definitions: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The definition a client names: by uid, else display name, else object name, else class path."""
    lookups: tuple[Callable[[dict[str, Any]], Any], ...] = (
        lambda d: d["metadata"].get("uid"),
        display_name,
        lambda d: d["metadata"].get("name"),
        _class_path,
    )
    for lookup in lookups:
        for definition in definitions:
            if lookup(definition) == key:
                return definition
    return None


def resolve_job(definitions: list[dict[str, Any]], job: str) -> dict[str, Any] | None:
    """The definition a JobRun's spec.job names, as the operator resolves it: object name, else class path."""
    for definition in definitions:
        if definition["metadata"].get("name") == job:
            return definition
    for definition in definitions:
        if _class_path(definition) == job:
            return definition
    return None


def repository_display_name(repository: Mapping[str, Any]) -> str:
    """The repository's name as the API shows it: the name it was created with, else its object name."""
    meta = repository.get("metadata") or {}
    return str((meta.get("annotations") or {}).get(REPOSITORY_DISPLAY_NAME) or meta.get("name") or "")


def find_repository(repositories: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The JobRepository a client names: by uid, else display name, else object name."""
    lookups: tuple[Callable[[Mapping[str, Any]], Any], ...] = (
        lambda repository: repository["metadata"].get("uid"),
        repository_display_name,
        lambda repository: repository["metadata"].get("name"),
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
        with self._lock:
            current = self._objects.get(name)
            if current is not None and not self._newer_or_same(obj, current):
                return
            self._objects[name] = obj

    def discard(self, name: str) -> None:
        with self._lock:
            self._objects.pop(name, None)

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
            with self._lock:
                self._objects = {item["metadata"]["name"]: item for item in items}
        if self._handler is not None:
            for item in items:
                self._handler(LISTED, item)
        if self._on_list is not None:
            self._on_list(items)
        self._synced.set()
        log.debug("listed kind=%s namespace=%s count=%d", self.plural, self.namespace, len(items))
        return str(listed["metadata"]["resourceVersion"])

    def _watch_from(self, version: str) -> str:
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


# --- the gateway ------------------------------------------------------------------------------------
def _default_api_client() -> Any:
    """An ApiClient from the pod's service account, else from the kubeconfig (KUBECONFIG), as the operator."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class KubeGateway:
    """Everything the API reads from and writes to Kubernetes."""

    def __init__(self, settings: ApiSettings, *, api_client: Any = None) -> None:
        from kubernetes import client

        self.namespace = settings.namespace
        self._api_client = api_client if api_client is not None else _default_api_client()
        # Typed loosely: the bodies are plain dicts, which the generated signatures do not describe.
        self._custom: Any = client.CustomObjectsApi(self._api_client)
        self._core: Any = client.CoreV1Api(self._api_client)
        self._definitions = Informer(self._custom, JOB_DEFINITIONS, self.namespace)
        self._queues = Informer(self._custom, JOB_QUEUES, self.namespace)
        # Not part of `synced`: an installation without the JobRepository CRD still serves jobs.
        self._repositories = Informer(self._custom, JOB_REPOSITORIES, self.namespace)
        # Not part of `synced` either: the scheduled-jobs endpoints list them now while it has no first list.
        self._schedules = Informer(self._custom, JOB_SCHEDULES, self.namespace)

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
    def definitions(self) -> list[dict[str, Any]]:
        return self._definitions.items()

    def find_definition(self, key: str) -> dict[str, Any] | None:
        """By metadata.uid, else display name, else metadata.name, else class path."""
        return find_definition(self.definitions(), key)

    def resolve_job(self, job: str, namespace: str) -> dict[str, Any] | None:
        """The definition a run's spec.job names, when the run is in the namespace this API caches."""
        if namespace != self.namespace:
            return None
        return resolve_job(self.definitions(), job)

    def patch_definition_spec(self, name: str, spec_patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the definition's spec; the cache holds the result at once."""
        with _translated(f"JobDefinition {name}"):
            updated = dict(
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_DEFINITIONS, name, {"spec": spec_patch}
                )
            )
        self._definitions.put(updated)
        return updated

    def delete_definition(self, name: str) -> None:
        with _translated(f"JobDefinition {name}"):
            self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOB_DEFINITIONS, name
            )
        self._definitions.discard(name)

    # --- JobQueues (cached) ---
    def queues(self) -> list[dict[str, Any]]:
        return self._queues.items()

    def queue(self, name: str) -> dict[str, Any] | None:
        return self._queues.get(name)

    # --- JobRepositories (cached once listed) ---
    def repositories(self) -> list[dict[str, Any]]:
        """All JobRepositories of the namespace: from the cache, or listed now while it has no first list."""
        if self._repositories.synced:
            return self._repositories.items()
        with _translated(f"JobRepositories in {self.namespace}"):
            listed = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOB_REPOSITORIES
            )
        items = [dict(item) for item in listed.get("items", [])]
        return sorted(items, key=lambda item: str(item["metadata"]["name"]))

    def find_repository(self, key: str) -> dict[str, Any] | None:
        """By metadata.uid, else display name, else metadata.name."""
        return find_repository(self.repositories(), key)

    def create_repository(
        self, name: str, spec: dict[str, Any], annotations: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
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
        self._repositories.put(created)
        log.info("created repository repository=%s/%s url=%s", self.namespace, name, spec.get("url"))
        return created

    def patch_repository(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the repository (its spec, or its metadata); the cache holds the result."""
        with _translated(f"JobRepository {name}"):
            updated = dict(
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_REPOSITORIES, name, patch
                )
            )
        self._repositories.put(updated)
        return updated

    def request_sync(self, name: str, requested_at: str) -> dict[str, Any]:
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
    def schedules(self) -> list[dict[str, Any]]:
        """All JobSchedules of the namespace: from the cache, or listed now while it has no first list."""
        if self._schedules.synced:
            return self._schedules.items()
        with _translated(f"JobSchedules in {self.namespace}"):
            listed = self._custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, JOB_SCHEDULES)
        items = [dict(item) for item in listed.get("items", [])]
        return sorted(items, key=lambda item: str(item["metadata"]["name"]))

    def create_schedule(
        self,
        *,
        generate_name: str,
        spec: dict[str, Any],
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
    ) -> dict[str, Any]:
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
        self._schedules.put(created)
        log.info(
            "created schedule schedule=%s/%s uid=%s job=%s",
            self.namespace,
            created["metadata"]["name"],
            created["metadata"]["uid"],
            spec.get("job"),
        )
        return created

    def patch_schedule_spec(self, name: str, spec_patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the schedule's spec; the cache holds the result at once."""
        with _translated(f"JobSchedule {name}"):
            updated = dict(
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, JOB_SCHEDULES, name, {"spec": spec_patch}
                )
            )
        self._schedules.put(updated)
        log.info(
            "patched schedule schedule=%s/%s fields=%s", self.namespace, name, ",".join(sorted(spec_patch))
        )
        return updated

    def decide_schedule(self, name: str, patch: dict[str, Any], *, uid: str) -> dict[str, Any]:
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
        self._schedules.put(updated)
        by = patch["spec"]["approval"]["by"]
        log.info("decided schedule schedule=%s/%s by=%s", self.namespace, name, by)
        return updated

    def delete_schedule(self, name: str, *, uid: str) -> None:
        """Delete that schedule (gone already is fine); its runs and inputs Secret follow by owner reference.

        The uid precondition keeps a later schedule that took the same name from being deleted instead.
        """
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

    def create_schedule_inputs_secret(
        self, *, schedule: Mapping[str, Any], name: str, data_json: str
    ) -> None:
        """The Secret holding a sensitive schedule's inputs under ``data.json``: of Jobplane's schedule-inputs
        type and owned by the schedule from its creation, as the operator requires before a fire copies it
        to the fire's run (deleting the schedule deletes it too)."""
        self._create_owned_secret(
            owner=schedule,
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
        self._create_owned_secret(
            owner=run, kind="JobRun", name=name, secret_type=INPUTS_SECRET_TYPE, data_json=data_json
        )

    def _create_owned_secret(
        self, *, owner: Mapping[str, Any], kind: str, name: str, secret_type: str, data_json: str
    ) -> None:
        from kubernetes import client

        meta = owner["metadata"]
        reference = client.V1OwnerReference(
            api_version=API_VERSION,
            kind=kind,
            name=meta["name"],
            uid=meta["uid"],
            controller=True,
            block_owner_deletion=True,
        )
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, labels=dict(MANAGED_BY), owner_references=[reference]),
            type=secret_type,
            string_data={INPUTS_KEY: data_json},
        )
        with _translated(f"Secret {name}"):
            self._core.create_namespaced_secret(meta["namespace"], body)

    def delete_run(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        """Delete the run (gone already is fine); its Job, pod and Secrets follow by owner reference.

        With ``uid``, only that run: a later run that took the same name is another run's record, and
        the precondition's 409 means the one meant is gone.
        """
        from kubernetes import client

        body = client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=uid) if uid is not None else None,
        )
        gone: tuple[type[KubeError], ...] = (KubeNotFound,) if uid is None else (KubeNotFound, KubeConflict)
        with contextlib.suppress(*gone), _translated(f"JobRun {namespace}/{name}"):
            self._custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, JOB_RUNS, name, body=body)
        log.info("deleted run run=%s/%s uid=%s", namespace, name, uid)
