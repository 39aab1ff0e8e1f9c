"""Benchmark: from a push webhook to the JobDefinitions of a 200-class repository being updated.

Starts the stack (local cluster with its real node, Postgres, the operator and the API as processes), serves a
Git repository of 20 modules of 10 job classes over HTTP with basic auth on 127.0.0.1, adds it through the API
and waits for its 200 definitions. Then, --pushes times: a commit that changes every class's description, a
signed `POST /api/extras/git-repositories/webhook/`, and the clock stops when all 200 definitions show the
new commit. Baselines measured in the same run, on the same cluster:
  pod:    a Job from the same image, on the same queue's node, running `jobplane --help`: create → Complete;
  writes: the same 200 status patches the sync makes, sent one after the other with the Kubernetes client.
Figures and ratios are reported, never asserted (the issue's aim: under 10 s). Run as root:

    .venv/bin/python bench/git_webhook.py [--pushes 3] [--classes-per-module 10] [--modules 20]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster import images  # noqa: E402
from tests.cluster.cluster import Cluster, wait_for  # noqa: E402
from tests.conftest import PostgresServer, _postgres_bindir  # noqa: E402
from tests.gitserver import GitHttpServer, GitRepo  # noqa: E402
from tests.stack import Stack  # noqa: E402

USERNAME = "bench"
PASSWORD = secrets.token_hex(12)
WEBHOOK_SECRET = secrets.token_hex(16)


def _module(index: int, classes: int, version: str) -> str:
    lines = ["from jobplane import IntegerVar, Job, StringVar, register_jobs", ""]
    names = []
    for number in range(classes):
        name = f"Job{index:02d}x{number:02d}"
        names.append(name)
        lines += [
            f"class {name}(Job):",
            "    text = StringVar(default='x')",
            "    count = IntegerVar(default=1, min_value=0)",
            "    class Meta:",
            f"        name = '{name}'",
            f"        grouping = 'bench {index:02d}'",
            f"        description = 'version {version}'",
            "        has_sensitive_variables = False",
            "    def run(self, *, text, count):",
            "        return text * count",
            "",
        ]
    lines.append(f"register_jobs({', '.join(names)})")
    return "\n".join(lines) + "\n"


class Repo:
    """The benchmark's repository: a bare one that is served, and the work tree that pushes to it."""

    def __init__(self, root: Path, work: Path, modules: int, classes: int) -> None:
        self.bare = root / "bench.git"
        subprocess.run(
            ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare)], check=True
        )
        self.work = GitRepo(work)
        self.modules, self.classes = modules, classes

    def push(self, version: str) -> str:
        files: dict[str, str | bytes | None] = {"jobs/__init__.py": ""}
        for index in range(self.modules):
            files[f"jobs/module{index:02d}.py"] = _module(index, self.classes, version)
        return self.work.commit(files, f"version {version}", push_to=self.bare)


def _definitions_at(custom: Any, namespace: str, commit: str, expected: int) -> bool:
    items = custom.list_namespaced_custom_object("jobplane.io", "v1alpha1", namespace, "jobdefinitions")[
        "items"
    ]
    at = [
        item
        for item in items
        if ((item.get("status") or {}).get("source") or {}).get("commit") == commit
        and (item.get("status") or {}).get("installed")
    ]
    return len(at) >= expected


def _pod_baseline(cluster: Cluster, stack: Stack) -> float:
    name = f"bench-pod-{secrets.token_hex(3)}"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": stack.namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"pool": "default"},
                    "hostNetwork": True,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [
                        {
                            "name": "job",
                            "image": stack.image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["jobplane", "--help"],
                        }
                    ],
                }
            },
        },
    }
    started = time.monotonic()
    cluster.kubectl("create", "-f", "-", input=json.dumps(job))
    wait_for(
        "the baseline pod's Job",
        lambda: cluster.get_json("job", name, "-n", stack.namespace).get("status", {}).get("succeeded") == 1,
        timeout=120,
        interval=0.05,
    )
    return time.monotonic() - started


