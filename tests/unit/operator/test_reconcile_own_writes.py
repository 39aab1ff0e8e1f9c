"""The operator's own status writes of runs, decided on until its runs index shows them."""

from __future__ import annotations

from typing import Any

from jobplane_operator.reconcile.own_writes import OwnWrites
from tests.builders import job_run


def run(version: str, phase: str | None = None, uid: str = "u1", name: str = "r") -> dict[str, Any]:
    return job_run(
        name,
        namespace="ops",
        metadata={"uid": uid, "resourceVersion": version, "managedFields": [{"manager": "jobplane"}]},
        job="noop.Noop",
        status={"phase": phase} if phase else None,
    )


def test_a_run_the_index_shows_before_our_write_is_decided_on_as_the_write_left_it() -> None:
    writes = OwnWrites()
    writes.wrote("10", run("11", "Running"))
    decided = writes.latest(run("10"))
    assert decided is not None
    assert decided["metadata"]["resourceVersion"] == "11"
    assert decided["status"] == {"phase": "Running"}
    assert "managedFields" not in decided["metadata"]  # kept as the index keeps runs


def test_writes_one_after_the_other_are_followed_until_the_index_shows_the_last() -> None:
    writes = OwnWrites()
    writes.wrote("10", run("11", "Running"))
    writes.wrote("11", run("12", "Succeeded"))  # decided on the first write's answer
    for behind in ("10", "11"):
        decided = writes.latest(run(behind))
        assert decided is not None
        assert decided["status"]["phase"] == "Succeeded"
    caught_up = run("12", "Succeeded")
    assert writes.latest(caught_up) is caught_up
    assert len(writes) == 0  # the index caught up: nothing kept
    assert writes.latest(run("10")) is not None
    assert writes.latest(run("10"))["metadata"]["resourceVersion"] == "10"  # type: ignore[index]


def test_the_index_wins_once_it_moves_past_our_write_or_shows_another_run_of_the_name() -> None:
    writes = OwnWrites()
    writes.wrote("10", run("11", "Running"))
    newer = run("13", "Running")  # someone else wrote after us (a cancel)
    assert writes.latest(newer) is newer
    writes.wrote("10", run("11", "Running"))
    other = run("10", uid="u2")  # the run was deleted and made again under its name
    assert writes.latest(other) is other
    assert writes.latest(None) is None


def test_a_write_made_over_a_version_not_ours_starts_afresh_and_unconditional_ones_are_not_kept() -> None:
    writes = OwnWrites()
    writes.wrote("10", run("11", "Running"))
    writes.wrote("20", run("21", "Succeeded"))  # decided on a read that saw versions we never wrote
    assert writes.latest(run("10"))["metadata"]["resourceVersion"] == "10"  # type: ignore[index]
    writes.wrote(None, run("31", "Running"))
    assert len(writes) == 0


def test_forget_drops_what_the_index_caught_up_with_or_no_longer_holds() -> None:
    writes = OwnWrites()
    writes.wrote("10", run("11", "Running", name="behind"))
    writes.wrote("10", run("11", "Running", name="caught-up"))
    writes.wrote("10", run("11", "Running", name="deleted"))
    writes.forget({("ops", "behind"): "10", ("ops", "caught-up"): "11"})
    assert len(writes) == 1
    decided = writes.latest(run("10", name="behind"))
    assert decided is not None
    assert decided["metadata"]["resourceVersion"] == "11"
