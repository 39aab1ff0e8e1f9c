"""CheckRouterLoopbacks: read-only check that every router has a loopback interface with an address."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from jobplane import Job, ObjectVar, register_jobs

from .models import Device, Interface, Location, ensure_tables

name = "Inventory"


def loopback_problem(router: Device) -> str | None:
    """What is wrong with a router's loopbacks, or None when one of them has an address."""
    loopbacks = [interface for interface in router.interfaces if interface.is_loopback]
    if not loopbacks:
        return "has no loopback interface"
    if not any(interface.ip_addresses for interface in loopbacks):
        return "has no address on " + ", ".join(interface.name for interface in loopbacks)
    return None


class CheckRouterLoopbacks(Job):
    """Report every router without an addressed loopback interface."""

    location = ObjectVar(
        model=Location,
        required=False,
        # The form lists locations by name; the data may give the id or {"name": "AMS1"}.
        display_field="name",
        description="Check only the routers of this location (default: all of them).",
    )

    class Meta:
        name = "Check router loopbacks"
        description = "Fails, naming each one, if a router has no loopback interface with an IP address."
        has_sensitive_variables = False
        read_only = True

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ensure_tables(self.db)

    def run(self, *, location: Location | None) -> dict[str, Any]:
        statement = (
            select(Device)
            .where(Device.role == "router")
            .options(selectinload(Device.interfaces).selectinload(Interface.ip_addresses))
            .order_by(Device.name)
        )
        if location is not None:
            statement = statement.where(Device.location_id == location.id)
            self.logger.info("Checking the routers of %s", location, extra={"object": location})
        routers = list(self.db.scalars(statement))
        failing = []
        for router in routers:
            problem = loopback_problem(router)
            if problem:
                failing.append(router.name)
                self.logger.failure("%s %s", router, problem, extra={"object": router})
            else:
                self.logger.success("%s has an addressed loopback", router, extra={"object": router})
        if failing:
            self.fail("%d of %d routers have no addressed loopback", len(failing), len(routers))
        elif not routers:
            self.logger.warning("No routers to check")
        return {
            "location": location.name if location is not None else None,
            "checked": len(routers),
            "failing": failing,
        }


register_jobs(CheckRouterLoopbacks)
