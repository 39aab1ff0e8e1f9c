"""Jobs from Git repositories on the cluster: HTTP with basic auth and file://, polling and webhooks,
pinned commits, degraded syncs, no credential anywhere, and Jobplane's manifests applied in any order."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobplane_operator.reconcile.jobdefinition import definition_name
from tests.builders import job_definition, job_repository, job_run
from tests.cluster.cluster import Cluster, wait_for
from tests.conftest import PostgresServer
from tests.e2e.api_support import Api, running_stack
from tests.gitserver import GitHttpServer, GitRepo
from tests.stack import Stack

pytestmark = pytest.mark.cluster

USERNAME = "jobbot"
PASSWORD = f"pw-{secrets.token_hex(12)}"
WEBHOOK_SECRET = f"whsec-{secrets.token_hex(12)}"
GITOPS = ("gitops-a", "gitops-b")
SECRET_TYPE_LABEL = "jobplane.io/secret-type"


class ServedRepo:
    """A bare repository under the served root, and a work tree that commits and pushes to it."""

    def __init__(self, root: Path, workdir: Path, name: str) -> None:
        self.bare = root / f"{name}.git"
        subprocess.run(
            ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare)], check=True
        )
        self.work = GitRepo(workdir / name)

    @property
    def file_url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: dict[str, str | None], message: str) -> str:
        """Write (or, for None, delete) files, commit and push; the new commit's sha."""
        return self.work.commit(dict(files), message, push_to=self.bare)


