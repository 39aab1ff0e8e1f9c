"""Jobplane's job-authoring SDK: the public names a job module imports."""

from __future__ import annotations

from jobplane.job import Job, SoftTimeLimitExceeded, register_jobs
from jobplane.schema import JobDataError
from jobplane.variables import (
    BooleanVar,
    ChoiceVar,
    DryRunVar,
    FileVar,
    IntegerVar,
    IPAddressVar,
    IPAddressWithMaskVar,
    IPNetworkVar,
    JSONVar,
    MultiChoiceVar,
    MultiObjectVar,
    ObjectVar,
    StringVar,
    TextVar,
)

__all__ = [
    "BooleanVar",
    "ChoiceVar",
    "DryRunVar",
    "FileVar",
    "IPAddressVar",
    "IPAddressWithMaskVar",
    "IPNetworkVar",
    "IntegerVar",
    "JSONVar",
    "Job",
    "JobDataError",
    "MultiChoiceVar",
    "MultiObjectVar",
    "ObjectVar",
    "SoftTimeLimitExceeded",
    "StringVar",
    "TextVar",
    "register_jobs",
]
