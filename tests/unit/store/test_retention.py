"""The results retention policy: the ages it reads and the policies it refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobplane_store.retention import RetentionPolicy, RetentionReport, parse_age


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        (" 4w ", timedelta(weeks=4)),
    ],
)
def test_an_age_is_a_count_and_a_unit(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["30", "d", "0d", "-1d", "1.5d", "30 days", "1y", ""])
def test_anything_else_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="a positive count and a unit, s, m, h, d or w"):
        parse_age(text)


def test_a_policy_keeps_by_age_by_count_or_both() -> None:
    assert RetentionPolicy(max_age=timedelta(days=30)).keep_per_job is None
    assert RetentionPolicy(keep_per_job=100).max_age is None
    assert RetentionPolicy(max_age=timedelta(days=1), keep_per_job=1).keep_per_job == 1


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({}, "needs a maximum age, a count to keep per job, or both"),
        ({"keep_per_job": 0}, "at least 1"),
        ({"max_age": timedelta(0)}, "must be positive"),
    ],
)
def test_a_policy_that_would_delete_everything_or_nothing_is_refused(policy: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetentionPolicy(**policy)


def test_the_report_says_what_went() -> None:
    report = RetentionReport(results=3, logs=10, files=2, batches=2)
    assert report.summary() == "deleted 3 results, 10 log entries and 2 files in 2 batches"
