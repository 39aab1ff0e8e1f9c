"""Noop: does nothing, so a benchmark measures only jobplane's own cost of a run."""

from __future__ import annotations

from jobplane import Job, register_jobs

name = "Getting started"


class Noop(Job):
    """Do nothing."""

    class Meta:
        name = "No-op"
        description = "Does nothing and returns nothing: the baseline of the run benchmark."
        has_sensitive_variables = False

    def run(self) -> None:
        return None


register_jobs(Noop)
