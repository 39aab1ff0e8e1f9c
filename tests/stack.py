"""The whole Jobplane stack on one machine: the local cluster, Postgres, the operator and the API.

    python -m tests.stack up      # start everything; prints the API URL and an admin token; Ctrl-C stops
    python -m tests.stack down    # stop a stack started by `up` (from another terminal)

For demos, for trying Jobplane without a cluster of one's own, and for acceptance checks written outside the
project. The e2e tests use the same :class:`Stack` on their session cluster. Needs root (the kubelet node)
and the cluster binaries (scripts/setup-host.sh, tests/cluster/build-bins.sh), like the e2e tests.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml

from jobplane_crds.v1alpha1 import KINDS
from tests.builders import job_queue
from tests.cluster.binaries import Binaries
from tests.cluster.cluster import Cluster, free_port, wait_for
from tests.conftest import REPO_ROOT, PostgresServer, _postgres_bindir

log = logging.getLogger("jobplane.stack")

CRDS_DIR = REPO_ROOT / "crds"
EXAMPLES = REPO_ROOT / "jobs" / "examples"
CRD_NAMES = tuple(f"{kind.plural}.jobplane.io" for kind in KINDS)
STATE_DIR = Path(os.environ.get("JOBPLANE_STACK_DIR", "/tmp/jobplane-stack"))
ADMIN = "admin"


def apply_crds(cluster: Cluster) -> None:
    """The generated jobplane.io CRDs, applied and served, with their admission webhook (idempotent)."""
    cluster.kubectl("apply", "--server-side", "-f", str(CRDS_DIR))
    for name in CRD_NAMES:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    # Discovery can lag establishment by a moment; kubectl needs it for short names.
    wait_for(
        "jobplane.io in discovery", lambda: "jobruns" in cluster.kubectl("api-resources").stdout, timeout=30
    )
    start_admission(cluster)


ADMISSION_PROCESS = "jobplane-admission"
# The label of a test namespace out of admission's reach (the chart's configurations have no such label).
ADMISSION_OPT_OUT = "jobplane.io/tests-admission"
# The identity of the API in the stack: the one requester whose runs keep their requestedBy.
API_IDENTITY = "jobplane-api"
# The stack operator's identity: it creates a JobSchedule's fires for the schedule's requester.
OPERATOR_IDENTITY = "jobplane-operator"


def webhook_configurations(base_url: str, ca_bundle: str) -> list[dict[str, Any]]:
    """The chart's webhook configurations (helm template), calling ``base_url`` with ``ca_bundle``, for
    every namespace: the tests' admission runs the very hooks, paths and rules a release installs."""
    rendered = subprocess.run(
        [
            str(Binaries.locate().helm), "template", "jp", str(REPO_ROOT / "charts" / "jobplane"),
            "--show-only", "templates/operator-webhook.yaml",
            "--set", "database.existingSecret=unused", "--set", f"operator.webhook.url={base_url}",
        ],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    configurations = [
        doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"].endswith("WebhookConfiguration")
    ]
    for configuration in configurations:
        configuration["metadata"]["name"] = "jobplane-tests"
        for hook in configuration["webhooks"]:
            hook["clientConfig"]["caBundle"] = ca_bundle
            # Tests make namespaces as they go: every one, but those of lower-layer tests that opt out.
            hook["namespaceSelector"] = {
                "matchExpressions": [{"key": ADMISSION_OPT_OUT, "operator": "NotIn", "values": ["disabled"]}]
            }
    return configurations


def start_admission(cluster: Cluster) -> None:
    """The admission webhook for the whole cluster, once: `jobplane operator` serving admission only
    (the tests' operators then serve none), stopped with the cluster."""
    if any(record.name == ADMISSION_PROCESS for record in cluster.state.processes):
        return
    port = free_port()
    cert = cluster.serving_cert("jobplane-webhook")
    cluster._spawn(
        ADMISSION_PROCESS,
        Path(sys.executable),
        ["-m", "jobplane.cli", "operator"],
        env={
            "KUBECONFIG": str(cluster.kubeconfig),
            "JOBPLANE_OPERATOR_CONTROLLERS": "false",
            "JOBPLANE_OPERATOR_WEBHOOK_PORT": str(port),
            "JOBPLANE_OPERATOR_WEBHOOK_ADDRESS": "127.0.0.1",
            "JOBPLANE_OPERATOR_WEBHOOK_CERT_FILE": str(cert.cert),
            "JOBPLANE_OPERATOR_WEBHOOK_KEY_FILE": str(cert.key),
            "JOBPLANE_OPERATOR_TRUSTED_REQUESTERS": json.dumps([API_IDENTITY, OPERATOR_IDENTITY]),
        },
    )

    def listening() -> bool:
        cluster._check_alive()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    wait_for("the admission webhook", listening, timeout=60)
    ca_bundle = base64.b64encode(cluster.ca.cert.read_bytes()).decode()
    for configuration in webhook_configurations(f"https://127.0.0.1:{port}", ca_bundle):
        cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(configuration))