def _writes_baseline(custom: Any, namespace: str) -> float:
    items = custom.list_namespaced_custom_object("jobplane.io", "v1alpha1", namespace, "jobdefinitions")[
        "items"
    ]
    items = [i for i in items if ((i.get("status") or {}).get("source") or {}).get("type") == "repository"]
    started = time.monotonic()
    for item in items:
        status = dict(item["status"])
        # A change the operator ignores (code metadata it will rewrite on the next sync), one write per class.
        status["code"] = {**status["code"], "description": "baseline write"}
        custom.patch_namespaced_custom_object_status(
            "jobplane.io",
            "v1alpha1",
            namespace,
            "jobdefinitions",
            item["metadata"]["name"],
            {"status": status},
        )
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=3)
    parser.add_argument("--modules", type=int, default=20)
    parser.add_argument("--classes-per-module", type=int, default=10)
    args = parser.parse_args()
    expected = args.modules * args.classes_per_module
    bindir = _postgres_bindir()
    if bindir is None:
        print("Postgres is not installed: run scripts/setup-host.sh", file=sys.stderr)
        return 2
    postgres = PostgresServer(bindir)
    postgres.start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="jobplane-bench-git-", dir="/var/tmp") as tmp,
            Cluster() as cluster,
        ):
            root = Path(tmp) / "served"
            root.mkdir()
            image = cluster.import_image(images.project_image())
            stack = Stack(
                cluster,
                postgres.create_database(),
                image,
                Path(tmp) / "logs",
                namespace="bench-git",
                operator_env={"JOBPLANE_OPERATOR_REPOSITORY_POLL_CHECK": "1"},
                api_env={"JOBPLANE_API_GIT_WEBHOOK_SECRET": WEBHOOK_SECRET},
            )
            stack.start()
            try:
                return _measure(args, expected, cluster, stack, root, Path(tmp) / "work")
            except Exception:
                # What the operator saw, before the stack and its logs go away.
                repository = cluster.kubectl("get", "jobrepositories", "-n", stack.namespace, "-o", "yaml")
                print(repository.stdout[-4000:], file=sys.stderr)
                print(stack.log_path("operator").read_text(errors="replace")[-6000:], file=sys.stderr)
                raise
            finally:
                stack.stop()
    finally:
        postgres.stop()


def _measure(
    args: argparse.Namespace, expected: int, cluster: Cluster, stack: Stack, root: Path, work: Path
) -> int:
    from kubernetes import client, config

    config.load_kube_config(str(cluster.kubeconfig))
    custom = client.CustomObjectsApi()
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    repo = Repo(root, work, args.modules, args.classes_per_module)
    commit = repo.push("0")
    api = httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Token {stack.admin_token}"}, timeout=30
    )
    with GitHttpServer(root, USERNAME, PASSWORD) as server:
        url = server.url_for("bench.git")
        # Git credentials are used only from a Secret labelled so and scoped to the repository's URL.
        cluster.kubectl(
            "create", "secret", "generic", "bench-creds", "-n", stack.namespace,
            f"--from-literal=username={USERNAME}", f"--from-literal=password={PASSWORD}",
            f"--from-literal=url={url}",
        )  # fmt: skip
        cluster.kubectl(
            "label", "secret", "bench-creds", "-n", stack.namespace,
            "jobplane.io/secret-type=repository-credentials",
        )  # fmt: skip
        started = time.monotonic()
        created = api.post(
            "/api/extras/git-repositories/",
            json={"name": "bench", "remote_url": url, "secrets_group": "bench-creds", "interval": "1h"},
        )
        created.raise_for_status()
        wait_for(
            "the first sync",
            lambda: _definitions_at(custom, stack.namespace, commit, expected),
            timeout=180,
            interval=0.1,
        )
        first_sync = time.monotonic() - started
        body = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": url}}).encode()
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        timings = []
        for push in range(1, args.pushes + 1):
            commit = repo.push(str(push))
            started = time.monotonic()
            answer = api.post(
                "/api/extras/git-repositories/webhook/",
                content=body,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
            )
            answer.raise_for_status()
            wait_for(
                f"push {push}",
                lambda commit=commit: _definitions_at(custom, stack.namespace, commit, expected),
                timeout=180,
                interval=0.1,
            )
            timings.append(time.monotonic() - started)
    pod = _pod_baseline(cluster, stack)
    writes = _writes_baseline(custom, stack.namespace)
    median = statistics.median(timings)
    report = {
        "job_classes": expected,
        "first_sync_s": round(first_sync, 2),
        "webhook_to_definitions_s": [round(t, 2) for t in timings],
        "webhook_to_definitions_median_s": round(median, 2),
        "baseline_pod_create_to_complete_s": round(pod, 2),
        "baseline_200_status_writes_s": round(writes, 2),
        "median_vs_pod_plus_writes": round(median / (pod + writes), 2),
        "aim": "webhook_to_definitions < 10 s",
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
