"""`jobplane repo add|sync|list`: Git repositories of jobs, managed through the API like `runjob`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from jobplane.remote import RemoteError, describe_error

if TYPE_CHECKING:
    import httpx

    from jobplane.settings import Settings

__all__ = ["add_repo_commands", "describe_error", "run_repo_command"]

EXIT_OK = 0
EXIT_FAILURE = 1  # the API failed (5xx)
EXIT_BAD_INPUT = 2  # the API refused the request (4xx)
EXIT_UNAVAILABLE = 3  # no API configured, or not reachable
PATH = "/api/extras/git-repositories/"


def add_repo_commands(commands: Any) -> None:
    """The ``repo`` command and its actions, on the ``jobplane`` parser's subcommands."""
    repo = commands.add_parser(
        "repo", help="manage the Git repositories of jobs through the API (JOBPLANE_URL, JOBPLANE_TOKEN)"
    )
    actions = repo.add_subparsers(dest="repo_command", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add a repository; the operator syncs its jobs")
    add.add_argument("name", help="the repository's name (any text; the slug names its JobRepository)")
    add.add_argument("--url", required=True, help="the Git URL (no credentials in it: see --secret)")
    add.add_argument("--ref", help="branch, tag or commit to follow (default: main)")
    add.add_argument("--slug", help="Python package name of its jobs (default: from the name)")
    add.add_argument(
        "--secret",
        metavar="NAME",
        help="Secret with the credentials: username and password (a token goes in password), "
        "or identity and known_hosts for SSH; labelled jobplane.io/secret-type=repository-credentials, "
        "with a key url holding a prefix of the repository's URL",
    )
    add.add_argument("--interval", help="how often to look for new commits, e.g. 30s, 5m, 1h (default: 5m)")

    sync = actions.add_parser("sync", help="sync a repository now")
    sync.add_argument("name", help="the repository's name or id")

    listing = actions.add_parser("list", help="list the repositories and the state of their last sync")
    listing.add_argument("--json", action="store_true", help="print the API's records as JSON")


class _Refused(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(describe_error(response))
        self.status_code = response.status_code


class _Api:
    """The few calls the repo commands make, with errors as exceptions."""

    def __init__(self, url: str, token: str, transport: httpx.BaseTransport | None) -> None:
        import httpx

        self.url = url
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=30.0,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the API at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _Refused(response)
        return response.json()

    def pages(self, path: str) -> Iterator[dict[str, Any]]:
        page: dict[str, Any] = self.call("GET", path, params={"limit": 0})
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            page = self.call("GET", page["next"])


def _add(api: _Api, args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {"name": args.name, "remote_url": args.url}
    for field, value in (
        ("branch", args.ref),
        ("slug", args.slug),
        ("secrets_group", args.secret),
        ("interval", args.interval),
    ):
        if value is not None:
            body[field] = value
    created = api.call("POST", PATH, json=body)
    print(
        f"Repository {created['name']} added: {created['remote_url']} at {created['branch']}; its jobs "
        f"import as {created['slug']}.jobs.<module>.<Class>.",
        file=out,
    )
    print("The operator syncs it now; `jobplane repo list` shows how that went.", file=out)
    return EXIT_OK


def _sync(api: _Api, args: argparse.Namespace, out: TextIO) -> int:
    answer = api.call("POST", f"{PATH}{quote(args.name, safe='')}/sync/")
    print(answer["message"], file=out)
    return EXIT_OK


def _state(record: dict[str, Any]) -> str:
    status = record.get("status") or {}
    if status.get("degraded"):
        return "degraded"
    if status.get("synced"):
        return "synced"
    return "failing" if status.get("message") else "pending"


def _list(api: _Api, args: argparse.Namespace, out: TextIO) -> int:
    records = list(api.pages(PATH))
    if args.json:
        print(json.dumps(records, indent=2), file=out)
        return EXIT_OK
    if not records:
        print("No Git repositories.", file=out)
        return EXIT_OK
    rows = [("NAME", "SLUG", "REF", "COMMIT", "STATE", "URL")]
    for record in records:
        commit = str(record.get("current_head") or "-")[:12]
        rows.append(
            (record["name"], record["slug"], record["branch"], commit, _state(record), record["remote_url"])
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*padded, row[-1]]), file=out)
    for record in records:
        status = record.get("status") or {}
        if status.get("message") and (status.get("degraded") or not status.get("synced")):
            print(f"\n{record['name']}: {status['message']}", file=out)
        for module, error in sorted((status.get("import_errors") or {}).items()):
            print(f"  {module}: {error}", file=out)
    return EXIT_OK


def run_repo_command(
    args: argparse.Namespace,
    settings: Settings,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run ``jobplane repo <action>``; 0 done, 2 refused by the API, 1 the API failed, 3 no API."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if not settings.url or settings.token is None:
        print(
            "jobplane: repo commands go through the API: set JOBPLANE_URL and JOBPLANE_TOKEN "
            "(or apply JobRepository resources with kubectl)",
            file=err,
        )
        return EXIT_UNAVAILABLE
    actions = {"add": _add, "sync": _sync, "list": _list}
    api = _Api(settings.url, settings.token.get_secret_value(), transport)
    try:
        return actions[args.repo_command](api, args, out)
    except RemoteError as exc:
        print(f"jobplane: {exc}", file=err)
        return EXIT_UNAVAILABLE
    except _Refused as exc:
        print(f"jobplane: the API refused: {exc}", file=err)
        return EXIT_BAD_INPUT if exc.status_code < 500 else EXIT_FAILURE
    finally:
        api.close()
