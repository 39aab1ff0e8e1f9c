"""CheckIPAddressParents: read-only check that every IP address lies inside a recorded prefix."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from jobplane import Job, register_jobs

from .models import IPAddress, Prefix, ensure_tables

name = "Inventory"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parent_prefix(
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface, prefixes: Sequence[Network]
) -> Network | None:
    """The most specific prefix containing the address (its mask does not matter), or None."""
    containing = [net for net in prefixes if net.version == address.version and address.ip in net]
    return max(containing, key=lambda net: net.prefixlen, default=None)


class CheckIPAddressParents(Job):
    """Report every IP address that no prefix contains."""

    class Meta:
        name = "Check IP address parents"
        description = "Fails, naming each one, if an IP address lies inside no recorded prefix."
        has_sensitive_variables = False
        read_only = True

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ensure_tables(self.db)

    def run(self) -> dict[str, Any]:
        session = self.db
        prefixes = [ipaddress.ip_network(network) for network in session.scalars(select(Prefix.network))]
        addresses = list(session.scalars(select(IPAddress).order_by(IPAddress.address, IPAddress.id)))
        orphans = []
        for ip in addresses:
            parent = parent_prefix(ip.ip_interface, prefixes)
            if parent is None:
                orphans.append(ip.address)
                self.logger.failure("%s lies inside no prefix", ip, extra={"object": ip})
            else:
                self.logger.debug("%s lies inside %s", ip, parent, extra={"object": ip})
        if orphans:
            self.fail("%d of %d IP addresses have no parent prefix", len(orphans), len(addresses))
        else:
            self.logger.success("All %d IP addresses have a parent prefix", len(addresses))
        return {"checked": len(addresses), "orphans": orphans}


register_jobs(CheckIPAddressParents)
