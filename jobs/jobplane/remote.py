"""`jobplane runjob` against the API: submit a run through the cluster and follow its logs until it ends."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import quote

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "RemoteError", "describe_error", "run_remote"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
TERMINAL = ("SUCCESS", "FAILURE", "REVOKED")
LOG_COUNT_LEVELS = ("debug", "info", "success", "warning", "failure", "error", "critical")


class RemoteError(RuntimeError):
    """The API could not be reached or answered something unexpected."""


def describe_error(response: Any) -> str:
    """An error answer in a form a person reads: the detail, or one line per field and message."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    if isinstance(body, dict) and set(body) == {"detail"}:
        return f"HTTP {response.status_code}: {body['detail']}"
    if isinstance(body, dict):
        lines = [f"HTTP {response.status_code}:"]
        for field, messages in body.items():
            texts = messages if isinstance(messages, list) else [messages]
            for message in texts:
                shown = message if isinstance(message, str) else json.dumps(message)
                lines.append(f"  {field}: {shown}")
        return "\n".join(lines)
    return f"HTTP {response.status_code}: {json.dumps(body)}"


def _form_value(value: Any) -> str | list[str]:
    """A data value as multipart form text: lists as repeated fields, objects as JSON."""
    if isinstance(value, list):
        return [item if isinstance(item, str) else json.dumps(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def format_remote_summary(result: dict[str, Any]) -> str:
    """The same summary as a local run: counts per level, status, result, traceback, duration."""
    counts = ", ".join(
        f"{level}: {count}" for level in LOG_COUNT_LEVELS if (count := result.get(f"{level}_log_count"))
    )
    status = result["status"]["value"] if isinstance(result.get("status"), dict) else result.get("status")
    lines = [f"Logs: {counts or 'none'}", f"Status: {status}"]
    if result.get("reason"):
        lines.append(
            f"Reason: {result['reason']}" + (f" ({result['message']})" if result.get("message") else "")
        )
    lines.append(f"Result: {json.dumps(result.get('result'), default=str)}")
    if result.get("traceback"):
        lines.append(f"Traceback:\n{str(result['traceback']).rstrip()}")
    duration = result.get("duration")
    lines.append(f"Duration: {duration:.3f} s" if duration is not None else "Duration: unknown")
    return "\n".join(lines)


def run_remote(
    *,
    url: str,
    token: str,
    class_path: str,
    data: Any,
    files: dict[str, tuple[str, bytes]],
    echo: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
    poll_interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Submit, follow, summarise; exit codes as `runjob --local` (0 SUCCESS, 1 failed, 2 refused)."""
    import httpx  # local: the optional extra `client`; jobplane.cli names it when missing

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30.0) as client:
        run_path = f"/api/extras/jobs/{quote(class_path, safe='')}/run/"
        try:
            if files:
                form = {name: _form_value(value) for name, value in (data or {}).items()}
                response = client.post(run_path, data=form, files=files)
            else:
                response = client.post(run_path, json={"data": data})
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the API at {url}: {exc}") from exc
        if response.status_code != 201:
            print(f"jobplane: the API refused the run: {describe_error(response)}", file=err)
            return EXIT_BAD_INPUT if response.status_code < 500 else EXIT_FAILURE
        result = response.json()["job_result"]
        result_path = f"/api/extras/job-results/{result['id']}/"
        print(f"Job result {result['id']} ({result['name']}): {result['status']['value']}", file=err)
        seen = 0
        while True:
            try:
                result = client.get(result_path).raise_for_status().json()
                if echo:
                    logs = client.get(f"{result_path}logs/").raise_for_status().json()
                    for entry in logs[seen:]:
                        print(f"[{entry['log_level']}] {entry['grouping']}: {entry['message']}", file=out)
                    seen = max(seen, len(logs))
            except httpx.HTTPError as exc:
                print(f"jobplane: reading the run failed, retrying: {exc}", file=err)
            if result["status"]["value"] in TERMINAL:
                break
            sleep(poll_interval)
    print(format_remote_summary(result), file=out)
    return EXIT_OK if result["status"]["value"] == "SUCCESS" else EXIT_FAILURE
