"""A run's start at the trust boundary: its inputs Secret checked, never adopted; singletons in turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jobplane.settings import Settings
from jobplane_crds.v1alpha1 import INPUTS_SECRET_TYPE
from jobplane_operator.reconcile.jobrun import (
    LeaseHolder,
    singleton_holders,
    singleton_lease,
    singleton_lease_name,
    singleton_turn,
)
from jobplane_operator.runs import reconcile_run
from jobplane_operator.settings import OperatorSettings
from tests.unit.operator.test_reconcile_jobrun import UID, FakeCatalog, FakeClients, definition, run_obj_of

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
OTHER_UID = "0b9a8c7d-0000-4000-8000-000000000001"


class BoundaryClients(FakeClients):
    """FakeClients with Secrets (as read, and deleted) and Leases (conditional writes)."""

    def __init__(self, catalog: FakeCatalog) -> None:
        super().__init__(catalog)
        self.stored: dict[str, dict[str, Any]] = {}
        self.deleted: list[tuple[str, str | None]] = []
        self.leases: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.version = 0

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get_secret")
        return self.stored.get(name)

    def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> None:
        self.calls.append("delete_secret")
        self.deleted.append((name, uid))

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.leases.get(name)

    def take_lease(self, namespace: str, body: dict[str, Any], replacing: dict[str, Any] | None) -> bool:
        name = body["metadata"]["name"]
        current = self.leases.get(name)
        if (replacing is None) != (current is None) or (
            current is not None
            and replacing is not None
            and current["metadata"]["resourceVersion"] != replacing["metadata"]["resourceVersion"]
        ):
            return False  # what the API answers with 409
        self.version += 1
        self.leases[name] = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        return True

    def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.runs.get(name)


def sensitive_run(ref: str = "r1-inputs", age: float = 1) -> dict[str, Any]:
    obj = run_obj_of("audit.Audit")
    obj["spec"] = {"job": "audit.Audit", "inputsSecretRef": ref, "data": {}}
    obj["metadata"]["creationTimestamp"] = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return obj


def inputs_secret(owner_uid: str = UID, type_: str = INPUTS_SECRET_TYPE) -> dict[str, Any]:
    owner = {"apiVersion": "jobplane.io/v1alpha1", "kind": "JobRun", "name": "r1", "uid": owner_uid}
    return {
        "type": type_,
        "metadata": {
            "name": "r1-inputs",
            "uid": "secret-uid",
            "ownerReferences": [{**owner, "controller": True}],
        },
    }


def reconcile(clients: BoundaryClients, obj: dict[str, Any], now: datetime = NOW) -> None:
    settings, defaults = OperatorSettings(), Settings()
    reconcile_run(clients, obj, settings, defaults, clients.catalog, now=now)  # type: ignore[arg-type]


def catalog(**code: Any) -> FakeCatalog:
    return FakeCatalog(definition(**code), None, {})


# --- the inputs Secret ------------------------------------------------------------------------------------


def test_a_typed_secret_the_run_owns_is_mounted_and_deleted_as_that_very_object_at_the_end() -> None:
    clients = BoundaryClients(catalog(hasSensitiveVariables=True))
    clients.stored["r1-inputs"] = inputs_secret()
    reconcile(clients, sensitive_run())
    (job,) = clients.jobs
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["inputs"]["secret"]["secretName"] == "r1-inputs"
    assert "patch_secret" not in clients.calls
    assert clients.deleted == []

    done = sensitive_run()
    done["status"] = {"phase": "Running", "jobName": job["metadata"]["name"]}
    finished = {**job, "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}}
    clients.existing[job["metadata"]["name"]] = finished
    reconcile(clients, done)
    assert clients.statuses[-1]["phase"] == "Succeeded"
    assert clients.deleted == [("r1-inputs", "secret-uid")]


def test_a_foreign_secret_is_never_mounted_nor_deleted_and_the_run_fails_saying_why() -> None:
    for foreign in (inputs_secret(type_="Opaque"), inputs_secret(owner_uid=OTHER_UID)):
        clients = BoundaryClients(catalog(hasSensitiveVariables=True))
        clients.stored["r1-inputs"] = foreign
        reconcile(clients, sensitive_run())
        assert clients.jobs == []
        assert clients.statuses[-1]["phase"] == "Failed"
        assert clients.statuses[-1]["reason"] == "InputsSecretNotOwned"
        assert clients.deleted == []


def test_a_secret_not_made_yet_is_waited_for_then_the_run_fails() -> None:
    clients = BoundaryClients(catalog(hasSensitiveVariables=True))
    reconcile(clients, sensitive_run(age=1))
    assert (clients.statuses[-1]["phase"], clients.statuses[-1]["reason"]) == ("Pending", "WaitingForInputs")
    assert clients.jobs == []
    reconcile(clients, sensitive_run(age=OperatorSettings().pending_timeout + 1))
    failed = clients.statuses[-1]
    assert (failed["phase"], failed["reason"]) == ("Failed", "InputsSecretNotFound")
    assert clients.jobs == []


# --- singleton jobs ---------------------------------------------------------------------------------------

LEASE = singleton_lease_name("audit.Audit")


def held_by(clients: BoundaryClients, name: str, uid: str, phase: str | None) -> None:
    assert clients.take_lease("ops", singleton_lease(LEASE, name, uid, NOW, "audit.Audit"), None)
    clients.runs[name] = {"metadata": {"name": name, "uid": uid}, "status": {"phase": phase} if phase else {}}


def test_a_singleton_run_waits_while_another_run_of_its_job_is_active() -> None:
    clients = BoundaryClients(catalog(isSingleton=True))
    held_by(clients, "earlier", OTHER_UID, None)  # started, no status yet: active
    reconcile(clients, run_obj_of("audit.Audit"))
    assert clients.jobs == []
    assert (clients.statuses[-1]["phase"], clients.statuses[-1]["reason"]) == ("Queued", "SingletonActive")
    assert "run earlier is active" in clients.statuses[-1]["message"]


def test_a_singleton_run_takes_the_lease_once_its_holder_ended_or_is_gone() -> None:
    for phase in ("Succeeded", "Failed", "Cancelled", "gone"):
        clients = BoundaryClients(catalog(isSingleton=True))
        held_by(clients, "earlier", OTHER_UID, None if phase == "gone" else phase)
        if phase == "gone":
            del clients.runs["earlier"]
        reconcile(clients, run_obj_of("audit.Audit"))
        assert len(clients.jobs) == 1, phase
        holder = clients.leases[LEASE]
        assert holder["spec"]["holderIdentity"] == "r1"
        assert holder["metadata"]["annotations"]["jobplane.io/holder-uid"] == UID


def test_a_run_made_again_under_its_holder_s_name_does_not_inherit_the_lease() -> None:
    clients = BoundaryClients(catalog(isSingleton=True))
    held_by(clients, "r1", OTHER_UID, None)
    clients.runs["r1"]["metadata"]["uid"] = UID  # the old r1 was deleted; this r1 is another run
    reconcile(clients, run_obj_of("audit.Audit"))
    assert len(clients.jobs) == 1  # the old holder is gone, so the new r1 took it over
    assert clients.leases[LEASE]["metadata"]["annotations"]["jobplane.io/holder-uid"] == UID


# --- forcing a singleton: spec.ignoreSingletonLock -------------------------------------------------------

STUCK = LeaseHolder("stuck", OTHER_UID)
FORCED = LeaseHolder("forced", "0b9a8c7d-0000-4000-8000-000000000002")


def lease_of(holder: LeaseHolder, *taken_from: LeaseHolder) -> dict[str, Any]:
    return singleton_lease(LEASE, holder.name, holder.uid, NOW, "audit.Audit", taken_from)


def test_a_run_that_is_not_forced_waits_for_an_active_holder_and_takes_a_free_lease() -> None:
    assert singleton_turn(None, run_uid=UID, forced=False, is_active=lambda h: True).take
    held = lease_of(STUCK)
    waiting = singleton_turn(held, run_uid=UID, forced=False, is_active=lambda h: True)
    assert (waiting.take, waiting.waits_for, waiting.taken_from) == (False, STUCK, ())
    ended = singleton_turn(held, run_uid=UID, forced=False, is_active=lambda h: False)
    assert (ended.take, ended.taken_from) == (True, ())  # an ended holder holds nothing: nothing to force


def test_a_forced_run_takes_the_lease_from_an_active_holder_and_keeps_it_named() -> None:
    turn = singleton_turn(lease_of(STUCK), run_uid=UID, forced=True, is_active=lambda h: True)
    assert (turn.take, turn.waits_for, turn.taken_from) == (True, None, (STUCK,))
    taken = lease_of(LeaseHolder("r1", UID), *turn.taken_from)
    assert singleton_holders(taken) == [LeaseHolder("r1", UID), STUCK]
    # Its next pass holds it, and still says from whom it took it while that run is active.
    again = singleton_turn(taken, run_uid=UID, forced=True, is_active=lambda h: True)
    assert (again.take, again.waits_for, again.taken_from) == (False, None, (STUCK,))


def test_a_run_that_is_not_forced_waits_for_every_run_a_forced_run_took_the_lease_from() -> None:
    lease = lease_of(FORCED, STUCK)
    both = singleton_turn(lease, run_uid=UID, forced=False, is_active=lambda h: True)
    assert both.waits_for == FORCED
    # The forced run ended, the run it started beside still runs: still no turn.
    stuck_only = singleton_turn(lease, run_uid=UID, forced=False, is_active=lambda h: h == STUCK)
    assert (stuck_only.take, stuck_only.waits_for) == (False, STUCK)
    assert singleton_turn(lease, run_uid=UID, forced=False, is_active=lambda h: False).take
    # Forced again: it takes the Lease over from both, and both stay named.
    assert singleton_turn(lease, run_uid=UID, forced=True, is_active=lambda h: True).taken_from == (
        FORCED,
        STUCK,
    )


def test_an_unreadable_taken_from_annotation_names_no_one() -> None:
    lease = lease_of(FORCED)
    lease["metadata"]["annotations"]["jobplane.io/taken-from"] = "not json"
    assert singleton_holders(lease) == [FORCED]


def forced_run() -> dict[str, Any]:
    obj = run_obj_of("audit.Audit")
    obj["spec"].update({"ignoreSingletonLock": True, "requestedBy": "oncall"})
    return obj


def test_a_forced_run_starts_beside_the_active_holder_says_so_and_a_third_waits() -> None:
    clients = BoundaryClients(catalog(isSingleton=True))
    held_by(clients, "stuck", OTHER_UID, "Running")
    reconcile(clients, forced_run())
    assert len(clients.jobs) == 1
    assert clients.runs["stuck"]["status"]["phase"] == "Running"
    status = clients.statuses[-1]
    assert (status["phase"], status["reason"], status["singletonLockTakenFrom"]) == (
        "Pending",
        "JobCreated",
        ["stuck"],
    )
    forced = next(c for c in status["conditions"] if c["type"] == "SingletonLockIgnored")
    assert (forced["status"], forced["reason"]) == ("True", "Forced")
    assert "Forced by oncall" in forced["message"]
    assert "run stuck" in forced["message"]
    assert singleton_holders(clients.leases[LEASE]) == [
        LeaseHolder("r1", UID),
        LeaseHolder("stuck", OTHER_UID),
    ]

    clients.runs["r1"] = {"metadata": {"name": "r1", "uid": UID}, "status": {"phase": "Running"}}
    third = run_obj_of("audit.Audit")
    third["metadata"].update({"name": "r3", "uid": "0b9a8c7d-0000-4000-8000-000000000003"})
    reconcile(clients, third)
    assert len(clients.jobs) == 1
    assert (clients.statuses[-1]["phase"], clients.statuses[-1]["reason"]) == ("Queued", "SingletonActive")
    assert "run r1 is active" in clients.statuses[-1]["message"]


def test_a_forced_run_of_a_free_lease_records_nothing_forced() -> None:
    clients = BoundaryClients(catalog(isSingleton=True))
    reconcile(clients, forced_run())
    assert len(clients.jobs) == 1
    assert all("singletonLockTakenFrom" not in status for status in clients.statuses)


def test_a_job_that_is_not_a_singleton_takes_no_lease() -> None:
    clients = BoundaryClients(catalog())
    reconcile(clients, run_obj_of("audit.Audit"))
    assert len(clients.jobs) == 1
    assert clients.leases == {}


class DefinitionStore:
    """JobDefinitions in memory, their status patched as a JSON merge patch of the top-level fields."""

    def __init__(self, *definitions: dict[str, Any]) -> None:
        self.items = {d["metadata"]["name"]: d for d in definitions}

    def list_job_definitions(self, namespace: str) -> list[dict[str, Any]]:
        return [dict(d) for d in self.items.values()]

    def patch_definition_status(
        self, namespace: str, name: str, status: dict[str, Any], rv: str | None
    ) -> bool:
        self.items[name]["status"] = {**self.items[name].get("status", {}), **status}
        return True


def test_an_override_of_a_name_clears_the_name_conflict_of_both_definitions() -> None:
    from jobplane_crds.v1alpha1.jobdefinition import JobSource
    from jobplane_operator.reconcile.jobdefinition import plan_sync
    from jobplane_operator.runs import refresh_definition

    now = datetime(2026, 11, 25, tzinfo=UTC)
    found = [
        {"classPath": f"{m}.Sync", "moduleName": m, "jobClassName": "Sync", "code": {"name": "Sync"}}
        for m in ("a", "b")
    ]
    plan = plan_sync([], found, failed_modules=(), source=JobSource(type="image"), now=now)
    store = DefinitionStore(
        *(
            {"metadata": {"name": n, "namespace": "ops", "generation": 1}, "spec": {}, "status": s}
            for n, s in plan.status.items()
        )
    )
    assert [[c["reason"] for c in d["status"]["conditions"]] for d in store.items.values()] == [
        ["Discovered", "NameConflict"],
        ["Discovered", "NameConflict"],
    ]
    first = next(iter(store.items.values()))
    first["spec"] = {"overrides": {"name": "Sync A"}}
    first["metadata"]["generation"] = 2
    refresh_definition(store, first, now)  # type: ignore[arg-type]
    assert [[c["type"] for c in d["status"]["conditions"]] for d in store.items.values()] == [
        ["Installed"],
        ["Installed"],
    ]
    assert first["status"]["effective"]["name"] == "Sync A"


def test_a_definition_the_model_refuses_is_written_nothing_and_does_not_stop_the_others() -> None:
    from jobplane_crds.v1alpha1.jobdefinition import JobSource
    from jobplane_operator.reconcile.jobdefinition import plan_sync
    from jobplane_operator.runs import refresh_definition

    now = datetime(2026, 11, 25, tzinfo=UTC)
    found = [
        {"classPath": f"{m}.Sync", "moduleName": m, "jobClassName": "Sync", "code": {"name": "Sync"}}
        for m in ("a", "b")
    ]
    plan = plan_sync([], found, failed_modules=(), source=JobSource(type="image"), now=now)
    # Stored under an older CRD: a field the model no longer has. Its name clashes too, were it read.
    refused = {
        "metadata": {"name": "old", "namespace": "ops", "generation": 1},
        "spec": {"overrides": {"name": "Sync A", "retiredField": True}},
        "status": {"installed": True, "code": {"name": "Sync"}, "conditions": []},
    }
    store = DefinitionStore(
        *(
            {"metadata": {"name": n, "namespace": "ops", "generation": 1}, "spec": {}, "status": s}
            for n, s in plan.status.items()
        ),
        refused,
    )
    assert refresh_definition(store, refused, now)  # type: ignore[arg-type]
    assert store.items["old"]["status"] == {"installed": True, "code": {"name": "Sync"}, "conditions": []}
    first = next(iter(store.items.values()))
    first["spec"] = {"overrides": {"name": "Sync A"}}
    first["metadata"]["generation"] = 2
    assert refresh_definition(store, first, now)  # type: ignore[arg-type]
    readable = [d for name, d in store.items.items() if name != "old"]
    assert [[c["type"] for c in d["status"]["conditions"]] for d in readable] == [
        ["Installed"],
        ["Installed"],
    ]
    assert store.items["old"]["status"] == {"installed": True, "code": {"name": "Sync"}, "conditions": []}
