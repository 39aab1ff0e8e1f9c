"""PopulateLocation: creates a location's devices, each with a Loopback0 interface; honours dry-run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from jobplane import ChoiceVar, DryRunVar, IntegerVar, Job, StringVar, register_jobs

from .models import DEVICE_ROLES, Device, Interface, Location, ensure_tables

name = "Inventory"

LOOPBACK = "Loopback0"


def device_names(name_prefix: str, count: int) -> list[str]:
    """The names of a new location's devices: ``<prefix>-01``, ``<prefix>-02``, ..."""
    return [f"{name_prefix}-{number:02d}" for number in range(1, count + 1)]


class PopulateLocation(Job):
    """Stand up a new location: create it (if needed) and its devices, each with a Loopback0."""

    location_name = StringVar(label="Location", min_length=2, max_length=100)
    device_count = IntegerVar(label="Number of devices", min_value=1, max_value=20, default=2)
    role = ChoiceVar(choices=DEVICE_ROLES, default="switch")
    name_prefix = StringVar(
        min_length=2,
        max_length=40,
        regex=r"^[a-z][a-z0-9-]*$",
        description="Devices are named <prefix>-01, <prefix>-02, ... (lower case, digits and dashes).",
    )
    dryrun = DryRunVar()

    class Meta:
        name = "Populate a new location"
        description = "Creates a location and its devices, with a Loopback0 interface on each device."
        has_sensitive_variables = False
        field_order = ("location_name", "role", "device_count", "name_prefix", "dryrun")

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ensure_tables(self.db)

    def run(
        self, *, location_name: str, device_count: int, role: str, name_prefix: str, dryrun: bool
    ) -> dict[str, Any]:
        session = self.db
        location = session.scalars(select(Location).where(Location.name == location_name)).one_or_none()
        names = device_names(name_prefix, device_count)
        taken = list(session.scalars(select(Device.name).where(Device.name.in_(names)).order_by(Device.name)))
        summary: dict[str, Any] = {
            "dryrun": dryrun,
            "location": location_name,
            "location_created": location is None,
            "devices": names,
        }
        if taken:
            self.fail("Devices %s already exist; choose another name prefix", ", ".join(taken))
            return {**summary, "location_created": False, "devices": []}
        if location is not None:
            self.logger.info("Location %s exists; adding devices to it", location, extra={"object": location})

        if dryrun:
            if location is None:
                self.logger.info("Dry run: would create location %s", location_name)
            for device_name in names:
                self.logger.info("Dry run: would create %s %s with %s", role, device_name, LOOPBACK)
            return summary

        if location is None:
            location = Location(name=location_name)
            session.add(location)
        devices = [Device(name=device_name, role=role, location=location) for device_name in names]
        for device in devices:
            Interface(name=LOOPBACK, device=device)
        session.add_all(devices)
        session.commit()
        if summary["location_created"]:
            self.logger.success("Created location %s", location, extra={"object": location})
        for device in devices:
            self.logger.success(
                "Created %s %s with %s", device.role, device, LOOPBACK, extra={"object": device}
            )
        return summary


register_jobs(PopulateLocation)