def job_module(cls: str, *, description: str, version: str, grouping: str = "git jobs") -> str:
    return textwrap.dedent(
        f'''\
        from jobplane import Job, StringVar, register_jobs


        class {cls}(Job):
            who = StringVar(default="world")

            class Meta:
                name = "{cls} ({grouping})"
                grouping = "{grouping}"
                description = "{description}"
                has_sensitive_variables = False

            def run(self, *, who):
                self.logger.info("{cls} greets %s from {version}", who)
                return "{version}"


        register_jobs({cls})
        '''
    )


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def git_root() -> Iterator[Path]:
    """Served repositories: readable by the pods' non-root user, mounted into them at the same path."""
    root = Path(tempfile.mkdtemp(prefix="jobplane-git-", dir="/var/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def workdir(git_root: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="jobplane-git-work-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def git_server(git_root: Path, cluster: Cluster) -> Iterator[GitHttpServer]:
    # On the cluster's bridge address: the sync pods run on the pod network.
    with GitHttpServer(git_root, USERNAME, PASSWORD, host=cluster.apiserver_ip) as server:
        yield server


def _repository_mount(git_root: Path) -> dict[str, Any]:
    return {
        "spec": {
            "volumes": [{"name": "git-repos", "hostPath": {"path": str(git_root), "type": "Directory"}}],
            "containers": [
                {
                    "name": "job",
                    "volumeMounts": [{"name": "git-repos", "mountPath": str(git_root), "readOnly": True}],
                }
            ],
        }
    }


@pytest.fixture(scope="module")
def git_stack(
    jobplane_crds: Cluster,
    project_image: str,
    postgres: PostgresServer,
    git_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    namespace = f"git-{secrets.token_hex(3)}"
    with running_stack(
        jobplane_crds,
        postgres.create_database(),
        project_image,
        tmp_path_factory.mktemp("git-stack"),
        namespace=namespace,
        operator_env={
            "JOBPLANE_OPERATOR_ALLOW_FILE_URLS": "true",
            "JOBPLANE_OPERATOR_REPOSITORY_POLL_CHECK": "1",
        },
        api_env={"JOBPLANE_API_GIT_WEBHOOK_SECRET": WEBHOOK_SECRET},
        extra_namespaces=tuple(f"{namespace}-{suffix}" for suffix in GITOPS),
        queue_pod_template=_repository_mount(git_root),
    ) as stack:
        yield stack


# --- helpers ---------------------------------------------------------------------------------------------


def definitions(stack: Stack, namespace: str | None = None) -> dict[str, dict[str, Any]]:
    """JobDefinitions by class path (from status, or spec for one applied before discovery)."""
    items = stack.cluster.get_json("jobdefinitions", "-n", namespace or stack.namespace)["items"]
    found = {}
    for item in items:
        path = (item.get("status") or {}).get("classPath") or item["spec"].get("classPath")
        if path:
            found[path] = item
    return found


def wait_definitions(
    stack: Stack, what: str, check: Any, *, namespace: str | None = None, timeout: float = 90
) -> dict[str, dict[str, Any]]:
    def current() -> dict[str, dict[str, Any]] | None:
        found = definitions(stack, namespace)
        return found if check(found) else None

    return wait_for(what, current, timeout=timeout, interval=0.25)


def status_of(item: dict[str, Any]) -> dict[str, Any]:
    return dict(item.get("status") or {})


def installed_at(found: dict[str, dict[str, Any]], class_path: str, commit: str) -> bool:
    status = status_of(found.get(class_path, {}))
    return bool(status.get("installed")) and (status.get("source") or {}).get("commit") == commit


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in status_of(obj).get("conditions") or []:
        if item["type"] == kind:
            return dict(item)
    return {}


def repository(stack: Stack, name: str, namespace: str | None = None) -> dict[str, Any]:
    return dict(stack.cluster.get_json("jobrepository", name, "-n", namespace or stack.namespace))


def git_secret(
    cluster: Cluster,
    namespace: str,
    name: str,
    *,
    url: str | None,
    labelled: bool = True,
    username: str = USERNAME,
    password: str = PASSWORD,
) -> None:
    """A Secret of Git credentials: labelled as repository credentials and scoped to the URL prefix ``url``
    (its url key; None: none), as the operator requires before it uses them. Created, never applied, so no
    last-applied annotation holds the password."""
    literals = [f"--from-literal=username={username}", f"--from-literal=password={password}"]
    if url is not None:
        literals.append(f"--from-literal=url={url}")
    cluster.kubectl("create", "secret", "generic", name, "-n", namespace, *literals)
    if labelled:
        cluster.kubectl(
            "label", "secret", name, "-n", namespace, f"{SECRET_TYPE_LABEL}=repository-credentials"
        )


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def run_and_wait(api: Api, class_path: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = api.run(class_path, {"data": data, **extra})
    assert response.status_code in (200, 201), response.text
    return api.wait_result(response.json()["job_result"]["id"], timeout=180)


def jobrun_of(stack: Stack, result_id: str) -> dict[str, Any]:
    for run in stack.cluster.get_json("jobruns", "-n", stack.namespace)["items"]:
        if run["metadata"]["uid"] == result_id:
            return dict(run)
    raise AssertionError(f"no JobRun with uid {result_id}")


# --- over HTTP with basic auth ---------------------------------------------------------------------------


def test_repository_over_http_lifecycle(
    git_stack: Stack, git_server: GitHttpServer, git_root: Path, workdir: Path
) -> None:
    stack, cluster, namespace = git_stack, git_stack.cluster, git_stack.namespace
    api = Api(stack, stack.admin_token)
    repo = ServedRepo(git_root, workdir, "netops")
    c1 = repo.commit(
        {
            "jobs/__init__.py": "",
            "jobs/hello.py": job_module("Hello", description="v1", version="v1"),
            "jobs/other.py": job_module("Other", description="other", version="v1"),
        },
        "two jobs",
    )
    url = git_server.url_for("netops.git")
    # Scoped to the server's repositories (a prefix of the URL), as credentials must be to be used.
    git_secret(cluster, namespace, "git-creds", url=git_server.base_url + "/")
    leaky = api.client.post(
        "/api/extras/git-repositories/",
        json={
            "name": "leaky",
            "remote_url": url.replace("://", f"://{USERNAME}:{PASSWORD}@"),
            "branch": "main",
        },
    )
    assert leaky.status_code == 400, leaky.text
    assert "remote_url" in leaky.json()
    assert PASSWORD not in leaky.text
    created = api.client.post(
        "/api/extras/git-repositories/",
        json={
            "name": "NetOps Jobs",
            "slug": "netops",
            "remote_url": url,
            "branch": "main",
            "provided_contents": ["extras.job"],
            "secrets_group": "git-creds",
            "interval": "1h",
        },
    )
    assert created.status_code == 201, created.text
    repo_id = created.json()["id"]
    # Nautobot's display name is kept; the JobRepository is named after the slug.
    assert (created.json()["name"], created.json()["job_repository"]["name"]) == ("NetOps Jobs", "netops")

    # Adding the repository makes its jobs appear, disabled.
    found = wait_definitions(
        stack,
        "the repository's jobs at the first commit",
        lambda f: (
            installed_at(f, "netops.jobs.hello.Hello", c1) and installed_at(f, "netops.jobs.other.Other", c1)
        ),
    )
    assert found["netops.jobs.hello.Hello"]["spec"]["enabled"] is False
    assert status_of(found["netops.jobs.hello.Hello"])["source"] == {
        "type": "repository",
        "repository": "netops",
        "commit": c1,
    }
    shown = api.client.get(f"/api/extras/git-repositories/{repo_id}/").json()
    assert shown["current_head"] == c1
    assert shown["slug"] == "netops"

    # After enabling one, a run executes the repository's code in a pod and reports the commit.
    api.enable("netops.jobs.hello.Hello")
    result = run_and_wait(api, "netops.jobs.hello.Hello", {"who": "git"})
    assert result["status"]["value"] == "SUCCESS", result
    assert result["commit"] == c1
    assert any("Hello greets git from v1" in entry["message"] for entry in api.logs(result["id"]))

    # The pod's report can end the result before the run's first status is written (from its Job's
    # events): the run records the commit it was pinned to once it has ended.
    def ended() -> dict[str, Any] | None:
        run = jobrun_of(stack, result["id"])
        return run if status_of(run).get("phase") == "Succeeded" else None

    assert status_of(wait_for("the run's status to record its end", ended, timeout=30))["commit"] == c1

    # A push picked up by the webhook: a bad or missing signature is refused.
    c2 = repo.commit(
        {
            "jobs/hello.py": job_module("Hello", description="v2", version="v2"),
            "jobs/third.py": job_module("Third", description="third", version="v2"),
        },
        "hello v2, a third job",
    )
    body = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": url}}).encode()
    hook = "/api/extras/git-repositories/webhook/"
    plain = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
    missing = api.client.post(hook, content=body, headers=plain)
    assert missing.status_code == 401, missing.text
    forged = api.client.post(
        hook, content=body, headers={**plain, "X-Hub-Signature-256": signed(body, "nope")}
    )
    assert forged.status_code == 403, forged.text
    # A signed push to another branch moves nothing this repository follows: no sync pod.
    feature = json.dumps({"ref": "refs/heads/feature", "repository": {"clone_url": url}}).encode()
    elsewhere = api.client.post(
        hook, content=feature, headers={**plain, "X-Hub-Signature-256": signed(feature)}
    )
    assert elsewhere.status_code == 202, elsewhere.text
    assert elsewhere.json()["synced"] == []
    time.sleep(1)
    assert installed_at(definitions(stack), "netops.jobs.hello.Hello", c1), "a refused webhook synced"
    started = time.monotonic()
    accepted = api.client.post(hook, content=body, headers={**plain, "X-Hub-Signature-256": signed(body)})
    assert accepted.status_code == 202, accepted.text
    assert "netops" in accepted.json()["synced"]
    found = wait_definitions(
        stack,
        "the webhook's sync",
        lambda f: (
            installed_at(f, "netops.jobs.hello.Hello", c2) and installed_at(f, "netops.jobs.third.Third", c2)
        ),
        timeout=60,
    )
    print(f"webhook → definitions updated in {time.monotonic() - started:.1f} s")
    assert status_of(found["netops.jobs.hello.Hello"])["effective"]["description"] == "v2"
    assert found["netops.jobs.third.Third"]["spec"]["enabled"] is False
    assert found["netops.jobs.hello.Hello"]["spec"]["enabled"] is True  # the admin's choice is kept

    # A run requested before a push runs the old commit: it waits on a full queue while the push lands.
    hold = stack.default_queue(namespace)
    hold["metadata"]["name"] = "hold"
    hold["spec"]["concurrencyLimit"] = 0
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(hold))
    name = found["netops.jobs.hello.Hello"]["metadata"]["name"]
    cluster.kubectl(
        "patch", "jobdefinition", name, "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"overrides": {"taskQueues": ["default", "hold"]}}}),
    )  # fmt: skip
    waiting = api.run("netops.jobs.hello.Hello", {"data": {"who": "early"}, "task_queue": "hold"})
    assert waiting.status_code in (200, 201), waiting.text
    waiting_id = waiting.json()["job_result"]["id"]
    queued = wait_for(
        "the early run to wait in the hold queue",
        lambda: (run := jobrun_of(stack, waiting_id)) and status_of(run).get("phase") == "Queued" and run,
        timeout=60,
    )
    assert status_of(queued)["commit"] == c2
    c3 = repo.commit({"jobs/hello.py": job_module("Hello", description="v3", version="v3")}, "hello v3")
    synced = api.client.post(f"/api/extras/git-repositories/{repo_id}/sync/")
    assert synced.status_code == 200, synced.text
    # The sync's job result, as Nautobot answers one, ends when the operator's sync does.
    sync_result = api.wait_result(synced.json()["job_result"]["id"], timeout=180)
    assert (sync_result["status"]["value"], sync_result["commit"]) == ("SUCCESS", c3), sync_result
    wait_definitions(stack, "the manual sync of v3", lambda f: installed_at(f, "netops.jobs.hello.Hello", c3))
    cluster.kubectl(
        "patch",
        "jobqueue",
        "hold",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"concurrencyLimit": 1}}',
    )
    early = api.wait_result(waiting_id, timeout=180)
    assert early["status"]["value"] == "SUCCESS", early
    assert early["commit"] == c2
    assert any("Hello greets early from v2" in entry["message"] for entry in api.logs(waiting_id))
    late = run_and_wait(api, "netops.jobs.hello.Hello", {"who": "late"})
    assert late["commit"] == c3
    assert any("Hello greets late from v3" in entry["message"] for entry in api.logs(late["id"]))

    # A push that deletes a job marks it not installed; it is never deleted.
    c4 = repo.commit({"jobs/other.py": None}, "drop Other")
    assert api.client.post(f"/api/extras/git-repositories/{repo_id}/sync/").status_code == 200
    found = wait_definitions(
        stack,
        "Other marked not installed",
        lambda f: (
            status_of(f["netops.jobs.other.Other"]).get("installed") is False
            and installed_at(f, "netops.jobs.hello.Hello", c4)
        ),
    )
    assert condition(found["netops.jobs.other.Other"], "Installed")["status"] == "False"

    # A syntax error in one module: the others are current, its jobs stay installed at the last good commit.
    c5 = repo.commit(
        {
            "jobs/hello.py": job_module("Hello", description="v5", version="v5"),
            "jobs/third.py": "from jobplane import Job\n\nclass Third(Job:\n    pass\n",
        },
        "hello v5, third broken",
    )
    synced = api.client.post(f"/api/extras/git-repositories/{repo_id}/sync/")
    assert synced.status_code == 200, synced.text
    # As in Nautobot, a module that does not import is an error line of a sync that succeeds.
    sync_result = api.wait_result(synced.json()["job_result"]["id"], timeout=180)
    assert sync_result["status"]["value"] == "SUCCESS", sync_result
    assert any(
        entry["log_level"] == "error" and "third" in entry["message"] for entry in api.logs(sync_result["id"])
    ), api.logs(sync_result["id"])
    found = wait_definitions(
        stack,
        "hello at v5 despite the broken module",
        lambda f: installed_at(f, "netops.jobs.hello.Hello", c5),
    )
    assert installed_at(found, "netops.jobs.third.Third", c4), status_of(found["netops.jobs.third.Third"])
    degraded = wait_for(
        "the Degraded condition",
        lambda: (c := condition(repository(stack, "netops"), "Degraded")).get("status") == "True" and c,
        timeout=30,
    )
    assert "jobs/third.py" in degraded["message"], degraded
    assert "netops.jobs.third" in degraded["message"], degraded
    current = repository(stack, "netops")
    assert status_of(current)["commit"] == c5
    assert condition(current, "Synced")["status"] == "True"
    shown = api.client.get(f"/api/extras/git-repositories/{repo_id}/").json()
    assert shown["current_head"] == c5
    assert shown["status"]["degraded"] is True

    assert_no_credentials(stack)


def assert_no_credentials(stack: Stack) -> None:
    """The password (and the basic-auth header made of it) is in no object, event or log line."""
    cluster, namespace = stack.cluster, stack.namespace
    needles = [PASSWORD, base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()]
    kinds = "jobrepositories,jobruns,jobdefinitions,jobqueues,jobs,pods,configmaps"
    haystacks = {
        "objects": cluster.kubectl("get", kinds, "-n", namespace, "-o", "json").stdout,
        "events": cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout,
        "api log": stack.log_path("api").read_text(errors="replace"),
        "operator log": stack.log_path("operator").read_text(errors="replace"),
    }
    for pod in cluster.get_json("pods", "-n", namespace)["items"]:
        name = pod["metadata"]["name"]
        logs = cluster.kubectl("logs", name, "-n", namespace, "--all-containers", check=False)
        haystacks[f"pod {name}"] = logs.stdout + logs.stderr
    assert len(haystacks) > 4, "no pods were searched"
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"a credential appears in {where}"


# --- credentials go only where their Secret says ----------------------------------------------------------


def test_credentials_not_scoped_to_the_repository_are_never_sent(
    git_stack: Stack, git_server: GitHttpServer, git_root: Path, workdir: Path
) -> None:
    stack, cluster, namespace = git_stack, git_stack.cluster, git_stack.namespace
    for name in ("unlabelled", "elsewhere"):
        ServedRepo(git_root, workdir, name).commit(
            {"jobs.py": job_module("Scoped", description="v1", version="v1", grouping=name)}, "one"
        )
    # (a) Valid credentials for the server, and the repository's own URL, but no label: a Secret nobody
    # said was Git credentials (the API's database Secret, say) is not used.
    unlabelled_url = git_server.url_for("unlabelled.git")
    git_secret(cluster, namespace, "unlabelled-creds", url=unlabelled_url, labelled=False)
    # (b) Labelled, but for other repositories: "/else" is a prefix of "/elsewhere.git" as a string only.
    other = f"other-{secrets.token_hex(4)}"
    git_secret(cluster, namespace, "elsewhere-creds", url=f"{git_server.base_url}/else", username=other)
    apply(
        cluster,
        namespace,
        jrepo(
            "unlabelled", unlabelled_url, "unlabelled", credentialsSecretRef="unlabelled-creds", interval="2s"
        ),
        jrepo(
            "elsewhere",
            git_server.url_for("elsewhere.git"),
            "elsewhere",
            credentialsSecretRef="elsewhere-creds",
            interval="2s",
        ),
    )
    says = {
        "unlabelled": f"add the label {SECRET_TYPE_LABEL}: repository-credentials",
        "elsewhere": "its key url names other repositories",
    }
    for name, words in says.items():
        synced = wait_for(
            f"{name} to say CredentialsNotScoped",
            lambda name=name: (
                (c := condition(repository(stack, name), "Synced")).get("reason") == "CredentialsNotScoped"
                and c
            ),
            timeout=60,
        )
        assert synced["status"] == "False", synced
        assert words in synced["message"], synced
        assert f"{name}-creds" in synced["message"], synced
    time.sleep(3)  # a look or two more at the 2 s interval: still nothing may go out
    assert git_server.basic_credentials("unlabelled.git") == []
    assert git_server.basic_credentials("elsewhere.git") == []
    assert not any(f"{other}:" in pair for pair in git_server.basic_credentials())
    served = [path for _, path, _ in git_server.requests]
    assert not [path for path in served if path.startswith(("/unlabelled.git", "/elsewhere.git"))]
    sync_jobs = cluster.get_json(
        "jobs", "-n", namespace, "-l", "jobplane.io/repository in (unlabelled,elsewhere)"
    )
    assert sync_jobs["items"] == []  # no sync pod: the Secret was mounted nowhere
    assert not [p for p in definitions(stack) if p.startswith(("unlabelled.", "elsewhere."))]

    # Labelled, (a) is used: its next look syncs it, and the server sees its credentials.
    cluster.kubectl(
        "label", "secret", "unlabelled-creds", "-n", namespace, f"{SECRET_TYPE_LABEL}=repository-credentials"
    )
    found = wait_definitions(
        stack,
        "the repository whose Secret is now scoped",
        lambda f: bool(status_of(f.get("unlabelled.jobs.Scoped", {})).get("installed")),
        timeout=90,
    )
    assert f"{USERNAME}:{PASSWORD}" in git_server.basic_credentials("unlabelled.git")

    # A run checks again when it starts: the label gone, its pod never gets the Secret.
    name = found["unlabelled.jobs.Scoped"]["metadata"]["name"]
    cluster.kubectl(
        "patch", "jobdefinition", name, "-n", namespace, "--type=merge", "-p", '{"spec": {"enabled": true}}'
    )
    cluster.kubectl("label", "secret", "unlabelled-creds", "-n", namespace, f"{SECRET_TYPE_LABEL}-")
    run = job_run("unscoped-run", job="unlabelled.jobs.Scoped", data={"who": "nobody"})
    apply(cluster, namespace, run)
    ended = wait_for(
        "the run of a repository whose Secret lost its scope to fail",
        lambda: (
            (r := cluster.get_json("jobrun", "unscoped-run", "-n", namespace)).get("status", {}).get("phase")
            in ("Succeeded", "Failed")
            and r
        ),
        timeout=60,
    )
    assert (ended["status"]["phase"], ended["status"]["reason"]) == ("Failed", "CredentialsNotScoped")
    assert not ended["status"].get("jobName")
    assert (
        cluster.get_json("jobs", "-n", namespace, "-l", f"jobplane.io/run-uid={ended['metadata']['uid']}")[
            "items"
        ]
        == []
    )
    assert not any(f"{other}:" in pair for pair in git_server.basic_credentials())


# --- over file://, by polling ----------------------------------------------------------------------------


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    docs = "\n---\n".join(yaml.safe_dump(obj) for obj in objects)
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=docs)


