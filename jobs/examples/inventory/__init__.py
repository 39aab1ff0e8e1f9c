"""The example inventory: its models and the jobs that seed, change and check it."""

from . import (
    check_ip_parents,
    check_router_loopbacks,
    load_demo,
    populate_location,
    reserve_prefixes,
)

__all__ = ["check_ip_parents", "check_router_loopbacks", "load_demo", "populate_location", "reserve_prefixes"]
