"""The one module that talks to the Kubernetes API for the operator's own resources."""

from __future__ import annotations

from typing import Any

from jobplane_crds import GROUP
from jobplane_crds.v1alpha1 import VERSION

__all__ = [
    "create_job_definition",
    "custom_objects_api",
    "list_job_definitions",
    "patch_job_definition_status",
]

JOB_DEFINITIONS = "jobdefinitions"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jobplane"}


def custom_objects_api() -> Any:
    """A CustomObjectsApi from the pod's service account, else from the kubeconfig (KUBECONFIG)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.CustomObjectsApi()


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
