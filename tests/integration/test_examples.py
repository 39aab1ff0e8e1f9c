"""The bundled example jobs (jobs/examples), each run end to end through `jobplane runjob --local`."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from jobplane_store.database import create_store_engine, make_sessionmaker
from jobplane_store.models import FileProxy, JobLogEntry, JobResult

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "jobs" / "examples"
RUN_TIMEOUT = 60

DEMO_DEVICES = ["ams1-rtr-01", "ams1-sw-01", "fra1-fw-01", "fra1-rtr-01"]
LAB_DEVICES = ["lab1-rtr-01", "lab1-rtr-02"]


def _load_inventory_models() -> ModuleType:
    # Loaded from its file under a name of its own: importing the "inventory" package would also
    # register every example job in this process.
    name = "examples_inventory_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / "inventory" / "models.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # SQLAlchemy resolves the string annotations through sys.modules.
        spec.loader.exec_module(module)
    return sys.modules[name]


inventory = _load_inventory_models()


@dataclass(frozen=True)
class Run:
    """One `jobplane runjob --local` process: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def status(self) -> str | None:
        found = re.search(r"^Status: (\w+)$", self.stdout, re.MULTILINE)
        return found.group(1) if found else None

    @property
    def errors(self) -> dict[str, Any]:
        """The validation errors printed for bad input (exit code 2)."""
        return dict(json.loads(self.stderr)["errors"])


