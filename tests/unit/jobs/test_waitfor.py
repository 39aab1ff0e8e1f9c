"""`jobplane wait-for HOST:PORT`: a real listening socket, and a closed port on an injected clock."""

from __future__ import annotations

import socket

import pytest

from jobplane.cli import EXIT_BAD_INPUT, EXIT_OK, main
from jobplane.waitfor import parse_address, wait_for_tcp


def test_a_listening_port_answers_at_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert wait_for_tcp("127.0.0.1", port, timeout=5) is None
        assert main(["wait-for", f"127.0.0.1:{port}", "--timeout", "5"]) == EXIT_OK


def test_a_closed_port_is_retried_until_the_timeout_then_named() -> None:
    now = [0.0]
    tries: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], timeout: float) -> socket.socket:
        tries.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    error = wait_for_tcp("svc.ns.svc", 443, timeout=5, connect=refuse, clock=lambda: now[0], sleep=sleep)
    assert error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert len(tries) == 6  # at 0, 1, 2, 3, 4 and 5 s
    assert now[0] == 5.0


def test_it_stops_trying_once_the_port_answers() -> None:
    now = [0.0]
    answers = iter([OSError(101, "Network is unreachable"), OSError(101, "Network is unreachable"), None])

    def connect(address: tuple[str, int], timeout: float) -> socket.socket:
        outcome = next(answers)
        if outcome is not None:
            raise outcome
        return socket.socket()  # closed by wait_for_tcp

    def sleep(seconds: float) -> None:
        now[0] += seconds

    assert wait_for_tcp("svc", 443, timeout=60, connect=connect, clock=lambda: now[0], sleep=sleep) is None
    assert now[0] == 2.0


@pytest.mark.parametrize("address", ["svc", "svc:", ":443", "svc:0", "svc:70000", "svc:https"])
def test_a_bad_address_is_refused_with_what_it_should_be(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_address(address)
    assert main(["wait-for", address]) == EXIT_BAD_INPUT
    assert "is not HOST:PORT" in capsys.readouterr().err
