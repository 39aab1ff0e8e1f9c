"""The chart's knobs of collection and retention: the finished-run TTL the operator gets, and the daily
CronJob that applies the results retention (rendered only: no cluster)."""

from __future__ import annotations

import pytest

from tests.e2e.test_chart import CHART, _operator_env, _render

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