def jrepo(name: str, url: str, slug: str, **spec: Any) -> dict[str, Any]:
    return job_repository(name, **{"url": url, "slug": slug, **spec})


def test_repository_over_file_url_polling(git_stack: Stack, git_root: Path, workdir: Path) -> None:
    stack, cluster, namespace = git_stack, git_stack.cluster, git_stack.namespace
    repo = ServedRepo(git_root, workdir, "localjobs")
    c1 = repo.commit(
        {"jobs.py": job_module("Local", description="v1", version="v1", grouping="local")}, "one"
    )
    apply(cluster, namespace, jrepo("localjobs", repo.file_url, "localjobs", ref="main", interval="2s"))
    found = wait_definitions(stack, "the file:// job", lambda f: installed_at(f, "localjobs.jobs.Local", c1))
    name = found["localjobs.jobs.Local"]["metadata"]["name"]
    cluster.kubectl(
        "patch", "jobdefinition", name, "-n", namespace, "--type=merge", "-p", '{"spec": {"enabled": true}}'
    )
    run = job_run("local-run", job="localjobs.jobs.Local", data={"who": "kubectl"})
    apply(cluster, namespace, run)
    done = wait_for(
        "the kubectl run of a file:// job",
        lambda: (
            (r := cluster.get_json("jobrun", "local-run", "-n", namespace)).get("status", {}).get("phase")
            in ("Succeeded", "Failed")
            and r
        ),
        timeout=180,
    )
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["commit"] == c1
    assert "v1" in (done["status"].get("result") or {}).get("result", "")

    # Polling picks up a push with no webhook and no request.
    c2 = repo.commit(
        {"jobs.py": job_module("Local", description="v2", version="v2", grouping="local")}, "two"
    )
    found = wait_definitions(
        stack, "polling to find v2", lambda f: installed_at(f, "localjobs.jobs.Local", c2), timeout=60
    )
    assert status_of(found["localjobs.jobs.Local"])["effective"]["description"] == "v2"

    # Clear conditions, and no pod, for an unknown ref, a bad URL and a repository without jobs.
    empty = ServedRepo(git_root, workdir, "nojobs")
    empty.commit({"README.md": "no jobs here\n"}, "docs only")
    apply(
        cluster,
        namespace,
        jrepo("badref", repo.file_url, "badref", ref="no-such-branch"),
        jrepo("badurl", "ftp://127.0.0.1/x.git", "badurl"),
        jrepo("nojobs", empty.file_url, "nojobs"),
    )
    expected = {"badref": "RefNotFound", "badurl": "InvalidURL", "nojobs": "NoJobsPackage"}
    for name, reason in expected.items():
        synced = wait_for(
            f"{name} to say {reason}",
            lambda name=name: (
                (c := condition(repository(stack, name), "Synced")).get("status") == "False" and c
            ),
            timeout=90,
        )
        assert synced["reason"] == reason, synced
        assert synced["message"], synced
    assert not [p for p in definitions(stack) if p.startswith(("badref.", "badurl.", "nojobs."))]


