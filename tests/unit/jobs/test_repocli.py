"""`jobplane repo`: the requests it makes, what it prints, and its exit codes (against a mocked API)."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobplane.repocli import add_repo_commands, describe_error, run_repo_command
from jobplane.settings import Settings

URL = "http://api.test"
TOKEN = "0123456789abcdef"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jobplane")
    add_repo_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def record(name: str = "netops", **fields: Any) -> dict[str, Any]:
    return {
        "id": "5d0c2a57-8f0e-4b8e-9a36-2c3f2b1e0a11",
        "name": name,
        "slug": name.replace("-", "_"),
        "remote_url": f"https://git.example.com/{name}.git",
        "branch": "main",
        "current_head": "",
        "status": {"synced": False, "degraded": False, "message": None, "import_errors": {}},
        **fields,
    }


class Recorder:
    """A MockTransport handler that records the requests and answers from a function."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)


def run(
    answer: Callable[[httpx.Request], httpx.Response], *argv: str, settings: Settings | None = None
) -> tuple[int, str, str, Recorder]:
    recorder = Recorder(answer)
    out, err = io.StringIO(), io.StringIO()
    code = run_repo_command(
        parse(*argv),
        settings or Settings(url=URL, token=TOKEN),
        out=out,
        err=err,
        transport=httpx.MockTransport(recorder),
    )
    return code, out.getvalue(), err.getvalue(), recorder


def test_add_posts_the_fields_given_with_the_token() -> None:
    code, out, err, recorder = run(
        lambda request: httpx.Response(201, json=record(branch="dev")),
        "repo", "add", "netops", "--url", "https://git.example.com/netops.git", "--ref", "dev",
        "--secret", "git-creds", "--interval", "1h",
    )  # fmt: skip
    assert code == 0, err
    (request,) = recorder.requests
    assert (request.method, request.url.path) == ("POST", "/api/extras/git-repositories/")
    assert request.headers["authorization"] == f"Token {TOKEN}"
    assert json.loads(request.content) == {
        "name": "netops",
        "remote_url": "https://git.example.com/netops.git",
        "branch": "dev",
        "secrets_group": "git-creds",
        "interval": "1h",
    }
    assert "Repository netops added" in out
    assert "netops.jobs.<module>.<Class>" in out


def test_a_refusal_shows_each_field_and_exits_2() -> None:
    errors = {"remote_url": ["The URL holds credentials: put them in a Secret."], "slug": ["Taken.", "Bad."]}
    code, out, err, _ = run(
        lambda request: httpx.Response(400, json=errors), "repo", "add", "x", "--url", "https://h/x"
    )
    assert code == 2
    assert out == ""
    assert (
        "HTTP 400:\n  remote_url: The URL holds credentials: put them in a Secret.\n  slug: Taken.\n" in err
    )
    assert "  slug: Bad." in err


@pytest.mark.parametrize(
    ("response", "text"),
    [
        (
            httpx.Response(403, json={"detail": "You do not have permission."}),
            "HTTP 403: You do not have permission.",
        ),
        (httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502: <html>bad gateway</html>"),
        (httpx.Response(400, json=["odd"]), 'HTTP 400: ["odd"]'),
        (httpx.Response(400, json={"data": {"x": ["nested"]}}), 'HTTP 400:\n  data: {"x": ["nested"]}'),
    ],
)
def test_describe_error(response: httpx.Response, text: str) -> None:
    assert describe_error(response) == text


def test_sync_prints_the_apis_message_and_a_server_error_exits_1() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.raw_path == b"/api/extras/git-repositories/net%2Fops/sync/":
            return httpx.Response(503, json={"detail": "Kubernetes is not reachable."})
        return httpx.Response(
            200, json={"message": "Repository netops sync job added to queue.", "job_result": None}
        )

    code, out, _, recorder = run(answer, "repo", "sync", "netops")
    assert (code, out) == (0, "Repository netops sync job added to queue.\n")
    assert recorder.requests[0].method == "POST"
    assert recorder.requests[0].url.path == "/api/extras/git-repositories/netops/sync/"
    code, _, err, _ = run(answer, "repo", "sync", "net/ops")
    assert code == 1
    assert "Kubernetes is not reachable." in err


def test_list_follows_the_pages_and_shows_the_state() -> None:
    first = [
        record("netops", current_head="a" * 40, status={"synced": True, "degraded": False, "message": "ok"}),
        record(
            "broken",
            current_head="b" * 40,
            status={
                "synced": True,
                "degraded": True,
                "message": "1 module failed to import",
                "import_errors": {"broken.jobs.bad": "jobs/bad.py, line 3: invalid syntax"},
            },
        ),
    ]
    second = [
        record("new"),
        record("failing", status={"synced": False, "message": "RefNotFound: no ref main"}),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("offset") == "2":
            return httpx.Response(200, json={"count": 4, "next": None, "previous": None, "results": second})
        assert request.url.params["limit"] == "0"
        next_url = f"{URL}/api/extras/git-repositories/?limit=2&offset=2"
        return httpx.Response(200, json={"count": 4, "next": next_url, "previous": None, "results": first})

    code, out, _, recorder = run(answer, "repo", "list")
    assert code == 0
    assert len(recorder.requests) == 2
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SLUG", "REF", "COMMIT", "STATE", "URL"]
    assert lines[1].split() == [
        "netops",
        "netops",
        "main",
        "a" * 12,
        "synced",
        "https://git.example.com/netops.git",
    ]
    assert lines[2].split()[4] == "degraded"
    assert lines[3].split()[3:5] == ["-", "pending"]
    assert lines[4].split()[4] == "failing"
    assert "broken: 1 module failed to import" in out
    assert "  broken.jobs.bad: jobs/bad.py, line 3: invalid syntax" in out
    assert "failing: RefNotFound: no ref main" in out
    assert "netops: ok" not in out

    code, out, _, _ = run(answer, "repo", "list", "--json")
    assert [item["name"] for item in json.loads(out)] == ["netops", "broken", "new", "failing"]


def test_an_empty_list() -> None:
    empty = {"count": 0, "next": None, "previous": None, "results": []}
    code, out, _, _ = run(lambda request: httpx.Response(200, json=empty), "repo", "list")
    assert (code, out) == (0, "No Git repositories.\n")


@pytest.mark.parametrize(
    "settings",
    [Settings(url=None, token=None), Settings(url=URL, token=None), Settings(url=None, token=TOKEN)],
)
def test_without_an_api_it_says_what_to_set_and_exits_3(settings: Settings) -> None:
    code, _, err, recorder = run(lambda request: httpx.Response(500), "repo", "list", settings=settings)
    assert code == 3
    assert "JOBPLANE_URL and JOBPLANE_TOKEN" in err
    assert recorder.requests == []


def test_an_unreachable_api_exits_3_without_the_token() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    code, _, err, _ = run(refuse, "repo", "sync", "netops")
    assert code == 3
    assert f"cannot reach the API at {URL}" in err
    assert TOKEN not in err