class Workspace:
    """A working directory with its own SQLite file, in which example jobs run through the real CLI."""

    def __init__(self, path: Path, data_database: Path | None = None) -> None:
        self.path = path
        self.database = path / "x.sqlite3"
        # By default the job data lives where jobplane puts it next to a SQLite store: x-data.sqlite3.
        self.explicit_data_database = data_database is not None
        self.data_database = data_database or path / "x-data.sqlite3"
        self._engines: dict[Path, Engine] = {}

    def cli(self, *args: str) -> Run:
        """Run the jobplane command line in this workspace, on its databases and the examples."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("JOBPLANE_")}
        env["JOBPLANE_JOBS_ROOT"] = str(EXAMPLES)
        env["JOBPLANE_DATABASE_URL"] = f"sqlite:///{self.database}"
        if self.explicit_data_database:
            env["JOBPLANE_DATA_DATABASE_URL"] = f"sqlite:///{self.data_database}"
        process = subprocess.run(
            [sys.executable, "-m", "jobplane.cli", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        return Run(process.returncode, process.stdout, process.stderr)

    def run(self, class_path: str, data: dict[str, Any] | None = None, **files: Path) -> Run:
        """`jobplane runjob --local` of one example job."""
        uploads = [arg for var, path in files.items() for arg in ("--file", f"{var}={path}")]
        return self.cli("runjob", "--local", class_path, "--data", json.dumps(data or {}), *uploads)

    def ok(self, class_path: str, data: dict[str, Any] | None = None, **files: Path) -> Run:
        """Run a job that must succeed."""
        run = self.run(class_path, data, **files)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.status == "SUCCESS"
        return run

    def failed(self, class_path: str, data: dict[str, Any] | None = None) -> Run:
        """Run a job that must run and fail."""
        run = self.run(class_path, data)
        assert run.returncode == 1, run.stdout + run.stderr
        assert run.status == "FAILURE"
        return run

    def rejected(self, class_path: str, data: dict[str, Any]) -> dict[str, Any]:
        """Run a job whose data must be refused before anything runs; returns the errors."""
        run = self.run(class_path, data)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "Running " not in run.stdout
        return run.errors

    def restore(self, database: Path) -> None:
        """Start from a copy of another workspace's databases (results and job data, with WAL files)."""
        for name in (database.name, f"{database.stem}-data{database.suffix}"):
            target = name.replace(database.stem, self.database.stem, 1)
            # A WAL file left from the previous copy would be replayed over this one.
            for stale in self.path.glob(target + "*"):
                stale.unlink()
            for source in database.parent.glob(name + "*"):
                shutil.copyfile(source, self.path / source.name.replace(name, target, 1))

    def session(self, database: Path | None = None) -> Session:
        path = database or self.database
        if path not in self._engines:
            self._engines[path] = create_store_engine(f"sqlite:///{path}")
        return make_sessionmaker(self._engines[path])()

    def data_session(self) -> Session:
        return self.session(self.data_database)

    def last_result(self) -> JobResult:
        with self.session() as session:
            result = session.scalars(select(JobResult).order_by(JobResult.date_created.desc())).first()
            assert result is not None
            return result

    def result_count(self) -> int:
        with self.session() as session:
            return session.scalar(select(func.count()).select_from(JobResult)) or 0

    def logs(self, result: JobResult) -> list[JobLogEntry]:
        with self.session() as session:
            statement = select(JobLogEntry).where(JobLogEntry.job_result_id == result.id)
            return list(session.scalars(statement.order_by(JobLogEntry.id)))

    def files(self) -> list[FileProxy]:
        with self.session() as session:
            return list(session.scalars(select(FileProxy)))

    def names(self, model: Any, column: str = "name") -> list[str]:
        """One column of every row of an inventory model, sorted."""
        with self.data_session() as session:
            return sorted(session.scalars(select(getattr(model, column))))

    def count(self, model: Any) -> int:
        with self.data_session() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Databases prepared once, by name; each test works on a copy.

    "empty" has the results store's schema only (so a run skips the migrations); the others were
    seeded by LoadDemoInventory.
    """
    empty = Workspace(tmp_path_factory.mktemp("empty"))
    empty.cli("db", "upgrade")
    databases = {"empty": empty.database}
    for name, data in (("demo", {}), ("demo_with_problems", {"with_problems": True})):
        ws = Workspace(tmp_path_factory.mktemp(name))
        ws.restore(empty.database)
        ws.ok("inventory.load_demo.LoadDemoInventory", data)
        ws.close()
        databases[name] = ws.database
    return databases


@pytest.fixture
def workspace(tmp_path: Path, seeded: dict[str, Path]) -> Iterator[Workspace]:
    ws = Workspace(tmp_path)
    ws.restore(seeded["empty"])
    yield ws
    ws.close()


@pytest.fixture
def demo(workspace: Workspace, seeded: dict[str, Path]) -> Workspace:
    """A workspace holding the healthy demo inventory (AMS1, FRA1 and their prefixes)."""
    workspace.restore(seeded["demo"])
    return workspace


@pytest.fixture
def demo_with_problems(workspace: Workspace, seeded: dict[str, Path]) -> Workspace:
    """The demo inventory plus LAB1, whose mistakes the check jobs must find."""
    workspace.restore(seeded["demo_with_problems"])
    return workspace


def levels(logs: list[JobLogEntry], level: str) -> list[JobLogEntry]:
    return [entry for entry in logs if entry.log_level == level]


# --- the small single-behaviour examples ------------------------------------------------------


def test_noop_succeeds_and_stores_its_empty_inputs(workspace: Workspace) -> None:
    workspace.ok("noop.Noop")

    result = workspace.last_result()
    assert result.status == "SUCCESS"
    assert result.result is None
    assert result.task_kwargs == {}  # has_sensitive_variables = False: the inputs are kept.
    assert [entry.message for entry in workspace.logs(result)] == ["Running job", "Job completed"]


def test_variables_tour_receives_every_type(demo: Workspace, tmp_path: Path) -> None:
    with demo.data_session() as session:
        fra1_router = session.scalars(
            select(inventory.Device).where(inventory.Device.name == "fra1-rtr-01")
        ).one()
    upload = tmp_path / "startup.cfg"
    upload.write_bytes(b"hostname edge-1\n")
    data = {
        "hostname": "edge-1",
        "notes": "first line\nsecond line",
        "port_count": 0,
        "enabled": True,
        "dryrun": True,
        "role": "router",
        "features": ["bgp", "lldp"],
        "location": {"name": "AMS1"},
        "routers": [{"name": "ams1-rtr-01"}, fra1_router.id],
        "gateway": "2001:db8::1",
        "management_ip": "192.0.2.10/24",
        "network": "10.20.0.0/22",
        "settings": {"mtu": 9000, "tags": ["core"]},
    }

    demo.ok("variables_tour.VariablesTour", data, config_file=upload)

    result = demo.last_result()
    assert result.result == {
        "hostname": "edge-1",
        "notes_lines": 2,
        "port_count": 0,
        "enabled": True,
        "dryrun": True,
        "role": "router",
        "features": ["bgp", "lldp"],
        "location": "AMS1",
        "routers": ["ams1-rtr-01", "fra1-rtr-01"],
        "config_file": {
            "name": "startup.cfg",
            "size": 16,
            "sha256": hashlib.sha256(b"hostname edge-1\n").hexdigest(),
        },
        "gateway": "2001:db8::1",
        "management_ip": "192.0.2.10/24",
        "network": "10.20.0.0/22",
        "network_size": 1024,
        "settings": {"mtu": 9000, "tags": ["core"]},
    }
    logs = demo.logs(result)
    objects = [(entry.log_object, entry.absolute_url) for entry in logs if entry.log_object]
    assert objects == [
        ("AMS1", "/inventory/locations/1/"),
        ("ams1-rtr-01", "/inventory/devices/1/"),
        ("fra1-rtr-01", f"/inventory/devices/{fra1_router.id}/"),
    ]
    assert demo.files() == []  # The uploaded input is discarded once the run ends.


def test_variables_tour_fills_defaults(workspace: Workspace) -> None:
    workspace.ok("variables_tour.VariablesTour", {"hostname": "edge-1"})

    result = workspace.last_result().result
    assert result["port_count"] == 0
    assert result["enabled"] is False
    assert result["dryrun"] is False
    assert result["role"] == "switch"
    assert result["features"] == []
    assert result["routers"] == []
    assert result["location"] is None
    assert result["config_file"] is None
    assert result["gateway"] is None
    assert result["management_ip"] is None
    assert result["network"] == "198.51.100.0/24"  # Its default.


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        pytest.param(
            {
                "hostname": "Edge_1",
                "port_count": -1,  # min_value=0 is a bound (Nautobot ignores a bound of 0).
                "role": "core",
                "features": ["isis"],
                "gateway": "192.0.2.1/24",
                "management_ip": "192.0.2.1",
                "network": "10.0.0.0/8",
                "colour": "red",
            },
            {
                "hostname": ["Invalid value. Must match regex: ^[a-z][a-z0-9-]*$"],
                "port_count": ["Ensure this value is greater than or equal to 0."],
                "role": ["Select a valid choice. 'core' is not one of the available choices."],
                "features": ["Select a valid choice. 'isis' is not one of the available choices."],
                "gateway": ["Enter a valid IPv4 or IPv6 address, without a mask."],
                "management_ip": ["Enter a valid IPv4 or IPv6 address with a mask, e.g. 192.0.2.1/24."],
                "network": ["Prefix length must be at least /16 (it is /8)."],
                "colour": ["Job data contained an unknown property"],
            },
            id="one-bad-value-per-type",
        ),
        pytest.param(
            {"hostname": "a" * 31, "port_count": 49, "network": "10.0.0.0/30"},
            {
                "hostname": ["Ensure this value has at most 30 characters (it has 31)."],
                "port_count": ["Ensure this value is less than or equal to 48."],
                "network": ["Prefix length must be at most /29 (it is /30)."],
            },
            id="upper-bounds",
        ),
        pytest.param(
            {"network": "10.0.0.1/24", "settings": None},
            {
                "hostname": ["This field is required."],
                "network": [
                    "Enter a valid IP network in CIDR notation with no host bits set, e.g. 192.0.2.0/24."
                ],
            },
            id="missing-and-host-bits",
        ),
    ],
)
def test_variables_tour_rejects_bad_input(
    workspace: Workspace, data: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    assert workspace.rejected("variables_tour.VariablesTour", data) == errors
    assert workspace.result_count() == 0


def test_variables_tour_checks_objects_against_the_inventory(demo: Workspace) -> None:
    errors = demo.rejected(
        "variables_tour.VariablesTour",
        {"hostname": "edge-1", "location": {"name": "NOWHERE"}, "routers": [{"name": "ams1-sw-01"}]},
    )

    assert errors == {
        "location": ["No Location matches {'name': 'NOWHERE'}."],
        # query_params {"role": "router"} is enforced: a switch is no valid choice.
        "routers": ["No Device matches {'name': 'ams1-sw-01'}."],
    }
    assert demo.result_count() == 1  # Only the seeding run.


def test_check_hostnames_passes_good_names(workspace: Workspace) -> None:
    workspace.ok("hostname_check.CheckHostnames", {"hostnames": "ams1-rtr-01\nfra1-sw-12\n"})

    assert workspace.last_result().result == {"checked": 2, "bad": []}


def test_check_hostnames_fails_without_raising(workspace: Workspace) -> None:
    workspace.failed("hostname_check.CheckHostnames", {"hostnames": "ams1-rtr-01\nCore_Switch\n\nlon-rtr-1"})

    result = workspace.last_result()
    assert result.status == "FAILURE"
    # fail() keeps the return value and leaves no traceback, unlike an exception.
    assert result.result == {"checked": 3, "bad": ["Core_Switch", "lon-rtr-1"]}
    assert result.traceback is None
    failures = [entry.message for entry in levels(workspace.logs(result), "failure")]
    assert failures == [
        "Core_Switch does not follow the convention",
        "lon-rtr-1 does not follow the convention",
        "2 of 3 host names break the convention",
    ]
    assert result.failure_log_count == 3


def test_export_devices_attaches_a_csv_file(demo_with_problems: Workspace) -> None:
    demo_with_problems.ok("device_report.ExportDevices", {"roles": ["router"], "filename": "routers.csv"})

    result = demo_with_problems.last_result()
    [proxy] = demo_with_problems.files()
    assert proxy.name == "routers.csv"
    assert proxy.job_result_id == result.id
    assert str(proxy.id) == result.result["file_id"]
    rows = list(csv.DictReader(io.StringIO(proxy.content.decode("utf-8"))))
    assert [row["name"] for row in rows] == ["ams1-rtr-01", "fra1-rtr-01", *LAB_DEVICES]
    assert rows[0] == {
        "name": "ams1-rtr-01",
        "role": "router",
        "location": "AMS1",
        "interfaces": "2",
        "loopback_addresses": "10.255.0.1/32",
    }
    assert result.result["devices"] == 4


def test_export_devices_refuses_a_file_name_that_is_not_csv(workspace: Workspace) -> None:
    errors = workspace.rejected("device_report.ExportDevices", {"filename": "../devices.txt"})

    assert list(errors) == ["filename"]


def test_role_standards_reads_the_yaml_and_json_files_next_to_it(workspace: Workspace) -> None:
    workspace.ok("role_standards.RoleStandards", {"role": "router"})

    assert workspace.last_result().result == {
        "role": "router",
        "settings": {
            "ntp_servers": ["192.0.2.123", "198.51.100.123"],
            "syslog_server": "192.0.2.50",
            "mtu": 9216,
            "routing_protocol": "ospf",
        },
        "vlans": [99, 900],
    }


def _hook_trail(workspace: Workspace, result: JobResult) -> list[str]:
    return [entry.grouping for entry in workspace.logs(result) if entry.grouping != "initialization"]


def test_lifecycle_hooks_run_in_order_on_success(workspace: Workspace) -> None:
    workspace.ok("lifecycle_hooks.LifecycleHooks")

    result = workspace.last_result()
    assert _hook_trail(workspace, result) == ["before_start", "run", "on_success", "after_return"]
    assert workspace.logs(result)[-2].message == "Finished with status SUCCESS"


def test_lifecycle_hooks_call_on_failure_when_run_raises(workspace: Workspace) -> None:
    workspace.failed("lifecycle_hooks.LifecycleHooks", {"raise_error": True})

    result = workspace.last_result()
    assert _hook_trail(workspace, result) == ["before_start", "run", "run", "on_failure", "after_return"]
    on_failure = [entry for entry in workspace.logs(result) if entry.grouping == "on_failure"]
    assert on_failure[0].message == "The run failed: RuntimeError('raise_error was set') (traceback kept)"
    assert result.result == {"exc_type": "RuntimeError", "exc_message": "raise_error was set"}


def test_soft_time_limit_interrupts_and_the_job_cleans_up(workspace: Workspace) -> None:
    workspace.failed("soft_time_limit.SlowCleanup")

    result = workspace.last_result()
    assert result.result["exc_type"] == "SoftTimeLimitExceeded"
    assert result.duration is not None
    assert result.duration < 5  # Stopped at the 1 s soft limit, long before the 10 s hard one.
    messages = [entry.message for entry in workspace.logs(result)]
    scratch = Path(messages[1].removeprefix("Working in "))
    assert scratch.name.startswith("jobplane-slow-cleanup-")
    assert not scratch.exists()
    assert any(
        re.fullmatch(r"Soft time limit reached after \d of 10 steps: cleaning up", m) for m in messages
    )
    assert f"Removed {scratch}" in messages


def test_soft_time_limit_is_not_reached_by_a_short_run(workspace: Workspace) -> None:
    workspace.ok("soft_time_limit.SlowCleanup", {"steps": 2})

    assert workspace.last_result().result == {"steps": 2}


# --- the inventory ------------------------------------------------------------------------


def test_load_demo_inventory_dry_run_creates_nothing(workspace: Workspace) -> None:
    workspace.ok("inventory.load_demo.LoadDemoInventory", {"dryrun": True})

    assert workspace.last_result().result["dryrun"] is True
    for model in (
        inventory.Location,
        inventory.Device,
        inventory.Interface,
        inventory.Prefix,
        inventory.IPAddress,
    ):
        assert workspace.count(model) == 0


def test_load_demo_inventory_creates_the_demo_once(workspace: Workspace) -> None:
    workspace.ok("inventory.load_demo.LoadDemoInventory")
    workspace.ok("inventory.load_demo.LoadDemoInventory")

    assert workspace.names(inventory.Location) == ["AMS1", "FRA1"]
    assert workspace.names(inventory.Device) == DEMO_DEVICES
    assert workspace.count(inventory.Interface) == 6
    assert workspace.count(inventory.IPAddress) == 6
    assert workspace.names(inventory.Prefix, "network") == [
        "10.0.0.0/8",
        "10.1.0.0/24",
        "10.2.0.0/24",
        "10.255.0.0/24",
    ]
    second = workspace.last_result()
    assert second.result["created"] == dict.fromkeys(
        ("locations", "devices", "interfaces", "ip_addresses", "prefixes"), 0
    )


def test_load_demo_inventory_adds_the_problem_site_later(demo: Workspace) -> None:
    demo.ok("inventory.load_demo.LoadDemoInventory", {"with_problems": True})

    assert demo.names(inventory.Location) == ["AMS1", "FRA1", "LAB1"]
    assert demo.names(inventory.Device) == sorted(DEMO_DEVICES + LAB_DEVICES)


def test_load_demo_inventory_in_a_separate_data_database(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path, data_database=tmp_path / "data.sqlite3")
    try:
        workspace.ok("inventory.load_demo.LoadDemoInventory")

        assert workspace.names(inventory.Location) == ["AMS1", "FRA1"]
        assert workspace.last_result().status == "SUCCESS"
        with workspace.session() as store:
            tables = store.connection().exec_driver_sql("SELECT name FROM sqlite_master").scalars().all()
        assert not [table for table in tables if table.startswith("inventory_")]
    finally:
        workspace.close()


POPULATE = {"location_name": "LON1", "device_count": 3, "role": "router", "name_prefix": "lon1-rtr"}


def test_populate_location_dry_run_creates_nothing(demo: Workspace) -> None:
    run = demo.ok("inventory.populate_location.PopulateLocation", {**POPULATE, "dryrun": True})

    assert "Dry run: would create router lon1-rtr-03 with Loopback0" in run.stdout
    assert demo.names(inventory.Location) == ["AMS1", "FRA1"]
    assert demo.names(inventory.Device) == DEMO_DEVICES


def test_populate_location_creates_devices_with_loopbacks(demo: Workspace) -> None:
    demo.ok("inventory.populate_location.PopulateLocation", POPULATE)

    assert demo.names(inventory.Location) == ["AMS1", "FRA1", "LON1"]
    with demo.data_session() as session:
        location = session.scalars(select(inventory.Location).where(inventory.Location.name == "LON1")).one()
        devices = [(d.name, d.role, [i.name for i in d.interfaces]) for d in location.devices]
    assert devices == [(f"lon1-rtr-0{n}", "router", ["Loopback0"]) for n in (1, 2, 3)]
    result = demo.last_result()
    # Logging must not wait on the job's own data transaction (see test_cli_runjob for the rule).
    assert result.duration is not None
    assert result.duration < 5
    successes = levels(demo.logs(result), "success")
    assert [entry.log_object for entry in successes] == ["LON1", "lon1-rtr-01", "lon1-rtr-02", "lon1-rtr-03"]
    assert result.result["location_created"] is True


def test_populate_location_adds_to_an_existing_location(demo: Workspace) -> None:
    demo.ok("inventory.populate_location.PopulateLocation", {**POPULATE, "location_name": "AMS1"})

    assert demo.names(inventory.Location) == ["AMS1", "FRA1"]
    assert demo.last_result().result["location_created"] is False
    assert demo.count(inventory.Device) == len(DEMO_DEVICES) + 3


def test_populate_location_refuses_names_that_exist(demo: Workspace) -> None:
    demo.ok("inventory.populate_location.PopulateLocation", POPULATE)
    demo.failed("inventory.populate_location.PopulateLocation", {**POPULATE, "device_count": 4})

    assert demo.count(inventory.Device) == len(DEMO_DEVICES) + 3
    assert demo.last_result().result["devices"] == []


def test_populate_location_rejects_bad_input(workspace: Workspace) -> None:
    errors = workspace.rejected(
        "inventory.populate_location.PopulateLocation",
        {"location_name": "LON1", "device_count": 21, "role": "core", "name_prefix": "Lon 1"},
    )

    assert sorted(errors) == ["device_count", "name_prefix", "role"]


RESERVE = "inventory.reserve_prefixes.ReservePrefixes"


def test_reserve_prefixes_takes_the_first_free_children(demo: Workspace) -> None:
    demo.ok(RESERVE, {"parent": "10.1.0.0/16", "prefix_length": 24, "count": 2, "purpose": "new racks"})
    demo.ok(RESERVE, {"parent": "10.1.0.0/16", "prefix_length": 23})

    with demo.data_session() as session:
        reserved = session.execute(
            select(inventory.Prefix.network, inventory.Prefix.description)
            .where(inventory.Prefix.status == "reserved")
            .order_by(inventory.Prefix.id)
        ).all()
    # 10.1.0.0/24 holds AMS1's LAN; 10.0.0.0/8 contains the parent and takes nothing away.
    assert [tuple(row) for row in reserved] == [
        ("10.1.1.0/24", "new racks"),
        ("10.1.2.0/24", "new racks"),
        ("10.1.4.0/23", ""),
    ]
    assert demo.last_result().result == {
        "dryrun": False,
        "parent": "10.1.0.0/16",
        "reserved": ["10.1.4.0/23"],
    }


def test_reserve_prefixes_dry_run_creates_nothing(demo: Workspace) -> None:
    demo.ok(RESERVE, {"parent": "10.1.0.0/16", "prefix_length": 24, "count": 3, "dryrun": True})

    assert demo.last_result().result["reserved"] == ["10.1.1.0/24", "10.1.2.0/24", "10.1.3.0/24"]
    assert demo.count(inventory.Prefix) == 4


def test_reserve_prefixes_reserves_nothing_when_too_few_are_free(demo: Workspace) -> None:
    demo.failed(RESERVE, {"parent": "10.1.0.0/23", "prefix_length": 24, "count": 2})

    assert demo.count(inventory.Prefix) == 4
    assert demo.last_result().result["reserved"] == []


def test_reserve_prefixes_fails_on_a_child_length_that_does_not_fit(demo: Workspace) -> None:
    run = demo.failed(RESERVE, {"parent": "10.1.0.0/16", "prefix_length": 16})

    assert "needs a prefix length from /17 to /32, not /16" in run.stdout
    assert demo.count(inventory.Prefix) == 4


def test_reserve_prefixes_rejects_bad_input(workspace: Workspace) -> None:
    errors = workspace.rejected(RESERVE, {"parent": "10.0.0.0/7", "count": 0})

    assert errors == {
        "parent": ["Prefix length must be at least /8 (it is /7)."],
        "prefix_length": ["This field is required."],
        "count": ["Ensure this value is greater than or equal to 1."],
    }


CHECK_PARENTS = "inventory.check_ip_parents.CheckIPAddressParents"
CHECK_LOOPBACKS = "inventory.check_router_loopbacks.CheckRouterLoopbacks"


def test_check_ip_parents_passes_on_the_demo(demo: Workspace) -> None:
    demo.ok(CHECK_PARENTS)

    assert demo.last_result().result == {"checked": 6, "orphans": []}


def test_check_ip_parents_passes_on_an_empty_inventory(workspace: Workspace) -> None:
    workspace.ok(CHECK_PARENTS)

    assert workspace.last_result().result == {"checked": 0, "orphans": []}


def test_check_ip_parents_names_each_orphan(demo_with_problems: Workspace) -> None:
    demo_with_problems.failed(CHECK_PARENTS)

    result = demo_with_problems.last_result()
    assert result.result == {"checked": 7, "orphans": ["192.0.2.10/24"]}
    with demo_with_problems.data_session() as session:
        orphan = session.scalars(
            select(inventory.IPAddress).where(inventory.IPAddress.address == "192.0.2.10/24")
        ).one()
    failures = levels(demo_with_problems.logs(result), "failure")
    assert [(entry.log_object, entry.absolute_url) for entry in failures] == [
        ("192.0.2.10/24", f"/inventory/ip-addresses/{orphan.id}/"),
        (None, None),  # fail()'s summary line.
    ]


def test_check_router_loopbacks_passes_on_the_demo(demo: Workspace) -> None:
    demo.ok(CHECK_LOOPBACKS)

    assert demo.last_result().result == {"location": None, "checked": 2, "failing": []}


def test_check_router_loopbacks_names_each_bad_router(demo_with_problems: Workspace) -> None:
    run = demo_with_problems.failed(CHECK_LOOPBACKS)

    result = demo_with_problems.last_result()
    assert result.result == {"location": None, "checked": 4, "failing": LAB_DEVICES}
    failures = levels(demo_with_problems.logs(result), "failure")
    assert [(entry.log_object, entry.message) for entry in failures] == [
        ("lab1-rtr-01", "lab1-rtr-01 has no address on Loopback0"),
        ("lab1-rtr-02", "lab1-rtr-02 has no loopback interface"),
        (None, "2 of 4 routers have no addressed loopback"),
    ]
    assert "FAILURE" in run.stdout


def test_check_router_loopbacks_scoped_to_a_location(demo_with_problems: Workspace) -> None:
    demo_with_problems.ok(CHECK_LOOPBACKS, {"location": {"name": "AMS1"}})
    assert demo_with_problems.last_result().result == {"location": "AMS1", "checked": 1, "failing": []}

    with demo_with_problems.data_session() as session:
        lab1 = session.scalars(select(inventory.Location).where(inventory.Location.name == "LAB1")).one()
    demo_with_problems.failed(CHECK_LOOPBACKS, {"location": lab1.id})
    assert demo_with_problems.last_result().result["failing"] == LAB_DEVICES


def test_check_router_loopbacks_finds_new_routers_without_addresses(demo: Workspace) -> None:
    demo.ok("inventory.populate_location.PopulateLocation", {**POPULATE, "device_count": 1})

    demo.failed(CHECK_LOOPBACKS, {"location": {"name": "LON1"}})
    assert demo.last_result().result == {"location": "LON1", "checked": 1, "failing": ["lon1-rtr-01"]}


def test_check_router_loopbacks_rejects_an_unknown_location(demo: Workspace) -> None:
    errors = demo.rejected(CHECK_LOOPBACKS, {"location": {"name": "NOWHERE"}})

    assert errors == {"location": ["No Location matches {'name': 'NOWHERE'}."]}


def test_device_login_keeps_sensitive_inputs_out_of_the_store(workspace: Workspace) -> None:
    secret = "hunter2-pass"
    run = workspace.ok("device_login.DeviceLogin", {"username": "netops", "password": secret})

    assert secret not in run.stdout + run.stderr
    result = workspace.last_result()
    assert result.task_kwargs is None
    assert result.result == {"user": "netops", "password_length": len(secret)}
    assert all(secret not in entry.message for entry in workspace.logs(result))


def test_device_login_fails_a_weak_password(workspace: Workspace) -> None:
    workspace.failed("device_login.DeviceLogin", {"username": "netops", "password": "aaaaaaaa"})


def test_allocate_memory_holds_what_it_was_asked(workspace: Workspace) -> None:
    workspace.ok("memory_use.AllocateMemory", {"megabytes": 8})
    assert workspace.last_result().result == {"megabytes": 8}


def test_every_example_is_covered(tmp_path: Path) -> None:
    # A new example needs a test here; the job list is what `jobplane jobs` would show.
    run = Workspace(tmp_path).cli("jobs", "--json")
    assert run.returncode == 0, run.stderr
    listing = json.loads(run.stdout)
    assert listing["errors"] == {}
    tested = set(re.findall(r"\b([a-z_.]+\.[A-Z]\w+)\b", Path(__file__).read_text(encoding="utf-8")))
    known = {job["class_path"] for job in listing["jobs"]} - {"hello_world.HelloWorld"}
    assert known - tested == set()


# --- the REST API examples ---------------------------------------------------------------------


def test_example_variables_returns_its_inputs(workspace: Workspace) -> None:
    workspace.ok("api_examples.ExampleVariables", {"string_variable": "somevalue", "integer_variable": 123})
    assert workspace.last_result().result == {"string_variable": "somevalue", "integer_variable": 123}


def test_example_file_reports_each_line_of_the_upload(workspace: Workspace, tmp_path: Path) -> None:
    upload = tmp_path / "file.txt"
    upload.write_text("first\nsecond\n")
    workspace.ok("api_examples.ExampleFile", {"interval": "0"}, myfile=upload)
    result = workspace.last_result()
    assert result.result == {"lines": 2}
    assert [entry.message for entry in workspace.logs(result) if entry.grouping == "lines"] == [
        "line 1: first",
        "line 2: second",
    ]


def test_slow_counter_logs_one_line_per_step(workspace: Workspace) -> None:
    workspace.ok("api_examples.SlowCounter", {"steps": 3, "pause": 0})
    result = workspace.last_result()
    assert result.result == {"steps": 3}
    assert [entry.message for entry in workspace.logs(result) if entry.grouping == "count"] == [
        "step 1 of 3",
        "step 2 of 3",
        "step 3 of 3",
    ]


# --- the jobs Nautobot's documentation names ------------------------------------------------------------


def test_my_job_with_no_vars_runs_as_the_documentation_s_runjob_example(workspace: Workspace) -> None:
    workspace.ok("example.MyJobWithNoVars")
    result = workspace.last_result()
    assert result.result is None
    assert [entry.message for entry in workspace.logs(result) if entry.grouping == "run"] == [
        "Nothing to do."
    ]


def test_my_job_with_vars_logs_writes_and_returns_its_inputs(workspace: Workspace) -> None:
    workspace.ok("example.MyJobWithVars", {"string_variable": "somevalue", "integer_variable": 123})
    result = workspace.last_result()
    inputs = {"string_variable": "somevalue", "integer_variable": 123}
    assert result.result == inputs
    assert [entry.message for entry in workspace.logs(result) if entry.grouping == "run"] == [
        "string_variable=somevalue",
        "integer_variable=123",
        "wrote inputs.json",
    ]
    [proxy] = workspace.files()
    assert proxy.name == "inputs.json"
    assert json.loads(proxy.content) == inputs
    assert workspace.rejected("example.MyJobWithVars", {"string_variable": "x", "integer_variable": -1}) == {
        "integer_variable": ["Ensure this value is greater than or equal to 0."]
    }
