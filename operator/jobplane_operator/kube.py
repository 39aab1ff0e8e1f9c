"""The one module that talks to the Kubernetes API for the operator and its commands."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import VERSION

__all__ = [
    "Clients",
    "create_job_definition",
    "custom_objects_api",
    "list_job_definitions",
    "load_config",
    "patch_job_definition_status",
]

JOB_DEFINITIONS = "jobdefinitions"
JOB_RUNS = "jobruns"
JOB_QUEUES = "jobqueues"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jobplane"}


def load_config() -> None:
    """Configure the official client: the pod's service account, else the kubeconfig (KUBECONFIG)."""
    from kubernetes import config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def custom_objects_api() -> Any:
    """A CustomObjectsApi from the pod's service account, else from the kubeconfig (KUBECONFIG)."""
    from kubernetes import client

    load_config()
    return client.CustomObjectsApi()


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def list_job_definitions(api: Any, namespace: str) -> list[dict[str, Any]]:
    listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, JOB_DEFINITIONS)
    return list(listed.get("items", []))


def create_job_definition(api: Any, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """Create a definition unless one appeared meanwhile (another sync, a GitOps apply): that one wins."""
    from kubernetes.client.exceptions import ApiException

    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobDefinition",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": spec,
    }
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, JOB_DEFINITIONS, body)
    except ApiException as exc:
        if exc.status != 409:
            raise


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

    @classmethod
    def load(cls, connections: int | None = None) -> Clients:
        """``connections``: how many threads may call at once (the client's default pool holds
        five per core; a thread finding it empty opens, and then drops, a connection of its own)."""
        from kubernetes import client

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

    @staticmethod
    def _plain(response: Any) -> dict[str, Any]:
        # Calls made with _preload_content=False: the JSON as the API sent it (the camelCase dicts the
        # reconcile functions read), without building the client's typed models only to undo them.
        return dict(json.loads(response.data))

    # --- JobRuns and their companions ---------------------------------------------------------------
    def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, JOB_RUNS, name))
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    def patch_run_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> bool:
        """Write a run's status if the run is still as it was read; False when it changed meanwhile.

        Events of the run, its Job and its pods are handled concurrently; the resourceVersion makes a
        decision taken on stale data lose instead of overwriting a newer one (Running back to Pending).
        """
        return self._patch_status(namespace, JOB_RUNS, name, status, resource_version)

    def patch_definition_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> bool:
        return self._patch_status(namespace, JOB_DEFINITIONS, name, status, resource_version)

    def _patch_status(
        self, namespace: str, plural: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> bool:
        from kubernetes.client.exceptions import ApiException

        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, plural, name, body)
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    def list_job_definitions(self, namespace: str) -> list[dict[str, Any]]:
        return list_job_definitions(self.custom, namespace)

    def get_job_queue(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, JOB_QUEUES, name))
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    # --- batch Jobs and pods -----------------------------------------------------------------------
    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._plain(self.batch.read_namespaced_job(name, namespace, _preload_content=False))
        except ApiException as exc:
            if _not_found(exc):
                return None
            raise

    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        """Create the run's Job; one that already exists (a restart mid-way) is adopted, never duplicated."""
        from kubernetes.client.exceptions import ApiException

        try:
            # The reply is not needed: read without parsing, which returns the connection to the pool.
            self.batch.create_namespaced_job(namespace, body, _preload_content=False).read()
        except ApiException as exc:
            if exc.status != 409:
                raise

    def delete_job(self, namespace: str, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            # Background: the Job goes now, the garbage collector stops and removes its pods.
            self.batch.delete_namespaced_job(
                name, namespace, body=client.V1DeleteOptions(propagation_policy="Background")
            )
        except ApiException as exc:
            if not _not_found(exc):
                raise

    def count_unfinished_jobs(self, namespace: str, selector: str) -> int:
        """Jobs matching the selector that have neither completed nor failed."""
        listed = self.batch.list_namespaced_job(namespace, label_selector=selector, _preload_content=False)
        finished = {"Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"}
        return sum(
            1
            for job in self._plain(listed).get("items") or []
            if not any(
                c.get("type") in finished and c.get("status") == "True"
                for c in (job.get("status") or {}).get("conditions") or []
            )
        )

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
        listed = self.core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False)
        return list(self._plain(listed).get("items") or [])

    # --- the Secrets of a run: its sensitive inputs, its token ----------------------------------------
    def own_secret(self, namespace: str, name: str, owner: dict[str, Any]) -> bool:
        """Make the run own its inputs Secret, so deleting the run deletes it; False if it is missing."""
        from kubernetes.client.exceptions import ApiException

        patch = {"metadata": {"ownerReferences": [owner]}}
        try:
            self.core.patch_namespaced_secret(name, namespace, patch)
        except ApiException as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def create_secret(self, namespace: str, body: dict[str, Any]) -> None:
        """Create a Secret the operator owns; one already there (a restart mid-way) is kept as it is."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.create_namespaced_secret(namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def delete_secret(self, namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_namespaced_secret(name, namespace)
        except ApiException as exc:
            if not _not_found(exc):
                raise
