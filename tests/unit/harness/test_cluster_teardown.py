"""The test cluster's teardown finds its leftovers by their command line naming the work dir; the process
doing the teardown and its parents (`timeout 60 python -m tests.cluster down <workdir>`) name it too."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from tests.cluster.cluster import _processes_under


def test_leftovers_are_found_but_not_the_teardown_nor_its_parents() -> None:
    marker = f"/var/tmp/jp-test-{uuid.uuid4().hex}"
    leftover = subprocess.Popen(["sh", "-c", "sleep 60", marker])
    try:
        code = "import json, sys; from tests.cluster.cluster import _processes_under; "
        code += "print(json.dumps(_processes_under(sys.argv[1])))"
        # The teardown runs under a parent shell whose command line names the work dir, like `timeout`.
        found = subprocess.run(
            ["sh", "-c", f'"{sys.executable}" -c "$1" "$0"', marker, code],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert json.loads(found.stdout) == [leftover.pid]
        assert _processes_under(marker) == [leftover.pid]
    finally:
        leftover.kill()
        leftover.wait()
