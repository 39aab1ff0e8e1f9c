"""A typed read of a JobRun in its wire form, for the paths that see every run without parsing any.

The operator: kopf hands each JobRun event's body as a mapping, and the runs index keeps every run (a day
of finished ones at the default TTL) in that form, slimmed (its ``indexed_run``): the poll loop reads a few
fields of each of them every pass. Parsing each into ``JobRun`` there costs about 20 µs per run per pass,
two seconds a pass at 100,000 runs a day, and a model per run held in memory; the status writes also
compare their result with the status as stored, not as a model would print it. The API: its mirror turns
every JobRun event into its JobResult row, and must not lose a run's result because an operator newer
than the API wrote a status field the API's model does not know yet (the models refuse unknown fields).
Both read runs through this view: nothing is copied, the names are JobRun's, and each field is read in
this one place. A reconcile pass over one run (the operator's ``reconcile_run``) parses it into ``JobRun``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobplane_crds.v1alpha1 import JobRunPhase

__all__ = ["RunView"]

_PHASES = {phase.value: phase for phase in JobRunPhase}  # a lookup: the enum's own costs a microsecond


class RunView:
    """JobRun's fields the hot paths read, over the object as the apiserver sent it (never mutated)."""

    __slots__ = ("meta", "obj", "spec", "status")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.obj = obj
        self.meta: Mapping[str, Any] = obj.get("metadata") or {}
        self.spec: Mapping[str, Any] = obj.get("spec") or {}
        self.status: Mapping[str, Any] = obj.get("status") or {}
        """The status as stored: what a status write starts from and compares with."""

    # metadata
    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace") or "")

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or "")

    @property
    def uid(self) -> str | None:
        return self.meta.get("uid")

    @property
    def resource_version(self) -> str | None:
        return self.meta.get("resourceVersion")

    @property
    def generation(self) -> int:
        return int(self.meta.get("generation", 1))

    @property
    def creation_timestamp(self) -> str | None:
        """RFC 3339, as stored."""
        return self.meta.get("creationTimestamp")

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.get("labels") or {}

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.meta.get("annotations") or {}

    @property
    def owner_references(self) -> list[Mapping[str, Any]]:
        return list(self.meta.get("ownerReferences") or [])

    # spec
    @property
    def job(self) -> str:
        return str(self.spec.get("job") or "")

    @property
    def cancel(self) -> bool:
        return bool(self.spec.get("cancel"))

    @property
    def data(self) -> Mapping[str, Any]:
        return self.spec.get("data") or {}

    @property
    def inputs_secret_ref(self) -> str | None:
        return self.spec.get("inputsSecretRef") or None

    @property
    def requested_by(self) -> str | None:
        return self.spec.get("requestedBy")

    @property
    def approval(self) -> Mapping[str, Any]:
        """spec.approval as stamped at admission: decision, by, at (RFC 3339); empty when none."""
        return self.spec.get("approval") or {}

    @property
    def dry_run(self) -> bool:
        return bool(self.spec.get("dryRun", False))

    # status
    @property
    def phase(self) -> JobRunPhase | None:
        phase = self.status.get("phase")
        if not phase:
            return None
        return _PHASES.get(phase) or JobRunPhase(phase)  # a phase the enum does not know raises, as there

    @property
    def finished(self) -> bool:
        phase = self.phase
        return phase is not None and phase.is_terminal

    @property
    def reason(self) -> str | None:
        return self.status.get("reason")

    @property
    def message(self) -> str | None:
        return self.status.get("message")

    @property
    def class_path(self) -> str | None:
        return self.status.get("classPath")

    @property
    def commit(self) -> str | None:
        return self.status.get("commit")

    @property
    def image_digest(self) -> str | None:
        return self.status.get("imageDigest")

    @property
    def start_time(self) -> str | None:
        """RFC 3339, as stored."""
        return self.status.get("startTime")

    @property
    def result(self) -> Mapping[str, Any]:
        """The summary the operator read from the pod's termination message: result, error; empty if none."""
        return self.status.get("result") or {}

    @property
    def job_name(self) -> str | None:
        return self.status.get("jobName")

    @property
    def pod_name(self) -> str | None:
        return self.status.get("podName")

    @property
    def queue(self) -> str | None:
        """The queue the run was placed on (its status), else the one it asked for."""
        return self.status.get("queue") or self.spec.get("queue") or None

    @property
    def completion_time(self) -> str | None:
        """RFC 3339, as stored."""
        return self.status.get("completionTime")

    @property
    def conditions(self) -> list[Mapping[str, Any]]:
        return list(self.status.get("conditions") or [])
