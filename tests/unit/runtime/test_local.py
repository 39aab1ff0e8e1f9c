"""Local runs: the fields a permission's constraints are matched against, read from the job's code."""

from __future__ import annotations

from jobplane import Job
from jobplane_api.identity.principal import Grant, Principal
from jobplane_runtime.local import job_permission_fields


class Audit(Job):
    class Meta:
        name = "Audit devices"
        description = "Checks them"
        hidden = True

    def run(self) -> None:
        pass


def principal_with(constraints: object) -> Principal:
    grant = Grant.from_permission(
        name="p", object_types=["extras.job"], actions=["run"], constraints=constraints
    )
    assert grant is not None
    return Principal("ada", write_enabled=True, grants=(grant,))


def test_the_fields_are_the_api_job_record_fields_that_the_code_can_answer() -> None:
    assert job_permission_fields(Audit) == {
        "name": "Audit devices",
        "grouping": __name__,
        "module_name": __name__,
        "job_class_name": "Audit",
        "class_path": f"{__name__}.Audit",
        "installed": True,
        "hidden": True,
        "description": "Checks them",
    }


def test_constraints_are_matched_by_the_api_evaluator_and_record_only_fields_match_nothing() -> None:
    fields = job_permission_fields(Audit)
    assert principal_with({"name__ic": "audit", "hidden": True}).allows("run", "extras.job", fields)
    assert not principal_with({"grouping": "Other"}).allows("run", "extras.job", fields)
    # A local run has no job record, so neither an id nor an enabled flag to match.
    assert not principal_with({"enabled": True}).allows("run", "extras.job", fields)
    assert not principal_with({"id__isnull": True}).allows("run", "extras.job", fields)
