"""``jobplane wait-for HOST:PORT``: wait until a TCP connection to a Service succeeds.

The chart's first post-install hook: the apiserver calls the admission webhook through its Service, and a
Service answers only once the node's proxy has the ready pods behind it — a moment after the Deployment is
ready, which is all ``helm --wait`` waits for. A JobQueue hook created in that moment failed with "failed
calling webhook ... network is unreachable"; this waits for the Service itself (the startup check
cert-manager's chart does for its webhook, with a plain connect).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

__all__ = ["parse_address", "wait_for_tcp"]

# Seconds one connection attempt may take (a dropped SYN hangs until then).
CONNECT_TIMEOUT = 2.0


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` as (host, port); ValueError with what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not HOST:PORT (a port from 1 to 65535)")
    return host, int(port)


def wait_for_tcp(
    host: str,
    port: int,
    timeout: float,
    *,
    interval: float = 1.0,
    connect: Callable[[tuple[str, int], float], socket.socket] = socket.create_connection,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """None once a connection to host:port succeeded (it is closed at once), else the last error after
    ``timeout`` seconds of tries ``interval`` apart."""
    deadline = clock() + timeout
    while True:
        try:
            connect((host, port), CONNECT_TIMEOUT).close()
            return None
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if clock() + interval > deadline:
            return error
        sleep(interval)