class Stack:
    """The operator and the API as processes on the host, on a cluster and a database given to it.

    Job pods run on the cluster's real node on the pod network; the API listens on the host's address on the
    cluster's bridge (a host-local interface), where they reach it.
    """

    def __init__(
        self,
        cluster: Cluster,
        database_url: str,
        image: str,
        workdir: Path,
        namespace: str = "jobplane",
        *,
        operator_env: dict[str, str] | None = None,
        api_env: dict[str, str] | None = None,
        extra_namespaces: tuple[str, ...] = (),
        queue_pod_template: dict[str, Any] | None = None,
    ) -> None:
        """``operator_env``/``api_env`` add settings; ``extra_namespaces`` are watched by the operator too;
        ``queue_pod_template`` is merged into the default queue's pod template (volumes, mounts)."""
        self.cluster = cluster
        self.operator_env = dict(operator_env or {})
        self.api_env = dict(api_env or {})
        self.extra_namespaces = extra_namespaces
        self.queue_pod_template = queue_pod_template or {}
        self.database_url = database_url
        self.image = image
        self.workdir = workdir
        self.namespace = namespace
        self.port = free_port()
        self.api_host = cluster.apiserver_ip
        self.api_url = f"http://{self.api_host}:{self.port}"
        self.run_token_key = secrets.token_hex(32)
        self.admin_token = ""
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    # --- environment of the commands --------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "JOBPLANE_JOBS_ROOT": str(EXAMPLES),
            "JOBPLANE_API_DATABASE_URL": self.database_url,
            **extra,
        }

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a `jobplane` command against this stack's cluster and database."""
        return subprocess.run(
            [sys.executable, "-m", "jobplane.cli", *args],
            env=self.env(),
            check=check,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        out = self.log_path(name).open("ab")
        self._logs.append(out)
        self._processes[name] = subprocess.Popen(
            [sys.executable, "-m", "jobplane.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )

    # --- start and stop ---------------------------------------------------------------------------------
    def start(self) -> None:
        apply_crds(self.cluster)
        for namespace in (self.namespace, *self.extra_namespaces):
            if self.cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0:
                self.cluster.kubectl("create", "namespace", namespace)
        self.cli("sync-jobs", "--namespace", self.namespace)
        self.cluster.kubectl(
            "apply", "--server-side", "-f", "-", input=json.dumps(self.default_queue(self.namespace))
        )
        self.cli("db", "upgrade")
        self._spawn(
            "api",
            ["api"],
            self.env(
                # An identity of its own, as in a release (its service account): admission keeps the
                # requestedBy of its runs, and stamps everyone else's.
                KUBECONFIG=str(self.cluster.user_kubeconfig(API_IDENTITY, groups=("system:masters",))),
                JOBPLANE_API_NAMESPACE=self.namespace,
                JOBPLANE_API_HOST=self.api_host,
                JOBPLANE_API_PORT=str(self.port),
                JOBPLANE_API_RUN_TOKEN_KEY=self.run_token_key,
                **self.api_env,
            ),
        )
        self._start_operator()
        wait_for("the API", self._api_ready, timeout=60)
        if self.cli("users", "create", ADMIN, "--superuser", check=False).returncode not in (0, 2):
            raise RuntimeError(f"could not create the {ADMIN} user: see {self.log_path('api')}")
        self.admin_token = self.cli("tokens", "create", ADMIN, "--description", "stack admin").stdout.strip()

    def _start_operator(self) -> None:
        self._spawn(
            "operator",
            ["operator"],
            self.env(
                # An identity of its own, as in a release: admission keeps the requester of the runs
                # it creates for a JobSchedule.
                KUBECONFIG=str(self.cluster.user_kubeconfig(OPERATOR_IDENTITY, groups=("system:masters",))),
                JOBPLANE_OPERATOR_NAMESPACES=json.dumps([self.namespace, *self.extra_namespaces]),
                JOBPLANE_OPERATOR_IMAGE=self.image,
                JOBPLANE_OPERATOR_API_URL=self.api_url,
                JOBPLANE_OPERATOR_RUN_TOKEN_KEY=self.run_token_key,
                JOBPLANE_OPERATOR_LEASE_NAME=f"stack-{secrets.token_hex(4)}",
                JOBPLANE_OPERATOR_LEASE_NAMESPACE=self.namespace,
                JOBPLANE_OPERATOR_LEASE_DURATION="4",
                JOBPLANE_OPERATOR_METRICS_PORT="0",
                JOBPLANE_OPERATOR_RESYNC_INTERVAL="1",
                **self.operator_env,
            ),
        )

    def restart_operator(self, until: Callable[[], object] | None = None) -> None:
        """Kill the operator (SIGKILL: a crash, no goodbye) and start it again, after ``until`` holds if
        given (the operator stays down meanwhile: a fire time passes, a status is wiped)."""
        process = self._processes.pop("operator")
        process.kill()
        process.wait()
        if until is not None:
            wait_for("the operator's downtime to end", until, timeout=180)
        self._start_operator()

    def default_queue(self, namespace: str) -> dict[str, Any]:
        """The default JobQueue: the real node, whose pods reach the API on the bridge's host address."""
        template = {"spec": {**self.queue_pod_template.get("spec", {})}}
        return job_queue(
            "default", namespace=namespace, nodeSelector={"pool": "default"}, podTemplate=template
        )

    def _api_ready(self) -> bool:
        for name, process in self._processes.items():
            if process.poll() is not None:
                tail = self.log_path(name).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{self.api_url}/api/status/", timeout=2) as response:
                return json.load(response).get("kubernetes") == "synced"
        except OSError:
            return False

    def stop(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        for out in self._logs:
            out.close()
        self._logs.clear()

    def enable_all(self) -> None:
        """Enable every bundled example job (new jobs start disabled)."""
        for item in self.cluster.get_json("jobdefinitions", "-n", self.namespace)["items"]:
            self.cluster.kubectl(
                "patch", "jobdefinition", item["metadata"]["name"], "-n", self.namespace,
                "--type=merge", "-p", '{"spec": {"enabled": true}}',
            )  # fmt: skip


# --- the command line -------------------------------------------------------------------------------------


def _up(enable: bool) -> int:
    from tests.cluster import images

    bindir = _postgres_bindir()
    if bindir is None:
        print("Postgres is not installed: run scripts/setup-host.sh", file=sys.stderr)
        return 2
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state = STATE_DIR / "stack.json"
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    postgres = PostgresServer(bindir)
    with contextlib.ExitStack() as cleanup:
        log.info("starting Postgres")
        postgres.start()
        cleanup.callback(postgres.stop)
        log.info("starting the cluster (control plane, the real node, kwok pools)")
        cluster = Cluster()
        cluster.start()
        cleanup.callback(cluster.stop)
        log.info("building and importing the project image")
        image = cluster.import_image(images.project_image())
        stack = Stack(cluster, postgres.create_database(), image, STATE_DIR / "logs")
        cleanup.callback(stack.stop)
        stack.start()
        if enable:
            stack.enable_all()
        state.write_text(json.dumps({"pid": os.getpid(), "api_url": stack.api_url}))
        cleanup.callback(state.unlink, missing_ok=True)
        print(
            f"\nJobplane is up.\n  API:        {stack.api_url}/api/  (docs: {stack.api_url}/api/docs/)\n"
            f"  token:      {stack.admin_token}   (user {ADMIN}, superuser)\n"
            f"  kubeconfig: {cluster.kubeconfig}\n  namespace:  {stack.namespace}\n"
            f"  logs:       {stack.workdir}\n"
            f"Try: curl -H 'Authorization: Token {stack.admin_token}' {stack.api_url}/api/extras/jobs/\n"
            "Stop with Ctrl-C, or `python -m tests.stack down`.",
            flush=True,
        )
        while not stop.wait(1):
            pass
        log.info("stopping")
    return 0


def _down() -> int:
    state = STATE_DIR / "stack.json"
    if not state.exists():
        print("no stack is running (no state file)", file=sys.stderr)
        return 1
    pid = int(json.loads(state.read_text())["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    while state.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return 0 if not state.exists() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack and wait for Ctrl-C")
    up.add_argument("--no-enable", action="store_true", help="leave the example jobs disabled")
    commands.add_parser("down", help="stop the stack started by `up`")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    return _up(not args.no_enable) if args.command == "up" else _down()


if __name__ == "__main__":
    raise SystemExit(main())