# --- GitOps: the same manifests, in two orders, converge; a second apply changes nothing -------------------


def gitops_manifests(stack: Stack, namespace: str, repo: ServedRepo) -> dict[str, list[dict[str, Any]]]:
    queue = stack.default_queue(namespace)
    del queue["metadata"]["namespace"]
    batch = json.loads(json.dumps(queue))
    batch["metadata"]["name"] = "batch"
    batch["spec"]["concurrencyLimit"] = 2
    definition = job_definition(
        "ops-hello",
        classPath="opsjobs.jobs.hello.Hello",
        enabled=True,
        overrides={"description": "from gitops", "taskQueues": ["default", "batch"]},
    )
    # Named as a sync names it: applied after the sync made it, it must not conflict with the operator's
    # (server-side apply refuses to take a field another manager set, such as a defaulted spec.enabled).
    world = job_definition(definition_name("opsjobs.jobs.world.World"), enabled=True)
    return {
        "01-queues.yaml": [queue, batch],
        "02-repository.yaml": [jrepo("ops", repo.file_url, "opsjobs", ref="main", interval="1h")],
        "03-definitions.yaml": [definition, world],
    }


def converged_state(stack: Stack, namespace: str) -> dict[str, Any]:
    """What the manifests and the operator made, without names of the moment (uids, times, versions)."""
    state: dict[str, Any] = {}
    for kind in ("jobqueues", "jobrepositories", "jobdefinitions"):
        for item in stack.cluster.get_json(kind, "-n", namespace)["items"]:
            status = status_of(item)
            kept = {
                k: status.get(k)
                for k in ("classPath", "installed", "effective", "source", "commit", "classPaths")
            }
            state[f"{kind}/{item['metadata']['name']}"] = {"spec": item["spec"], "status": kept}
    return state


