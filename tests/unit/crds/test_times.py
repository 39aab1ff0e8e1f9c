"""The one parser of durations and of timestamps that the operator and the API share."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobplane_crds.times import DURATION_PATTERN, parse_duration, parse_time
from jobplane_crds.v1alpha1 import JobRepositorySpec


def test_a_go_style_duration_is_its_seconds() -> None:
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("90s") == timedelta(seconds=90)


@pytest.mark.parametrize("text", ["", "5", "1d", "m5", "1.5h", "-5m"])
def test_what_is_not_a_duration_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"use for example 30s, 5m or 1h30m"):
        parse_duration(text)


def test_the_schema_and_the_parser_accept_the_same_durations() -> None:
    field = JobRepositorySpec.model_fields["interval"]
    assert any(getattr(rule, "pattern", None) == DURATION_PATTERN for rule in field.metadata)
    for text in ["45s", "5m", "1h30m", "2h", "5", "1d", ""]:
        by_schema = re.match(DURATION_PATTERN, text) is not None
        try:
            parse_duration(text)
            by_parser = True
        except ValueError:
            by_parser = False
        assert by_schema == by_parser, text


def test_a_kubernetes_timestamp_is_an_aware_datetime() -> None:
    assert parse_time("2026-11-25T12:00:00Z") == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert parse_time("2026-11-25T12:00:00.5Z") == datetime(2026, 11, 25, 12, 0, 0, 500000, tzinfo=UTC)
    two = timezone(timedelta(hours=2))
    assert parse_time("2026-11-25T14:00:00+02:00") == datetime(2026, 11, 25, 14, tzinfo=two)


def test_a_naive_moment_is_read_as_utc_and_none_is_none() -> None:
    assert parse_time("2026-11-25T12:00:00") == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert parse_time(datetime(2026, 11, 25, 12)) == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert parse_time(None) is None
    assert parse_time("") is None


def test_what_is_not_a_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat string"):
        parse_time("yesterday")
