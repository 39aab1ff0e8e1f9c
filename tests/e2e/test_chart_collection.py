"""The chart's knobs of collection and retention: the finished-run TTL the operator gets, and the daily
CronJob that applies the results retention (rendered only: no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from jobplane_operator.settings import OperatorSettings
from tests.e2e.test_chart import CHART, FULLNAME, _operator_env, _render

pytestmark = pytest.mark.cluster

DEFAULTS = ("-f", str(CHART / "ci" / "default-values.yaml"))


@pytest.mark.parametrize(
    ("value", "env"),
    [(None, "86400"), ("null", ""), ("0", "0"), ("2592000", "2592000")],
    ids=["default-one-day", "null-keeps-runs", "zero-at-once", "thirty-days"],
)
def test_the_operator_gets_the_finished_run_ttl(value: str | None, env: str) -> None:
    extra = () if value is None else ("--set", f"operator.runTTLSecondsAfterFinished={value}")
    assert _operator_env(_render(*DEFAULTS, *extra))["JOBPLANE_OPERATOR_RUN_TTL_SECONDS"] == env


def test_the_chart_refuses_a_negative_finished_run_ttl() -> None:
    with pytest.raises(AssertionError, match="runTTLSecondsAfterFinished"):
        _render(*DEFAULTS, "--set", "operator.runTTLSecondsAfterFinished=-1")


def _retention(*args: str) -> list[dict[str, Any]]:
    return [d for d in _render(*DEFAULTS, *args) if d["kind"] == "CronJob"]


def test_results_retention_is_a_daily_cronjob_deleting_results_older_than_90_days_by_default() -> None:
    (cronjob,) = _retention()
    assert cronjob["metadata"]["name"] == f"{FULLNAME}-results-retention"
    assert cronjob["spec"]["schedule"] == "17 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["results-retention", "--max-age=90d", "--batch-size=1000"]
    (url,) = container["env"]
    assert url["name"] == "JOBPLANE_DATABASE_URL"
    assert url["valueFrom"]["secretKeyRef"] == {"name": f"{FULLNAME}-database", "key": "url"}
    # It needs the database only: no Kubernetes credentials, and the chart's locked-down pod.
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_results_retention_takes_a_count_per_job_a_batch_size_and_a_time_zone() -> None:
    (cronjob,) = _retention(
        "--set", "resultsRetention.maxAge=null", "--set", "resultsRetention.keepPerJob=500",
        "--set", "resultsRetention.batchSize=200", "--set", "resultsRetention.timeZone=Europe/Paris",
    )  # fmt: skip
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["results-retention", "--keep-per-job=500", "--batch-size=200"]
    assert cronjob["spec"]["timeZone"] == "Europe/Paris"


def test_results_retention_can_be_turned_off() -> None:
    assert _retention("--set", "resultsRetention.enabled=false") == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("resultsRetention.maxAge=null",), "resultsRetention needs maxAge, keepPerJob or both"),
        (("resultsRetention.maxAge=30",), "maxAge"),
        (("resultsRetention.keepPerJob=0",), "keepPerJob"),
        (("resultsRetention.batchSize=0",), "batchSize"),
    ],
)
def test_the_chart_refuses_a_retention_it_cannot_apply(values: tuple[str, ...], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        _retention(*(arg for value in values for arg in ("--set", value)))


def test_large_whole_seconds_from_a_values_file_reach_the_operator_as_integers(tmp_path: Any) -> None:
    # A values file's numbers are floats to Helm: a bare `quote` printed 2592000 as "2.592e+06", which the
    # operator's integer settings refuse at start-up.
    values = tmp_path / "values.yaml"
    values.write_text(
        "operator:\n  jobTTLSeconds: 2592000\n  leaseDuration: 1000000\n"
        "  runTTLSecondsAfterFinished: 31536000\n  repositories:\n    syncTimeout: 1000000\n"
    )
    env = _operator_env(_render(*DEFAULTS, "-f", str(values)))
    names = ("JOB_TTL_SECONDS", "LEASE_DURATION", "RUN_TTL_SECONDS", "REPOSITORY_SYNC_TIMEOUT")
    assert [env[f"JOBPLANE_OPERATOR_{name}"] for name in names] == [
        "2592000",
        "1000000",
        "31536000",
        "1000000",
    ]
    parsed = OperatorSettings(
        job_ttl_seconds=env["JOBPLANE_OPERATOR_JOB_TTL_SECONDS"],  # type: ignore[arg-type]
        lease_duration=env["JOBPLANE_OPERATOR_LEASE_DURATION"],  # type: ignore[arg-type]
        repository_sync_timeout=env["JOBPLANE_OPERATOR_REPOSITORY_SYNC_TIMEOUT"],  # type: ignore[arg-type]
    )
    assert (parsed.job_ttl_seconds, parsed.lease_duration, parsed.repository_sync_timeout) == (
        2592000,
        1000000,
        1000000,
    )
