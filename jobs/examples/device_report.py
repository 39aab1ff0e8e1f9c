"""ExportDevices: shows create_file(): writes the inventory's devices as a CSV file attached to the run."""

from __future__ import annotations

import csv
import io
from typing import Any

from inventory.models import DEVICE_ROLES, Device, ensure_tables
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from jobplane import Job, MultiChoiceVar, StringVar, register_jobs

name = "Inventory"

COLUMNS = ("name", "role", "location", "interfaces", "loopback_addresses")


def device_rows(devices: list[Device]) -> list[dict[str, Any]]:
    """One CSV row per device."""
    rows = []
    for device in devices:
        loopbacks = [interface for interface in device.interfaces if interface.is_loopback]
        rows.append(
            {
                "name": device.name,
                "role": device.role,
                "location": device.location.name,
                "interfaces": len(device.interfaces),
                "loopback_addresses": " ".join(ip.address for lo in loopbacks for ip in lo.ip_addresses),
            }
        )
    return rows


class ExportDevices(Job):
    """Export devices to a CSV file."""

    roles = MultiChoiceVar(
        choices=DEVICE_ROLES, required=False, description="Only these roles (default: all)."
    )
    filename = StringVar(default="devices.csv", max_length=100, regex=r"^[\w.-]+\.csv$")

    class Meta:
        name = "Export devices as CSV"
        description = "Writes one CSV row per device and attaches the file to the job result."
        has_sensitive_variables = False
        read_only = True

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ensure_tables(self.db)

    def run(self, *, roles: list[str] | None, filename: str) -> dict[str, Any]:
        statement = (
            select(Device)
            .options(selectinload(Device.location), selectinload(Device.interfaces))
            .order_by(Device.name)
        )
        if roles:
            statement = statement.where(Device.role.in_(roles))
        rows = device_rows(list(self.db.scalars(statement)))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        file_id = self.create_file(filename, buffer.getvalue())
        self.logger.success("Exported %d devices to %s", len(rows), filename)
        return {"file_id": file_id, "filename": filename, "devices": len(rows)}


register_jobs(ExportDevices)
