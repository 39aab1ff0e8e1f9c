"""An object that does not fit its model is left out of the operator's indexes, with a warning naming it."""

from __future__ import annotations

import logging

import pytest

from jobplane_crds.v1alpha1 import JobQueue
from jobplane_operator.parsing import listed, parsed


def _queue(**spec: object) -> dict[str, object]:
    return {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": "gpu", "namespace": "jobs"},
        "spec": spec,
    }


def test_an_object_that_fits_is_parsed_into_its_model() -> None:
    queue = parsed(JobQueue, _queue(nodeSelector={"pool": "gpu"}))
    assert queue is not None
    assert queue.spec.node_selector == {"pool": "gpu"}


def test_an_object_that_does_not_fit_is_left_out_with_its_name_and_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobplane_operator.parsing"):
        assert parsed(JobQueue, _queue(nodeSelector="pool=gpu")) is None
    (record,) = caplog.records
    message = record.getMessage()
    assert "JobQueue left out" in message
    assert "name=jobs/gpu" in message
    assert "field=spec.nodeSelector" in message
    assert "pool=gpu" not in message  # the value itself is not logged


def test_a_listing_keeps_what_fits_and_names_what_was_left_out() -> None:
    other = {**_queue(), "metadata": {"name": "cpu", "namespace": "jobs"}}
    listing = listed(JobQueue, [_queue(nodeSelector="pool=gpu"), other])
    assert [queue.metadata.name for queue in listing.fits] == ["cpu"]
    assert listing.refused == {"gpu"}
