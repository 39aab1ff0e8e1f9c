"""`jobplane sync-repo`, a sync pod's main process: fetch a commit, import its jobs, report them on stdout.

What to sync is the sync contract the operator wrote into the pod's environment
(:class:`~jobplane_crds.gitcontract.SyncContract`); a broken one is reported like any other failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from jobplane.discovery import Discovery, _describe_error, describe_job
from jobplane_crds.envcontract import ContractError
from jobplane_crds.gitcontract import SYNC_REPORT_PREFIX, SyncContract
from jobplane_runtime.gitsource import (
    GitSourceError,
    _shown_url,
    discover_repository,
    fetch_commit,
    load_credentials,
    validate_slug,
)
from jobplane_runtime.pod import build_summary, termination_message_path, write_termination_message

__all__ = ["sync_repo"]


def _report_jobs(discovery: Discovery, checkout: Path) -> list[dict[str, Any]]:
    described = []
    for cls in discovery.jobs.values():
        try:
            described.append(describe_job(cls))
        except Exception as exc:
            # Checked when it registered, so rare: the module's other jobs still count.
            discovery.errors.setdefault(cls.__module__, _describe_error(exc, checkout))
    return sorted(described, key=lambda job: str(job["classPath"]))


def sync_repo(
    env: Mapping[str, str] | None = None,
    *,
    out: TextIO,
    err: TextIO | None = None,
    workdir: Path | None = None,
) -> int:
    """Fetch the commit the sync contract in ``env`` (default: the process environment) names, import its
    jobs, and print the report as the last stdout line; 0 ok, 1 failure.

    The report is ``SYNC_REPORT_PREFIX`` + ``{"commit", "jobs", "errors"}``, or ``{"commit", "failure":
    {"reason", "message"}}`` when nothing could be imported, a contract that does not hold included
    (reason InvalidInput, and the commit "" when it is not known). A short summary also goes to the
    termination message. ``workdir`` defaults to a fresh temporary folder, removed afterwards.
    """
    err = sys.stderr if err is None else err
    env = os.environ if env is None else env
    commit = ""
    started = time.monotonic()
    scratch: Path | None = None
    report: dict[str, Any]
    try:
        contract = SyncContract.read(env)
        url, commit, slug = contract.checkout()
        validate_slug(slug)
        credentials = load_credentials(contract.repo_credentials_dir)
        if workdir is None:
            workdir = scratch = Path(tempfile.mkdtemp(prefix="jobplane-sync-"))
        checkout = workdir / slug
        fetch_commit(
            url,
            commit,
            checkout,
            credentials,
            timeout=contract.git_timeout,
            max_bytes=contract.git_max_bytes,
        )
        print(f"Fetched commit {commit} of {_shown_url(url)} in {time.monotonic() - started:.2f} s", file=out)
        imported = time.monotonic()
        # Whatever the repository's modules print goes to stderr: stdout ends with the report.
        with contextlib.redirect_stdout(err):
            discovery = discover_repository(checkout, slug)
            jobs = _report_jobs(discovery, checkout)
        report = {"commit": commit, "jobs": jobs, "errors": dict(sorted(discovery.errors.items()))}
    except (ContractError, GitSourceError) as exc:
        print(f"jobplane: {exc.reason}: {exc}", file=err)
        report = {"commit": commit, "failure": {"reason": exc.reason, "message": str(exc)}}
        summary = build_summary("FAILURE", {"commit": commit}, f"{exc.reason}: {exc}")
    else:
        print(
            f"Imported {len(jobs)} jobs in {time.monotonic() - imported:.2f} s; "
            f"{len(report['errors'])} modules failed to import",
            file=out,
        )
        for module, error in report["errors"].items():
            print(f"Module {module} failed to import: {error}", file=out)
        result = {"commit": commit, "jobs": len(jobs), "importErrors": sorted(report["errors"])}
        summary = build_summary("SUCCESS", result, None)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    write_termination_message(termination_message_path(env), summary, err)
    err.flush()
    print(SYNC_REPORT_PREFIX + json.dumps(report, separators=(",", ":"), default=str), file=out)
    out.flush()
    return 1 if "failure" in report else 0
