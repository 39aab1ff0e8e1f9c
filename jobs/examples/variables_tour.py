"""VariablesTour: declares one variable of every type and reports what run() received for each."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import IO, Any

from inventory.models import DEVICE_ROLES, Device, Location

from jobplane import (
    BooleanVar,
    ChoiceVar,
    DryRunVar,
    FileVar,
    IntegerVar,
    IPAddressVar,
    IPAddressWithMaskVar,
    IPNetworkVar,
    Job,
    JSONVar,
    MultiChoiceVar,
    MultiObjectVar,
    ObjectVar,
    StringVar,
    TextVar,
    register_jobs,
)

name = "Getting started"

FEATURES = (("bgp", "BGP"), ("ospf", "OSPF"), ("lldp", "LLDP"), ("netflow", "NetFlow"))


class VariablesTour(Job):
    """Every variable type, with the options each one takes."""

    hostname = StringVar(
        min_length=3,
        max_length=30,
        regex=r"^[a-z][a-z0-9-]*$",
        description="StringVar: 3 to 30 characters, lower case letters, digits and dashes.",
    )
    notes = TextVar(required=False, description="TextVar: several lines of free text.")
    port_count = IntegerVar(
        min_value=0, max_value=48, default=0, description="IntegerVar: 0 to 48 (a bound of 0 is enforced)."
    )
    enabled = BooleanVar(description="BooleanVar: never required, false unless ticked.")
    dryrun = DryRunVar()
    role = ChoiceVar(choices=DEVICE_ROLES, default="switch", description="ChoiceVar: one value of a list.")
    features = MultiChoiceVar(choices=FEATURES, required=False, description="MultiChoiceVar: any of a list.")
    location = ObjectVar(
        model=Location,
        required=False,
        display_field="name",
        description='ObjectVar: a Location, by id or by filters such as {"name": "AMS1"}.',
    )
    routers = MultiObjectVar(
        model=Device,
        required=False,
        display_field="name",
        # "$location" narrows the form's choices to the chosen location; "role" is also enforced on
        # the data: a device that is not a router is rejected before the job runs.
        query_params={"location_id": "$location", "role": "router"},
        description="MultiObjectVar: routers, by id or by filters.",
    )
    config_file = FileVar(required=False, description="FileVar: an uploaded file (runjob --file).")
    gateway = IPAddressVar(required=False, description="IPAddressVar: an address without a mask.")
    management_ip = IPAddressWithMaskVar(
        required=False, description="IPAddressWithMaskVar: an address with its mask, e.g. 192.0.2.10/24."
    )
    network = IPNetworkVar(
        min_prefix_length=16,
        max_prefix_length=29,
        default="198.51.100.0/24",
        description="IPNetworkVar: a network from /16 to /29.",
    )
    settings = JSONVar(required=False, description="JSONVar: any JSON value.")

    class Meta:
        name = "Variables tour"
        description = "Shows every variable type: logs what each one received and returns a summary."
        has_sensitive_variables = False

    def run(
        self,
        *,
        hostname: str,
        notes: str | None,
        port_count: int,
        enabled: bool,
        dryrun: bool,
        role: str,
        features: list[str] | None,
        location: Location | None,
        routers: list[Device],
        config_file: IO[bytes] | None,
        gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
        management_ip: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None,
        network: ipaddress.IPv4Network | ipaddress.IPv6Network,
        settings: Any,
    ) -> dict[str, Any]:
        log = self.logger
        log.info("hostname (StringVar): %s", hostname)
        log.info("notes (TextVar): %d lines", len(notes.splitlines()) if notes else 0)
        log.info("port_count (IntegerVar): %d", port_count)
        log.info("enabled (BooleanVar): %s", enabled)
        log.info("dryrun (DryRunVar): %s; this job changes nothing either way", dryrun)
        log.info("role (ChoiceVar): %s", role)
        log.info("features (MultiChoiceVar): %s", ", ".join(features or []) or "none")
        if location is not None:
            log.info("location (ObjectVar): %s, id %d", location, location.id, extra={"object": location})
        for router in routers:
            log.info("routers (MultiObjectVar): %s", router, extra={"object": router})
        file_summary = None
        if config_file is not None:
            content = config_file.read()
            file_summary = {
                "name": getattr(config_file, "name", None),
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
            log.info("config_file (FileVar): %s, %d bytes", file_summary["name"], file_summary["size"])
        if gateway is not None:
            log.info("gateway (IPAddressVar): %s, IPv%d", gateway, gateway.version)
        if management_ip is not None:
            log.info(
                "management_ip (IPAddressWithMaskVar): address %s in network %s",
                management_ip.ip,
                management_ip.network,
            )
        log.info("network (IPNetworkVar): %s, %d addresses", network, network.num_addresses)
        log.info("settings (JSONVar): a %s", type(settings).__name__)
        log.success("Received all %d variables", len(self.variables()))
        return {
            "hostname": hostname,
            "notes_lines": len(notes.splitlines()) if notes else 0,
            "port_count": port_count,
            "enabled": enabled,
            "dryrun": dryrun,
            "role": role,
            "features": features or [],
            "location": location.name if location is not None else None,
            "routers": [router.name for router in routers],
            "config_file": file_summary,
            "gateway": str(gateway) if gateway is not None else None,
            "management_ip": str(management_ip) if management_ip is not None else None,
            "network": str(network),
            "network_size": network.num_addresses,
            "settings": settings,
        }


register_jobs(VariablesTour)
