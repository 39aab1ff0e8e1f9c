"""The one module that talks to the Kubernetes API for the operator and its commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import VERSION

__all__ = [
    "Clients",
    "SecretData",
    "create_job_definition",
    "custom_objects_api",
    "list_job_definitions",
    "load_config",
    "patch_job_definition_status",
    "served_kinds",
]

JOB_DEFINITIONS = "jobdefinitions"
JOB_RUNS = "jobruns"
JOB_QUEUES = "jobqueues"
JOB_REPOSITORIES = "jobrepositories"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jobplane"}
FIELD_MANAGER = "jobplane-operator"


@dataclass(frozen=True)
class SecretData:
    """What the operator reads of a Secret: its labels and its data (base64 values, as the API holds them)."""

    labels: dict[str, str]
    data: dict[str, str]


def load_config() -> None:
    """Configure the official client: the pod's service account, else the kubeconfig (KUBECONFIG)."""

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def served_kinds(api: Any) -> set[str]:
    """The jobplane.io kinds (plurals) the apiserver serves now, from discovery (readable by any identity);
    empty while the group is not served at all."""

    try:
        listed = api.get_api_resources(GROUP, VERSION)
    except ApiException as exc:
        if _not_found(exc):
            return set()
        raise
    return {resource.name for resource in listed.resources or [] if "/" not in resource.name}


def custom_objects_api() -> Any:
    """A CustomObjectsApi from the pod's service account, else from the kubeconfig (KUBECONFIG)."""

    load_config()
    return client.CustomObjectsApi()


# The label Kueue puts on a Job's Workload: the Job's uid.
KUEUE_JOB_UID = "kueue.x-k8s.io/job-uid"


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def list_job_definitions(api: Any, namespace: str) -> list[dict[str, Any]]:
    listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, JOB_DEFINITIONS)
    return list(listed.get("items", []))


def create_job_definition(api: Any, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """Make a definition exist, owning none of its spec: a server-side apply of its name and label only.

    A create would make the operator the manager of the spec's schema defaults (``enabled: false``), and a
    GitOps tool's server-side apply of the same definition, enabled, would then conflict with it. ``spec``
    holds only those defaults (new jobs start disabled), which the schema applies. One that appeared
    meanwhile (another sync, a GitOps apply) keeps everything it has.
    """
    if any(value not in (None, False, {}) for value in spec.values()):
        raise ValueError(f"a new JobDefinition's spec comes from people, not from a sync: {spec!r}")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobDefinition",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
    }
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        JOB_DEFINITIONS,
        name,
        body,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def patch_job_definition_status(api: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    # A merge patch on the status subresource: spec (the admins' part) is never written.
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, JOB_DEFINITIONS, name, {"status": status}
    )


