"""LoadDemoInventory: seeds the example inventory, creating only what is missing; honours dry-run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from jobplane import BooleanVar, DryRunVar, Job, register_jobs

from .demo_data import DEMO_LOCATIONS, DEMO_PREFIXES, PROBLEM_LOCATIONS, DemoLocation, DemoPrefix
from .models import Device, Interface, IPAddress, Location, Prefix, ensure_tables

name = "Inventory"


def _count(locations: list[DemoLocation], prefixes: list[DemoPrefix]) -> dict[str, int]:
    devices = [device for location in locations for device in location.devices]
    return {
        "locations": len(locations),
        "devices": len(devices),
        "interfaces": sum(len(device.interfaces) for device in devices),
        "ip_addresses": sum(len(addresses) for device in devices for addresses in device.interfaces.values()),
        "prefixes": len(prefixes),
    }


class LoadDemoInventory(Job):
    """Create the demo locations, devices, interfaces, addresses and prefixes that are not there yet."""

    with_problems = BooleanVar(
        label="With problems",
        description="Also create the LAB1 site, whose mistakes the check jobs report.",
    )
    dryrun = DryRunVar()

    class Meta:
        name = "Load demo inventory"
        description = """
            Seeds a small inventory (AMS1, FRA1 and their prefixes) so the other inventory jobs have
            data to work on. Existing locations and prefixes are left alone, so it can run again.
        """
        has_sensitive_variables = False

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ensure_tables(self.db)

    def run(self, *, with_problems: bool, dryrun: bool) -> dict[str, Any]:
        session = self.db
        wanted = list(DEMO_LOCATIONS) + (list(PROBLEM_LOCATIONS) if with_problems else [])
        existing_locations = {location.name: location for location in session.scalars(select(Location))}
        existing_prefixes = set(session.scalars(select(Prefix.network)))
        locations = [location for location in wanted if location.name not in existing_locations]
        prefixes = [prefix for prefix in DEMO_PREFIXES if prefix.network not in existing_prefixes]
        for location in wanted:
            if location.name in existing_locations:
                self.logger.info("Location %s already exists, leaving it as it is", location.name)
        counts = _count(locations, prefixes)
        if not locations and not prefixes:
            self.logger.success("The demo inventory is already loaded")
            return {"dryrun": dryrun, "created": counts}
        if dryrun:
            for location in locations:
                self.logger.info(
                    "Dry run: would create location %s with devices %s",
                    location.name,
                    ", ".join(device.name for device in location.devices),
                )
            for prefix in prefixes:
                self.logger.info("Dry run: would create prefix %s (%s)", prefix.network, prefix.status)
            return {"dryrun": True, "created": counts}

        rows = {location.name: self._build_location(location) for location in locations}
        session.add_all(rows.values())
        by_name = {**existing_locations, **rows}
        new_prefixes = [
            Prefix(
                network=prefix.network,
                status=prefix.status,
                description=prefix.description,
                location=by_name.get(prefix.location) if prefix.location else None,
            )
            for prefix in prefixes
        ]
        session.add_all(new_prefixes)
        session.commit()
        for row in rows.values():
            self.logger.success(
                "Created location %s with %d devices", row, len(row.devices), extra={"object": row}
            )
        for new_prefix in new_prefixes:
            self.logger.success("Created prefix %s", new_prefix, extra={"object": new_prefix})
        return {"dryrun": False, "created": counts}

    @staticmethod
    def _build_location(spec: DemoLocation) -> Location:
        location = Location(name=spec.name, description=spec.description)
        for device_spec in spec.devices:
            device = Device(name=device_spec.name, role=device_spec.role, location=location)
            for interface_name, addresses in device_spec.interfaces.items():
                interface = Interface(name=interface_name, device=device)
                for address in addresses:
                    IPAddress(address=address, interface=interface)
        return location


register_jobs(LoadDemoInventory)
