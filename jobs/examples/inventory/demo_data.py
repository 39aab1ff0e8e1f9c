"""The demo inventory LoadDemoInventory seeds: two healthy sites, and a lab site with known problems."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEMO_LOCATIONS", "DEMO_PREFIXES", "PROBLEM_LOCATIONS", "DemoDevice", "DemoLocation", "DemoPrefix"]


@dataclass(frozen=True)
class DemoDevice:
    name: str
    role: str
    # Interface name -> the addresses (with mask) assigned to it.
    interfaces: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoLocation:
    name: str
    description: str
    devices: tuple[DemoDevice, ...]


@dataclass(frozen=True)
class DemoPrefix:
    network: str
    status: str
    description: str
    location: str | None = None


DEMO_LOCATIONS = (
    DemoLocation(
        name="AMS1",
        description="Amsterdam, first site",
        devices=(
            DemoDevice(
                "ams1-rtr-01",
                "router",
                {"Loopback0": ("10.255.0.1/32",), "GigabitEthernet0/0": ("10.1.0.1/24",)},
            ),
            DemoDevice("ams1-sw-01", "switch", {"Vlan10": ("10.1.0.2/24",)}),
        ),
    ),
    DemoLocation(
        name="FRA1",
        description="Frankfurt, first site",
        devices=(
            DemoDevice(
                "fra1-rtr-01",
                "router",
                {"Loopback0": ("10.255.0.2/32",), "GigabitEthernet0/0": ("10.2.0.1/24",)},
            ),
            DemoDevice("fra1-fw-01", "firewall", {"ethernet1/1": ("10.2.0.254/24",)}),
        ),
    ),
)

DEMO_PREFIXES = (
    DemoPrefix("10.0.0.0/8", "active", "Private address space"),
    DemoPrefix("10.1.0.0/24", "active", "AMS1 LAN", location="AMS1"),
    DemoPrefix("10.2.0.0/24", "active", "FRA1 LAN", location="FRA1"),
    DemoPrefix("10.255.0.0/24", "active", "Router loopbacks"),
)

# Each one trips a check job: a router whose loopback has no address, a router with no loopback
# at all, and an address (192.0.2.10/24) that no prefix contains.
PROBLEM_LOCATIONS = (
    DemoLocation(
        name="LAB1",
        description="Lab with deliberate mistakes for the check jobs to find",
        devices=(
            DemoDevice("lab1-rtr-01", "router", {"Loopback0": ()}),
            DemoDevice("lab1-rtr-02", "router", {"GigabitEthernet0/0": ("192.0.2.10/24",)}),
        ),
    ),
)