@dataclass
class Clients:
    """The API clients the operator uses, made once at start-up."""

    custom: Any
    batch: Any
    core: Any
    # Told of each run status write that succeeded over a resourceVersion: (that version, the run the
    # apiserver answered with). The operator's handlers decide on it until their index shows the write.
    on_run_written: Callable[[str | None, dict[str, Any]], None] | None = None

    @classmethod
    def load(cls, connections: int | None = None) -> Clients:
        """``connections``: how many threads may call at once (the client's default pool holds
        five per core; a thread finding it empty opens, and then drops, a connection of its own)."""

        load_config()
        configuration = client.Configuration.get_default_copy()
        if connections:
            configuration.connection_pool_maxsize = connections
        api_client = client.ApiClient(configuration)
        return cls(
            custom=client.CustomObjectsApi(api_client),
            batch=client.BatchV1Api(api_client),
            core=client.CoreV1Api(api_client),
        )

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> bytes:
        """One request on the hot path of a run, through the client's configuration (its authentication,
        TLS and connection pool), returning the reply's JSON as sent.

        The generated methods validate every argument with pydantic and build the typed models of the body
        before they send it: a seventh of the operator's CPU for each run it started (py-spy). Errors are
        the client's ApiException, as from those methods.
        """

        api_client = self.batch.api_client
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, _, _ = api_client.param_serialize(
            method, path, header_params=headers, auth_settings=["BearerToken"]
        )
        response = api_client.call_api(method, url, header_params=headers, body=body)
        data = bytes(response.read())
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(
                http_resp=response, body=data.decode("utf-8", "replace"), data=None
            )
        return data

    @staticmethod
    def _path(*parts: str) -> str:
        return "/" + "/".join(quote(part, safe="") for part in parts)

    # --- JobRuns and their companions ---------------------------------------------------------------
    def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:

        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, JOB_RUNS, name))
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    def delete_run(self, namespace: str, name: str, uid: str) -> bool:
        """Delete that very run (a later one under its name is another's); False when it is gone already.

        Background: the run goes now, the garbage collector then removes its Job, pod and Secrets, which
        it owns.
        """

        options = client.V1DeleteOptions(
            propagation_policy="Background", preconditions=client.V1Preconditions(uid=uid)
        )
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, JOB_RUNS, name, body=options
            )
        except ApiException as exc:
            if exc.status in (404, 409):  # 409: the uid precondition failed, the run meant is gone
                return False
            raise
        return True

    def patch_run_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> bool:
        """Write a run's status if the run is still as it was read; False when it changed meanwhile.

        Events of the run, its Job and its pods are handled concurrently; the resourceVersion makes a
        decision taken on stale data lose instead of overwriting a newer one (Running back to Pending).
        """
        written = self._patch_status(namespace, JOB_RUNS, name, status, resource_version)
        if written is not None and self.on_run_written is not None:
            self.on_run_written(resource_version, json.loads(written))
        return written is not None

    def patch_queue_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        """Merge these fields into a queue's status (None removes one); False when the queue is gone."""
        return self._patch_status(namespace, JOB_QUEUES, name, status, None) is not None

    def patch_definition_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> bool:
        return self._patch_status(namespace, JOB_DEFINITIONS, name, status, resource_version) is not None

    def _patch_status(
        self, namespace: str, plural: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> bytes | None:
        """The object as written (its JSON), or None when it changed meanwhile or is gone."""

        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        path = self._path("apis", GROUP, VERSION, "namespaces", namespace, plural, name, "status")
        try:
            return self._call("PATCH", path, body, content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status in (404, 409):
                return None
            raise

    def list_job_definitions(self, namespace: str) -> list[dict[str, Any]]:
        return list_job_definitions(self.custom, namespace)

    def list_all_job_definitions(self, namespaces: list[str] | None = None) -> list[dict[str, Any]]:
        """Every JobDefinition of the cluster, or of ``namespaces`` only (namespaced RBAC)."""
        return self._list_everywhere(JOB_DEFINITIONS, namespaces)

    def create_job_definition(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        create_job_definition(self.custom, namespace, name, spec)

    def delete_job_definition(self, namespace: str, name: str, resource_version: str | None) -> bool:
        """Delete a definition if it is still as it was read; False when it changed or is gone."""

        preconditions = (
            client.V1Preconditions(resource_version=resource_version) if resource_version else None
        )
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                JOB_DEFINITIONS,
                name,
                body=client.V1DeleteOptions(preconditions=preconditions),
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    # --- JobRepositories ---------------------------------------------------------------------------
    def get_job_repository(self, namespace: str, name: str) -> dict[str, Any] | None:

        try:
            return dict(
                self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, JOB_REPOSITORIES, name)
            )
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    def list_all_job_repositories(self, namespaces: list[str] | None = None) -> list[dict[str, Any]]:
        """Every JobRepository of the cluster, or of ``namespaces`` only (namespaced RBAC)."""
        return self._list_everywhere(JOB_REPOSITORIES, namespaces)

    def patch_repository_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> bool:
        """Write a repository's status if it is still as it was read (see patch_run_status)."""
        return self._patch_status(namespace, JOB_REPOSITORIES, name, status, resource_version) is not None

    def get_secret_data(self, namespace: str, name: str) -> SecretData | None:
        """A Secret's labels and data (base64 values, as the API holds them), or None when it does not exist.

        For a JobRepository's Git credentials, read to check they are scoped to the repository (the
        labels and the url key) before any value is used.
        """
        secret = self.get_secret(namespace, name)
        if secret is None:
            return None
        labels = (secret.get("metadata") or {}).get("labels") or {}
        return SecretData(
            labels={str(key): str(value) for key, value in labels.items()},
            data={str(key): str(value) for key, value in (secret.get("data") or {}).items()},
        )

    def read_pod_log(self, namespace: str, name: str, container: str, tail_lines: int) -> str | None:
        """The end of a container's log, or None when the pod (or its log) is gone."""

        try:
            response = self.core.read_namespaced_pod_log(
                name, namespace, container=container, tail_lines=tail_lines, _preload_content=False
            )
        except ApiException as exc:
            if exc.status in (400, 404):  # 400: the container never started, so it has no log
                return None
            raise
        return bytes(response.data).decode("utf-8", errors="replace")

    def _list_everywhere(self, plural: str, namespaces: list[str] | None) -> list[dict[str, Any]]:
        if not namespaces:
            listed = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)
            return list(listed.get("items", []))
        items: list[dict[str, Any]] = []
        for namespace in namespaces:
            listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
            items.extend(listed.get("items", []))
        return items

    def get_job_queue(self, namespace: str, name: str) -> dict[str, Any] | None:

        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, JOB_QUEUES, name))
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    # --- batch Jobs and pods -----------------------------------------------------------------------
    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:

        try:
            return dict(
                json.loads(
                    self._call(
                        "GET", self._path("apis", "batch", "v1", "namespaces", namespace, "jobs", name)
                    )
                )
            )
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    def create_job(self, namespace: str, body: dict[str, Any]) -> bool:
        """Create the run's Job: True when created, False when it already existed (a restart mid-way, or a
        run started before its status was written), which is adopted, never duplicated."""

        try:
            self._call("POST", self._path("apis", "batch", "v1", "namespaces", namespace, "jobs"), body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            return False
        return True

    def delete_job(self, namespace: str, name: str) -> None:

        try:
            # Background: the Job goes now, the garbage collector stops and removes its pods.
            self.batch.delete_namespaced_job(
                name, namespace, body=client.V1DeleteOptions(propagation_policy="Background")
            )
        except ApiException as exc:
            if not _not_found(exc):
                raise

    def unfinished_job_runs(self, namespace: str, selector: str) -> list[str]:
        """The runs (their names) of the Jobs matching the selector that have neither completed nor failed."""
        path = self._path("apis", "batch", "v1", "namespaces", namespace, "jobs")
        listed = json.loads(self._call("GET", path, query={"labelSelector": selector}))
        finished = {"Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"}
        runs = []
        for job in listed.get("items") or []:
            conditions = (job.get("status") or {}).get("conditions") or []
            if any(c.get("type") in finished and c.get("status") == "True" for c in conditions):
                continue
            meta = job.get("metadata") or {}
            owner = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "JobRun"), None)
            runs.append(str(owner["name"] if owner else meta.get("name")))
        return runs

    def list_all_runs(self, namespaces: list[str] | None = None) -> list[dict[str, Any]]:
        """Every JobRun the operator watches: the whole cluster, or only ``namespaces`` (namespaced RBAC)."""
        if not namespaces:
            listed = self.custom.list_cluster_custom_object(GROUP, VERSION, JOB_RUNS)
            return list(listed.get("items", []))
        return [run for namespace in namespaces for run in self.list_runs(namespace)]

    def list_runs(self, namespace: str) -> list[dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, JOB_RUNS)
        return list(listed.get("items", []))

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        path = self._path("api", "v1", "namespaces", namespace, "pods")
        listed = json.loads(self._call("GET", path, query={"labelSelector": selector}))
        return list(listed.get("items") or [])

    def kueue_workload(self, namespace: str, job_uid: str) -> dict[str, Any] | None:
        """Kueue's Workload of a suspended Job (it says why Kueue has not admitted it), or None: none yet,
        Kueue not installed, or no right to read workloads (the chart grants it; without it the run's
        Waiting condition just says less)."""

        path = self._path("apis", "kueue.x-k8s.io", "v1beta2", "namespaces", namespace, "workloads")
        try:
            listed = json.loads(
                self._call("GET", path, query={"labelSelector": f"{KUEUE_JOB_UID}={job_uid}"})
            )
        except ApiException as exc:
            if getattr(exc, "status", None) in (403, 404):
                return None
            raise
        items = listed.get("items") or []
        return dict(items[0]) if items else None

    # --- the Secrets of a run: its sensitive inputs, its token ----------------------------------------
    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Secret as stored, or None; read one by one, never listed. Only the Secrets a run or a
        repository names, checked by type and owner (or label and URL) before anything of it is used."""

        try:
            return dict(
                json.loads(
                    self._call("GET", self._path("api", "v1", "namespaces", namespace, "secrets", name))
                )
            )
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    # --- the Lease of a singleton job ---------------------------------------------------------------
    def _lease_path(self, namespace: str, name: str = "") -> str:
        parts = ["apis", "coordination.k8s.io", "v1", "namespaces", namespace, "leases"]
        return self._path(*parts, *([name] if name else []))

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:

        try:
            return dict(json.loads(self._call("GET", self._lease_path(namespace, name))))
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    def take_lease(self, namespace: str, body: dict[str, Any], replacing: dict[str, Any] | None) -> bool:
        """Create the Lease, or replace ``replacing`` (as read); False when someone else wrote it first."""

        try:
            if replacing is None:
                self._call("POST", self._lease_path(namespace), body)
            else:
                meta = replacing["metadata"]
                body = {**body, "metadata": {**body["metadata"], "resourceVersion": meta["resourceVersion"]}}
                self._call("PUT", self._lease_path(namespace, meta["name"]), body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def may(self, user: dict[str, Any], verb: str, resource: str, namespace: str, group: str = "") -> bool:
        """Whether ``user`` (an admission request's userInfo) may ``verb`` ``resource`` in ``namespace``
        by their own RBAC: a SubjectAccessReview, so Jobplane never does for them what they could not."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user.get("username", ""),
                "uid": user.get("uid", ""),
                "groups": list(user.get("groups") or []),
                "extra": dict(user.get("extra") or {}),
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                },
            },
        }
        path = self._path("apis", "authorization.k8s.io", "v1", "subjectaccessreviews")
        answer = json.loads(self._call("POST", path, review))
        return bool((answer.get("status") or {}).get("allowed"))

    def create_secret(self, namespace: str, body: dict[str, Any]) -> None:
        """Create a Secret the operator owns; one already there (a restart mid-way) is kept as it is."""

        try:
            self.core.create_namespaced_secret(namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete a Secret; with ``uid``, only that very object (not one made again under its name)."""

        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)) if uid else None
        try:
            self.core.delete_namespaced_secret(name, namespace, body=options)
        except ApiException as exc:
            if not _not_found(exc):
                raise
