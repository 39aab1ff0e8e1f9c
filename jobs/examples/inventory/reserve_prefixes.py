"""ReservePrefixes: finds free child prefixes of a parent network and records them as reserved."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from sqlalchemy import select

from jobplane import DryRunVar, IntegerVar, IPNetworkVar, Job, StringVar, register_jobs

from .models import Prefix, ensure_tables

name = "Inventory"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def free_children(parent: Network, prefix_length: int, existing: Iterable[Network]) -> Iterator[Network]:
    """Child networks of ``parent`` of the given length that overlap no existing prefix inside it.

    Prefixes that contain the parent (or are the parent) are containers, not allocations: they never
    make a child unavailable.
    """
    # Two networks overlap only when one contains the other: a longer one that overlaps is inside.
    inside = [
        network for network in existing if network.prefixlen > parent.prefixlen and network.overlaps(parent)
    ]
    for child in parent.subnets(new_prefix=prefix_length):
        if not any(child.overlaps(network) for network in inside):
            yield child


class ReservePrefixes(Job):
    """Reserve the first free child prefixes of a parent network."""

    parent = IPNetworkVar(
        label="Parent network",
        min_prefix_length=8,
        max_prefix_length=30,
        description="The network to carve the children out of, /8 to /30.",
    )
    prefix_length = IntegerVar(label="Child prefix length", min_value=9, max_value=128)
    count = IntegerVar(label="How many", min_value=1, max_value=64, default=1)
    # Not "description": that name is reserved for the job's own description in Nautobot.
    purpose = StringVar(required=False, max_length=200, description="Stored as each prefix's description.")
    dryrun = DryRunVar()

    class Meta:
        name = "Reserve prefixes"
        description = """
            Finds the first free child prefixes of the given length inside the parent network (free:
            overlapping no prefix already recorded inside it) and records them with status "reserved".
            All or nothing: if not enough are free, nothing is reserved.
        """
        has_sensitive_variables = False

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ensure_tables(self.db)

    def run(
        self, *, parent: Network, prefix_length: int, count: int, purpose: str | None, dryrun: bool
    ) -> dict[str, Any]:
        summary: dict[str, Any] = {"dryrun": dryrun, "parent": str(parent), "reserved": []}
        if not parent.prefixlen < prefix_length <= parent.max_prefixlen:
            self.fail(
                "A child of %s needs a prefix length from /%d to /%d, not /%d",
                parent,
                parent.prefixlen + 1,
                parent.max_prefixlen,
                prefix_length,
            )
            return summary
        session = self.db
        existing = [ipaddress.ip_network(network) for network in session.scalars(select(Prefix.network))]
        children = list(islice(free_children(parent, prefix_length, existing), count))
        if len(children) < count:
            self.fail(
                "Only %d free /%d prefixes in %s, %d requested: nothing reserved",
                len(children),
                prefix_length,
                parent,
                count,
            )
            return summary
        summary["reserved"] = [str(child) for child in children]

        if dryrun:
            for child in children:
                self.logger.info("Dry run: would reserve %s", child)
            return summary

        prefixes = [
            Prefix(network=str(child), status="reserved", description=purpose or "") for child in children
        ]
        session.add_all(prefixes)
        session.commit()
        for prefix in prefixes:
            self.logger.success("Reserved %s", prefix, extra={"object": prefix})
        return summary


register_jobs(ReservePrefixes)
