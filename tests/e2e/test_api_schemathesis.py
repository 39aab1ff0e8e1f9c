"""Schemathesis against the API's own OpenAPI document: no generated request may get a 5xx answer."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.api_support import Api
from tests.stack import Stack

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def stack(api_stack: Stack) -> Stack:
    return api_stack


def test_no_generated_request_gets_a_server_error(stack: Stack, tmp_path: Path) -> None:
    # Some state for the generator to hit: an enabled job and a finished result with logs and a file.
    admin = Api(stack, stack.admin_token)
    admin.enable("api_examples.ExampleVariables")
    data = {"string_variable": "s", "integer_variable": 1}
    done = admin.run("api_examples.ExampleVariables", {"data": data})
    assert done.status_code == 201, done.text
    result = admin.wait_result(done.json()["job_result"]["id"], timeout=180)
    log_id = admin.logs(result["id"])[0]["id"]
    admin.enable("api_examples.ExampleFile")
    with_file = admin.client.post(
        "/api/extras/jobs/api_examples.ExampleFile/run/",
        data={"interval": "0"},
        files={"myfile": ("in.txt", b"one line\n")},
    )
    assert with_file.status_code == 201, with_file.text
    (output,) = admin.wait_result(with_file.json()["job_result"]["id"], timeout=180)["files"]
    # Real ids for the path parameters, so the generated requests reach existing objects and not only 404s
    # (deleting them is part of the test: the API must answer that without a 5xx too).
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        f'"path.key" = "{admin.job("api_examples.ExampleVariables")["id"]}"\n'
        f'"path.result_id" = "{result["id"]}"\n'
        f'"path.log_id" = {log_id}\n'
        f'"path.file_id" = "{output["id"]}"\n'
    )

    schemathesis = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [
            str(schemathesis), "--config-file", str(config), "run", f"{stack.api_url}/api/openapi.json",
            "--checks", "not_a_server_error",
            "--header", f"Authorization: Token {stack.admin_token}",
            "--max-examples", "25", "--workers", "1", "--seed", "1",
            "--phases", "examples,coverage,fuzzing",
            "--continue-on-failure",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    report = run.stdout[-12000:]
    assert run.returncode == 0, report + "\n--- api log ---\n" + stack.log_path("api").read_text()[-4000:]
    print(report)
    # It really exercised the API: every operation of the document was tested with generated cases.
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    cases = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert selected is not None, report
    assert tested is not None, report
    assert cases is not None, report
    assert int(selected.group(1)) == int(selected.group(2)) == int(tested.group(1)) >= 15
    assert int(cases.group(1)) == int(cases.group(2)) > 500
