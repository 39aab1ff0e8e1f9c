"""`jobplane sync-jobs`, our post_upgrade: one JobDefinition per job class this image provides."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobplane.discovery import describe_job, discover_jobs
from jobplane.settings import Settings
from jobplane_crds.v1alpha1 import JobDefinition
from jobplane_crds.v1alpha1.jobdefinition import JobSource
from jobplane_operator import kube
from jobplane_operator.parsing import listed
from jobplane_operator.reconcile.jobdefinition import plan_sync

__all__ = ["SyncReport", "sync_jobs"]

log = logging.getLogger(__name__)

IMAGE_SOURCE = JobSource(type="image")


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    import_errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        errors = len(self.import_errors)
        return f"{len(self.created)} created, {len(self.updated)} updated, {errors} import errors"


def sync_jobs(settings: Settings, namespace: str, api: Any | None = None) -> SyncReport:
    """Discover the image's jobs and bring the namespace's JobDefinitions in line, writing only status."""
    discovery = discover_jobs(settings)
    api = api or kube.custom_objects_api()
    existing = listed(JobDefinition, kube.list_job_definitions(api, namespace))
    plan = plan_sync(
        existing.fits,
        [describe_job(cls) for cls in discovery.jobs.values()],
        failed_modules=discovery.errors.keys(),
        source=IMAGE_SOURCE,
        now=datetime.now(UTC),
        refused=existing.refused,
    )
    report = SyncReport(import_errors=dict(discovery.errors))
    for name, body in plan.create.items():
        kube.create_job_definition(api, namespace, name, body["spec"])
        report.created.append(name)
    for name, status in plan.status.items():
        kube.patch_job_definition_status(api, namespace, name, status)
        if name not in plan.create:
            report.updated.append(name)
    for module, error in discovery.errors.items():
        log.warning(
            "job module failed to import; its definitions are left as they were module=%s error=%s",
            module,
            error,
        )
    return report
