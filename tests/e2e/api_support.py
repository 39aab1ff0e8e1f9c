"""Helpers for the API's e2e tests: the stack as a fixture, an HTTP client per token, waiting for results."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tests.cluster.cluster import Cluster, wait_for
from tests.conftest import PostgresServer
from tests.stack import Stack

TERMINAL = ("SUCCESS", "FAILURE", "REVOKED")


@contextlib.contextmanager
def running_stack(
    cluster: Cluster, database_url: str, image: str, workdir: Path, **options: Any
) -> Iterator[Stack]:
    """A started Stack in a namespace of its own; ``options`` go to Stack (settings, extra namespaces)."""
    namespace = options.pop("namespace", f"api-{secrets.token_hex(3)}")
    stack = Stack(cluster, database_url, image, workdir, namespace=namespace, **options)
    try:
        stack.start()
        yield stack
    except BaseException:
        for name in ("api", "operator"):
            path = stack.log_path(name)
            if path.exists():
                print(f"--- {name} log (tail) ---\n{path.read_text(errors='replace')[-6000:]}")
        raise
    finally:
        stack.stop()


class Api:
    """A client of the stack's API with one token (or none)."""

    def __init__(self, stack: Stack, token: str | None) -> None:
        headers = {"Accept": "application/json; version=1.3; indent=4"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.stack = stack
        self.client = httpx.Client(base_url=stack.api_url, headers=headers, timeout=30)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params)

    def job(self, class_path: str) -> dict[str, Any]:
        response = self.client.get("/api/extras/jobs/", params={"limit": 0})
        response.raise_for_status()
        for job in response.json()["results"]:
            if job["class_path"] == class_path:
                return dict(job)
        raise AssertionError(f"no job {class_path}")

    def enable(self, class_path: str, **fields: Any) -> dict[str, Any]:
        job = self.job(class_path)
        response = self.client.patch(f"/api/extras/jobs/{job['id']}/", json={"enabled": True, **fields})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def run(self, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(f"/api/extras/jobs/{quote(key, safe='')}/run/", json=body or {})

    def wait_result(self, result_id: str, *statuses: str, timeout: float = 120) -> dict[str, Any]:
        wanted = statuses or TERMINAL

        def check() -> dict[str, Any] | None:
            response = self.client.get(f"/api/extras/job-results/{result_id}/")
            response.raise_for_status()
            result = dict(response.json())
            return result if result["status"]["value"] in wanted else None

        return wait_for(f"job result {result_id} in {wanted}", check, timeout=timeout, interval=0.5)

    def logs(self, result_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/api/extras/job-results/{result_id}/logs/")
        response.raise_for_status()
        return list(response.json())


def database_dump(stack: Stack, postgres: PostgresServer) -> str:
    """Every row of the stack's database as pg_dump writes them: where a secret must not be found."""
    database = stack.database_url.rsplit("/", 1)[1]
    dump = subprocess.run(
        [str(postgres.bindir / "pg_dump"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "jobplane",
         "--data-only", database],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dump.stdout


def make_token(stack: Stack, username: str, *extra: str, superuser: bool = False) -> str:
    """A user (created if new) and a fresh token of theirs; ``extra`` goes to `jobplane tokens create`."""
    stack.cli("users", "create", username, *(["--superuser"] if superuser else []), check=False)
    return stack.cli("tokens", "create", username, *extra).stdout.strip()