def test_gitops_manifests_converge_in_any_order(
    git_stack: Stack, git_root: Path, workdir: Path, tmp_path: Path
) -> None:
    stack, cluster = git_stack, git_stack.cluster
    repo = ServedRepo(git_root, workdir, "opsjobs")
    c1 = repo.commit(
        {
            "jobs/__init__.py": "",
            "jobs/hello.py": job_module("Hello", description="code", version="v1", grouping="ops"),
            "jobs/world.py": job_module("World", description="code", version="v1", grouping="ops"),
        },
        "ops",
    )
    states, folders = [], []
    for suffix, order in zip(GITOPS, (sorted, lambda names: sorted(names, reverse=True)), strict=True):
        namespace = f"{stack.namespace}-{suffix}"
        folder = tmp_path / suffix
        folder.mkdir()
        manifests = gitops_manifests(stack, namespace, repo)
        for file_name, objects in manifests.items():
            (folder / file_name).write_text("\n---\n".join(yaml.safe_dump(obj) for obj in objects))
        for file_name in order(manifests):
            cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(folder / file_name))
            time.sleep(2)  # let the operator act between two files, as a GitOps tool's waves would
        found = wait_definitions(
            stack,
            f"the GitOps definition in {namespace} to be runnable",
            lambda f: (
                installed_at(f, "opsjobs.jobs.hello.Hello", c1)
                and installed_at(f, "opsjobs.jobs.world.World", c1)
                and status_of(f["opsjobs.jobs.hello.Hello"]).get("effective", {}).get("description")
                == "from gitops"
            ),
            namespace=namespace,
        )
        hello = found["opsjobs.jobs.hello.Hello"]
        assert hello["metadata"]["name"] == "ops-hello"
        assert hello["spec"]["enabled"] is True
        # One definition per class, whatever came first (the sync's duplicate goes right after adoption).
        items = wait_for(
            "one definition per class",
            lambda namespace=namespace: (
                i if len(i := cluster.get_json("jobdefinitions", "-n", namespace)["items"]) == 2 else None
            ),
            timeout=30,
        )
        assert [
            i["metadata"]["name"]
            for i in items
            if status_of(i).get("classPath") == "opsjobs.jobs.hello.Hello"
        ] == ["ops-hello"]
        assert len(items) == 2, [i["metadata"]["name"] for i in items]
        world = found["opsjobs.jobs.world.World"]
        assert world["spec"]["enabled"] is True
        assert installed_at(found, "opsjobs.jobs.world.World", c1)
        states.append(converged_state(stack, namespace))
        folders.append((namespace, folder))
    assert states[0] == states[1]

    # Applying the same directory again changes nothing, and a diff shows nothing.
    for namespace, folder in folders:
        generations = {
            f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["generation"]
            for i in cluster.get_json("jobqueues,jobrepositories,jobdefinitions", "-n", namespace)["items"]
        }
        diff = cluster.kubectl("diff", "--server-side", "-n", namespace, "-f", str(folder), check=False)
        assert diff.returncode == 0, diff.stdout + diff.stderr
        assert not diff.stdout.strip()
        cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(folder))
        after = {
            f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["generation"]
            for i in cluster.get_json("jobqueues,jobrepositories,jobdefinitions", "-n", namespace)["items"]
        }
        assert after == generations
