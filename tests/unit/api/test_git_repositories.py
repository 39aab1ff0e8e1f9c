"""Git repositories in the API: URLs, slugs, signatures, payloads, the service on an in-memory apiserver."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from pydantic import SecretStr
from sqlalchemy.orm import Session

from jobplane_api.errors import ApiError, BadRequest, Conflict, NotFound, PermissionDenied, Unavailable
from jobplane_api.identity.principal import Grant, Principal
from jobplane_api.kube import REPOSITORY_DISPLAY_NAME, SYNC_REQUESTED_AT, KubeGateway, find_repository
from jobplane_api.schemas import GitRepositoryWrite
from jobplane_api.services import git_repositories as service
from jobplane_api.services.git_repositories import (
    WebhookUnauthenticated,
    filter_repositories,
    follows,
    matching_repositories,
    normalise_url,
    object_name_from_slug,
    pushed_ref,
    repository_record,
    slug_from_name,
    slug_problem,
    sync_timestamp,
    url_problem,
    verify_signature,
    webhook_urls,
)
from jobplane_api.settings import ApiSettings
from jobplane_crds.v1alpha1 import JobRepository
from jobplane_store.database import create_store_engine, ensure_schema, make_sessionmaker
from jobplane_store.models import JobResult, JobStatus
from tests.builders import job_repository

BASE = "http://api.test"
NOW = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
NAMESPACE = "jobs"
PASSWORD = "hunter2-secret"


# --- an in-memory apiserver for the gateway ---------------------------------------------------------------


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386 JSON merge patch, in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            merge_patch(child, value)
        else:
            target[key] = copy.deepcopy(value)


class FakeCustomObjects:
    """The CustomObjectsApi calls the gateway makes, on dicts; ``served`` are the plurals whose CRD exists."""

    def __init__(self, served: tuple[str, ...] = ("jobrepositories",)) -> None:
        self.served = set(served)
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, Any] | None]] = []
        self.version = 0

    def _check(self, plural: str) -> None:
        if plural not in self.served:
            raise ApiException(status=404, reason="Not Found")

    def _bump(self) -> str:
        self.version += 1
        return str(self.version)

    def list_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, **_: Any
    ) -> dict[str, Any]:
        self._check(plural)
        self.calls.append(("list", plural, None))
        items = [copy.deepcopy(obj) for (kind, _name), obj in sorted(self.objects.items()) if kind == plural]
        return {"metadata": {"resourceVersion": str(self.version)}, "items": items}

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._check(plural)
        self.calls.append(("create", plural, copy.deepcopy(body)))
        name = body["metadata"]["name"]
        if (plural, name) in self.objects:
            raise ApiException(status=409, reason="Conflict")
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            uid=str(uuid.uuid4()),
            creationTimestamp="2026-01-02T03:04:05Z",
            resourceVersion=self._bump(),
            generation=1,
        )
        self.objects[(plural, name)] = obj
        return copy.deepcopy(obj)

    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self._check(plural)
        self.calls.append(("patch", plural, copy.deepcopy(body)))
        obj = self.objects.get((plural, name))
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        spec = copy.deepcopy(obj.get("spec"))
        merge_patch(obj, body)
        if obj.get("spec") != spec:
            obj["metadata"]["generation"] += 1
        obj["metadata"]["resourceVersion"] = self._bump()
        return copy.deepcopy(obj)

    def delete_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any = None
    ) -> dict[str, Any]:
        """As the apiserver: a uid precondition (V1DeleteOptions) must match the object's uid."""
        self._check(plural)
        self.calls.append(("delete", plural, None))
        wanted = getattr(getattr(body, "preconditions", None), "uid", None)
        current = self.objects.get((plural, name))
        if current is not None and wanted is not None and current["metadata"]["uid"] != wanted:
            raise ApiException(status=409, reason="Conflict")
        if self.objects.pop((plural, name), None) is None:
            raise ApiException(status=404, reason="Not Found")
        return {}

    def add(self, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
        """A repository as kubectl would have created it (with the schema's defaults)."""
        full = {"ref": "main", "interval": "5m", "suspend": False, **spec}
        created = self.create_namespaced_custom_object(
            "jobplane.io",
            "v1alpha1",
            NAMESPACE,
            "jobrepositories",
            {"metadata": {"name": name}, "spec": full},
        )
        if status is not None:
            self.objects[("jobrepositories", name)]["status"] = status
            created["status"] = status
        self.calls.clear()
        return created


def fake_gateway(fake: FakeCustomObjects, *, cache_definitions: bool = False) -> KubeGateway:
    """A real gateway whose client is the fake; its informers never start, so reads list the fake.

    ``cache_definitions``: the fake's JobDefinitions are put in the gateway's cache (which an informer
    fills), and the calls made so far forgotten.
    """
    gateway = KubeGateway(ApiSettings(namespace=NAMESPACE, kubernetes=False), api_client=object())
    gateway._custom = fake
    gateway._repositories._api = fake
    gateway.start = lambda: None  # type: ignore[method-assign]
    gateway.stop = lambda: None  # type: ignore[method-assign]
    if cache_definitions:
        for (plural, _name), obj in fake.objects.items():
            if plural == "jobdefinitions":
                gateway._definitions.put(obj)
        fake.calls.clear()
    return gateway


ROOT = Principal(username="root", is_superuser=True, write_enabled=True)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """A session on an empty SQLite store (a sync writes its job result there)."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    ensure_schema(engine)
    with make_sessionmaker(engine)() as opened:
        yield opened
    engine.dispose()


def principal(*actions: str) -> Principal:
    grant = Grant(frozenset({"extras.gitrepository"}), frozenset(actions))
    return Principal(username="ada", write_enabled=True, grants=(grant,))


def write(**fields: Any) -> GitRepositoryWrite:
    return GitRepositoryWrite.model_validate(fields)


def signed(body: bytes, secret: str = "s3cret") -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def repository(
    name: str = "netops",
    *,
    url: str = "https://git.example.com/net/ops.git",
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return job_repository(
        name,
        namespace=NAMESPACE,
        metadata={"uid": "5d0c2a57-8f0e-4b8e-9a36-2c3f2b1e0a11", "creationTimestamp": "2026-01-02T03:04:05Z"},
        status=status,
        **{"url": url, "ref": "main", "slug": name.replace("-", "_"), "interval": "5m", **spec},
    )


# --- URLs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://GitHub.com/Org/Repo.git", "https://github.com/Org/Repo"),
        ("https://github.com/Org/Repo/", "https://github.com/Org/Repo"),
        ("https://github.com/Org/Repo.git/", "https://github.com/Org/Repo"),
        ("HTTPS://user@github.com:443/Org/Repo", "https://github.com/Org/Repo"),
        ("git@github.com:Org/Repo.git", "ssh://github.com/Org/Repo"),
        ("ssh://git@GitHub.com:22/Org/Repo.git", "ssh://github.com/Org/Repo"),
        ("ssh://git@github.com:2222/Org/Repo.git", "ssh://github.com:2222/Org/Repo"),
        ("http://127.0.0.1:8080/netops.git", "http://127.0.0.1:8080/netops"),
        ("file:///srv/git/netops.git", "file:///srv/git/netops"),
        ("https://[::1]/x.git", "https://[::1]/x"),
        ("  https://h/x?ref=y#z  ", "https://h/x"),
        ("http://[abc/x.git", "http://[abc/x.git"),  # broken: kept as it is, never an error
        ("http://h:-1/x", "http://h/x"),
    ],
)
def test_normalise_url(url: str, normalised: str) -> None:
    assert normalise_url(url) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo.git",
        "http://127.0.0.1:8080/netops.git",
        "ssh://git@github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "git://git.example.com/repo",
        "file:///srv/git/repo.git",
    ],
)
def test_urls_git_can_clone_are_accepted(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        f"https://ada:{PASSWORD}@github.com/org/repo.git",
        "https://ghp_token@github.com/org/repo.git",  # over HTTP a user name alone is a token
        f"ssh://git:{PASSWORD}@github.com/org/repo.git",
        f"ada:{PASSWORD}@github.com:org/repo.git",
    ],
)
def test_credentials_in_a_url_are_refused_pointing_at_secrets_group(url: str) -> None:
    problem = url_problem(url)
    assert problem is not None
    assert "secrets_group" in problem
    assert PASSWORD not in problem


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "blank"),
        ("ftp://h/x", "scheme"),
        ("--upload-pack=touch /tmp/x", "spaces"),
        ("-oProxyCommand=x", "'-'"),
        ("https://", "no host"),
        ("http://h:99999/x", "port"),
        ("just-a-name", "Git URL"),
        ("https://h/x\n", "control"),
        ("https://h/" + "x" * 3000, "2048"),
        ("http://[abc/x", "IPv6"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, words: str) -> None:
    problem = url_problem(url)
    assert problem is not None
    assert words in problem


def test_slugs() -> None:
    # Nautobot's slugify_dashes_to_underscores: Django's slugify drops punctuation, "a" before a digit.
    assert slug_from_name("Acceptance Seed Jobs") == "acceptance_seed_jobs"
    assert slug_from_name("net-ops.v2") == "net_opsv2"
    assert slug_from_name("2fast") == "a2fast"
    assert slug_from_name("  Café  Ops -- v2 ") == "a_cafe_ops_v2"
    assert slug_from_name("_private") == "private"
    assert len(slug_from_name("x" * 300)) == 63
    assert object_name_from_slug("acceptance_seed_jobs") == "acceptance-seed-jobs"
    assert object_name_from_slug("_Net__Ops_") == "net-ops"
    assert slug_problem("net_ops") is None
    assert "identifier" in (slug_problem("2fast") or "")
    assert "identifier" in (slug_problem("class") or "")
    assert "identifier" in (slug_problem("net-ops") or "")
    assert "installed Python module" in (slug_problem("json") or "")
    assert "installed Python module" in (slug_problem("jobplane") or "")


def test_the_sync_request_is_rfc3339_utc_with_microseconds() -> None:
    assert sync_timestamp(NOW) == "2026-03-04T05:06:07.890123Z"
    assert sync_timestamp(NOW.replace(microsecond=0)) == "2026-03-04T05:06:07.000000Z"


# --- the webhook's signature and payloads -------------------------------------------------------------------


def test_a_good_signature_passes() -> None:
    body = b'{"repository": {}}'
    verify_signature(SecretStr("s3cret"), body, signed(body))
    verify_signature(SecretStr("s3cret"), body, signed(body).upper().replace("SHA256=", "sha256="))


def test_without_a_secret_the_webhook_is_off_and_says_which_setting_to_set() -> None:
    for secret in (None, SecretStr("")):
        with pytest.raises(PermissionDenied, match="JOBPLANE_API_GIT_WEBHOOK_SECRET"):
            verify_signature(secret, b"{}", signed(b"{}"))


def test_a_missing_signature_is_401() -> None:
    with pytest.raises(WebhookUnauthenticated) as caught:
        verify_signature(SecretStr("s3cret"), b"{}", None)
    assert caught.value.status_code == 401
    assert "X-Hub-Signature-256" in caught.value.detail


@pytest.mark.parametrize(
    "signature",
    [
        signed(b"{}", "other"),
        signed(b"{ }"),  # of another body
        signed(b"{}").removeprefix("sha256="),  # no algorithm
        "sha1=" + hmac.new(b"s3cret", b"{}", hashlib.sha1).hexdigest(),
        "sha256=zz",
        "sha256=é",  # not ASCII: compared, not crashed on
    ],
)
def test_a_wrong_signature_is_403(signature: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        verify_signature(SecretStr("s3cret"), b"{}", signature)
    assert caught.value.status_code == 403
    assert "does not match" in caught.value.detail


GITHUB_PUSH = {
    "ref": "refs/heads/main",
    "repository": {
        "clone_url": "https://github.com/Org/Repo.git",
        "ssh_url": "git@github.com:Org/Repo.git",
        "html_url": "https://github.com/Org/Repo",
        "url": "https://github.com/Org/Repo",
    },
}
GITLAB_PUSH = {
    "object_kind": "push",
    "project": {
        "git_http_url": "https://gitlab.example.com/group/proj.git",
        "git_ssh_url": "git@gitlab.example.com:group/proj.git",
        "web_url": "https://gitlab.example.com/group/proj",
    },
    "repository": {"url": "git@gitlab.example.com:group/proj.git", "homepage": "ignored"},
}


def test_webhook_urls_of_github_and_gitlab_payloads() -> None:
    assert webhook_urls(GITHUB_PUSH) == {"https://github.com/Org/Repo", "ssh://github.com/Org/Repo"}
    assert webhook_urls(GITLAB_PUSH) == {
        "https://gitlab.example.com/group/proj",
        "ssh://gitlab.example.com/group/proj",
    }
    assert webhook_urls({"repository": "x", "project": {"web_url": 3}}) == set()


def test_repositories_match_by_normalised_url_and_suspended_ones_are_left_out() -> None:
    repositories = [
        repository("by-https", url="https://github.com/Org/Repo"),
        repository("by-ssh", url="ssh://git@github.com/Org/Repo.git"),
        repository("other", url="https://github.com/Org/Other.git"),
        repository("paused", url="https://github.com/Org/Repo.git", suspend=True),
        repository("case", url="https://github.com/org/repo.git"),  # paths keep their case
    ]
    typed = [JobRepository.model_validate(repository) for repository in repositories]
    assert matching_repositories(typed, webhook_urls(GITHUB_PUSH)) == ["by-https", "by-ssh"]


def test_a_push_syncs_only_the_repositories_that_follow_the_pushed_branch_or_tag() -> None:
    url = "https://github.com/Org/Repo.git"
    given = [
        repository("main", url=url),
        repository("release", url=url, ref="release"),
        repository("tagged", url=url, ref="v1.2"),
        repository("pinned", url=url, ref="a" * 40),
        repository("full", url=url, ref="refs/heads/main"),
    ]
    urls = webhook_urls(GITHUB_PUSH)
    repositories = [JobRepository.model_validate(repository) for repository in given]
    assert matching_repositories(repositories, urls, pushed_ref(GITHUB_PUSH)) == ["full", "main"]
    assert matching_repositories(repositories, urls, "refs/tags/v1.2") == ["tagged"]
    assert matching_repositories(repositories, urls, "refs/heads/feature") == []
    # A payload that names no ref (a ping) may have moved any branch or tag, never a commit.
    assert pushed_ref(GITLAB_PUSH) is None
    assert pushed_ref({"ref": "main"}) is None  # not a full ref: not trusted as one
    assert matching_repositories(repositories, urls, None) == ["full", "main", "release", "tagged"]
    assert follows("v1.2", "refs/tags/v1.2")
    assert not follows("main", "refs/heads/mainline")


# --- records ------------------------------------------------------------------------------------------------


def test_a_record_has_nautobots_fields_and_the_sync_state() -> None:
    status = {
        "commit": "a" * 40,
        "lastSyncTime": "2026-01-03T00:00:00Z",
        "classPaths": ["netops.jobs.hello.Hello"],
        "importErrors": {"netops.jobs.broken": "jobs/broken.py, line 3: invalid syntax"},
        "conditions": [
            {
                "type": "Synced",
                "status": "True",
                "reason": "Synced",
                "message": "2 jobs at aaaa",
                "lastTransitionTime": "2026-01-03T00:00:00Z",
            },
            {
                "type": "Degraded",
                "status": "True",
                "reason": "ImportErrors",
                "message": "1 module failed",
                "lastTransitionTime": "2026-01-03T00:00:00Z",
            },
        ],
    }
    record = repository_record(repository(status=status, credentialsSecretRef="git-creds"), BASE).model_dump(
        mode="json"
    )
    uid = "5d0c2a57-8f0e-4b8e-9a36-2c3f2b1e0a11"
    assert record == {
        "id": uid,
        "object_type": "extras.gitrepository",
        "display": "netops",
        "url": f"{BASE}/api/extras/git-repositories/{uid}/",
        "name": "netops",
        "slug": "netops",
        "remote_url": "https://git.example.com/net/ops.git",
        "branch": "main",
        "secrets_group": "git-creds",
        "provided_contents": ["extras.job"],
        "current_head": "a" * 40,
        "created": "2026-01-02T03:04:05Z",
        "last_updated": "2026-01-03T00:00:00Z",
        "interval": "5m",
        "suspend": False,
        "status": {
            "synced": True,
            "degraded": True,
            "message": "1 module failed",
            "class_paths": ["netops.jobs.hello.Hello"],
            "import_errors": {"netops.jobs.broken": "jobs/broken.py, line 3: invalid syntax"},
            "last_sync_time": "2026-01-03T00:00:00Z",
        },
        "job_repository": {"namespace": NAMESPACE, "name": "netops"},
        "tags": [],
        "custom_fields": {},
    }


def test_a_record_shows_the_name_it_was_given_and_its_object_name() -> None:
    given = repository("acceptance-seed-jobs")
    given["metadata"]["annotations"] = {REPOSITORY_DISPLAY_NAME: "Acceptance Seed Jobs"}
    named = JobRepository.model_validate(given)
    record = repository_record(named, BASE)
    assert (record.name, record.display, record.job_repository.name) == (
        "Acceptance Seed Jobs",
        "Acceptance Seed Jobs",
        "acceptance-seed-jobs",
    )
    other = JobRepository.model_validate(repository("other"))
    assert find_repository([other, named], "Acceptance Seed Jobs") is named
    assert find_repository([named], "acceptance-seed-jobs") is named


def test_a_record_before_its_first_sync() -> None:
    record = repository_record(repository(), BASE)
    assert (record.current_head, record.secrets_group, record.last_updated) == ("", None, record.created)
    assert record.status.model_dump() == {
        "synced": False,
        "degraded": False,
        "message": None,
        "class_paths": [],
        "import_errors": {},
        "last_sync_time": None,
    }
    failing = repository(
        status={
            "conditions": [
                {
                    "type": "Synced",
                    "status": "False",
                    "reason": "RefNotFound",
                    "message": "RefNotFound: no ref x",
                    "lastTransitionTime": "2026-01-03T00:00:00Z",
                }
            ]
        }
    )
    assert repository_record(failing, BASE).status.message == "RefNotFound: no ref x"


def test_filters() -> None:
    records = [
        repository_record(repository("a", url="https://h/a.git"), BASE),
        repository_record(repository("b", url="git@h:b.git", ref="dev"), BASE),
    ]
    names = lambda filters: [r.name for r in filter_repositories(records, filters)]  # noqa: E731
    assert names({"name": ["b"]}) == ["b"]
    assert names({"slug": ["a", "b"]}) == ["a", "b"]
    assert names({"remote_url": ["https://h/a"]}) == ["a"]
    assert names({"remote_url": ["ssh://h/b"]}) == ["b"]
    assert names({"branch": ["dev"]}) == ["b"]
    assert names({"limit": ["1"], "unknown": ["x"]}) == ["a", "b"]


# --- the gateway --------------------------------------------------------------------------------------------


def test_find_repository_by_uid_then_name() -> None:
    one, two = (
        JobRepository.model_validate(repository("one")),
        JobRepository.model_validate(repository("two")),
    )
    two.metadata.uid = "one"
    assert find_repository([one, two], "one") is two
    assert find_repository([one, two], str(one.metadata.uid)) is one
    assert find_repository([one], "missing") is None


def test_a_sync_request_patches_only_the_annotation() -> None:
    fake = FakeCustomObjects()
    fake.add("netops", {"url": "https://h/x", "slug": "netops"})
    gateway = fake_gateway(fake)
    updated = gateway.request_sync("netops", "2026-03-04T05:06:07.890123Z")
    assert fake.calls == [
        (
            "patch",
            "jobrepositories",
            {"metadata": {"annotations": {SYNC_REQUESTED_AT: "2026-03-04T05:06:07.890123Z"}}},
        )
    ]
    assert updated.metadata.generation == 1
    assert updated.metadata.annotations == {"jobplane.io/sync-requested-at": "2026-03-04T05:06:07.890123Z"}


# --- the service --------------------------------------------------------------------------------------------


def test_create_writes_the_spec_with_defaults_and_a_slug_from_the_name() -> None:
    fake = FakeCustomObjects()
    gateway = fake_gateway(fake)
    record = service.create_repository(
        kube=gateway,
        principal=ROOT,
        write=write(name="net-ops", remote_url="https://h/net.git", secrets_group="git-creds"),
        base_url=BASE,
    )
    (_, plural, body) = next(call for call in fake.calls if call[0] == "create")
    assert plural == "jobrepositories"
    assert body == {
        "apiVersion": "jobplane.io/v1alpha1",
        "kind": "JobRepository",
        "metadata": {
            "name": "net-ops",
            "namespace": NAMESPACE,
            "annotations": {REPOSITORY_DISPLAY_NAME: "net-ops"},
        },
        "spec": {
            "url": "https://h/net.git",
            "ref": "main",
            "slug": "net_ops",
            "interval": "5m",
            "suspend": False,
            "credentialsSecretRef": "git-creds",
        },
    }
    assert (record.name, record.slug, record.branch, record.secrets_group) == (
        "net-ops",
        "net_ops",
        "main",
        "git-creds",
    )


def test_create_refuses_bad_fields_as_a_field_dict() -> None:
    gateway = fake_gateway(FakeCustomObjects())
    with pytest.raises(BadRequest) as caught:
        service.create_repository(
            kube=gateway,
            principal=ROOT,
            write=write(
                name="   ",
                remote_url=f"https://ada:{PASSWORD}@h/x.git",
                branch="-x",
                slug="2x",
                interval="5 minutes",
                secrets_group="Bad_Name",
                provided_contents=["extras.configcontext"],
            ),
            base_url=BASE,
        )
    body = caught.value.body()
    assert set(body) == {
        "name",
        "remote_url",
        "branch",
        "slug",
        "interval",
        "secrets_group",
        "provided_contents",
    }
    assert all(isinstance(messages, list) and messages for messages in body.values())
    assert body["name"] == ["This field may not be blank."]
    assert PASSWORD not in json.dumps(body)
    with pytest.raises(BadRequest) as missing:
        service.create_repository(kube=gateway, principal=ROOT, write=write(), base_url=BASE)
    assert missing.value.body() == {
        "name": ["This field is required."],
        "remote_url": ["This field is required."],
    }


def test_create_and_patch_ignore_read_only_and_unknown_keys_as_nautobot_does() -> None:
    fake = FakeCustomObjects()
    gateway = fake_gateway(fake)
    ignored = {"id": "x", "current_head": "abc", "status": {"synced": True}, "colour": "blue"}
    created = service.create_repository(
        kube=gateway,
        principal=ROOT,
        write=write(name="net-ops", remote_url="https://h/net.git", **ignored),
        base_url=BASE,
    )
    (_, _, body) = next(call for call in fake.calls if call[0] == "create")
    assert set(body["spec"]) == {"url", "ref", "slug", "interval", "suspend"}
    assert created.current_head == ""
    fake.calls.clear()
    service.update_repository(
        kube=gateway, principal=ROOT, key="net-ops", write=write(branch="dev", **ignored), base_url=BASE
    )
    assert [call for call in fake.calls if call[0] == "patch"] == [
        ("patch", "jobrepositories", {"spec": {"ref": "dev"}})
    ]


def test_create_refuses_a_taken_name_or_slug() -> None:
    fake = FakeCustomObjects()
    fake.add("netops", {"url": "https://h/x", "slug": "netops"})
    gateway = fake_gateway(fake)
    with pytest.raises(BadRequest) as caught:
        service.create_repository(
            kube=gateway, principal=ROOT, write=write(name="netops", remote_url="https://h/y"), base_url=BASE
        )
    assert caught.value.body() == {
        "name": ["Git repository with this name already exists."],
        "slug": ["Git repository with this slug already exists."],
    }
    with pytest.raises(BadRequest) as caught:
        service.create_repository(
            kube=gateway,
            principal=ROOT,
            write=write(name="other", slug="netops", remote_url="https://h/y"),
            base_url=BASE,
        )
    assert caught.value.body() == {"slug": ["Git repository with this slug already exists."]}
    # Another slug that makes the same object name (netops -> netops) is refused, naming the holder.
    with pytest.raises(BadRequest) as caught:
        service.create_repository(
            kube=gateway,
            principal=ROOT,
            write=write(name="Other", slug="NetOps", remote_url="https://h/y"),
            base_url=BASE,
        )
    assert "'netops'" in caught.value.body()["slug"][0]
    # A slug that is the module of an installed image job would mix the two.
    gateway._definitions.put(
        {
            "metadata": {"name": "hello", "uid": "u", "resourceVersion": "1"},
            "status": {"classPath": "hello_world.HelloWorld", "installed": True, "source": {"type": "image"}},
        }
    )
    with pytest.raises(BadRequest) as caught:
        service.create_repository(
            kube=gateway,
            principal=ROOT,
            write=write(name="hello-world", remote_url="https://h/y"),
            base_url=BASE,
        )
    assert "hello_world.HelloWorld" in caught.value.body()["slug"][0]


def test_a_remote_url_provides_jobs_once_as_nautobot_refuses_overlapping_contents() -> None:
    fake = FakeCustomObjects()
    fake.add("netops", {"url": "https://h/x.git", "slug": "netops"})
    other = fake.add("other", {"url": "https://h/y.git", "slug": "other"})
    gateway = fake_gateway(fake)

    def refused(call: Any, **kwargs: Any) -> dict[str, Any]:
        with pytest.raises(BadRequest) as caught:
            call(kube=gateway, principal=ROOT, base_url=BASE, **kwargs)
        body: dict[str, Any] = caught.value.body()
        return body

    # Another ref of the same URL would provide the same jobs: refused as a whole, not per field.
    body = refused(
        service.create_repository, write=write(name="x-dev", remote_url="https://h/x.git", branch="dev")
    )
    assert list(body) == ["non_field_errors"]
    assert "https://h/x.git" in body["non_field_errors"][0]
    assert "netops" not in body["non_field_errors"][0]  # the holder may be hidden from the caller
    # Field errors come first, as Nautobot validates the model only once its fields are valid.
    assert list(
        refused(service.create_repository, write=write(name="netops", remote_url="https://h/x.git"))
    ) == [
        "name",
        "slug",
    ]
    # Compared as written, as Nautobot compares it.
    service.create_repository(
        kube=gateway,
        principal=ROOT,
        write=write(name="x-slash", remote_url="https://h/x.git/"),
        base_url=BASE,
    )
    # A change to a URL in use is refused; a change that keeps the repository's own URL is not.
    body = refused(service.update_repository, key="other", write=write(remote_url="https://h/x.git"))
    assert list(body) == ["non_field_errors"]
    changed = service.update_repository(
        kube=gateway, principal=ROOT, key=other["metadata"]["uid"], write=write(branch="dev"), base_url=BASE
    )
    assert (changed.remote_url, changed.branch) == ("https://h/y.git", "dev")


def test_create_without_the_crd_is_unavailable() -> None:
    gateway = fake_gateway(FakeCustomObjects(served=()))
    with pytest.raises(Unavailable, match="CRD"):
        service.create_repository(
            kube=gateway, principal=ROOT, write=write(name="x", remote_url="https://h/x"), base_url=BASE
        )


def test_patch_sends_only_what_changed_and_keeps_name_and_slug() -> None:
    fake = FakeCustomObjects()
    created = fake.add("netops", {"url": "https://h/x", "slug": "netops", "credentialsSecretRef": "creds"})
    gateway = fake_gateway(fake)
    record = service.update_repository(
        kube=gateway,
        principal=ROOT,
        key=created["metadata"]["uid"],
        write=write(name="netops", slug="netops", branch="dev", interval="5m", secrets_group=None),
        base_url=BASE,
    )
    assert fake.calls[-1] == (
        "patch",
        "jobrepositories",
        {"spec": {"ref": "dev", "credentialsSecretRef": None}},
    )
    assert (record.branch, record.secrets_group) == ("dev", None)
    # A record sent back as read changes nothing.
    fake.calls.clear()
    service.update_repository(
        kube=gateway,
        principal=ROOT,
        key="netops",
        write=write(**record.model_dump(mode="json")),
        base_url=BASE,
    )
    assert [call for call in fake.calls if call[0] == "patch"] == []
    with pytest.raises(BadRequest) as caught:
        service.update_repository(
            kube=gateway, principal=ROOT, key="netops", write=write(name="new", slug="new"), base_url=BASE
        )
    assert caught.value.body() == {
        "slug": ["Slug cannot be changed once set. Current slug is netops, requested slug is new"]
    }
    with pytest.raises(BadRequest) as caught:
        service.update_repository(
            kube=gateway,
            principal=ROOT,
            key="netops",
            write=write(remote_url=None, suspend=None),
            base_url=BASE,
        )
    assert caught.value.body() == {
        "remote_url": ["This field may not be null."],
        "suspend": ["This field may not be null."],
    }


def test_sync_sets_the_annotation_and_answers_with_a_pending_job_result(session: Session) -> None:
    fake = FakeCustomObjects()
    created = fake.add("netops", {"url": "https://h/x", "slug": "netops"})
    fake.objects[("jobrepositories", "netops")]["metadata"]["annotations"] = {
        REPOSITORY_DISPLAY_NAME: "Net Ops"
    }
    gateway = fake_gateway(fake)
    answer = service.sync_repository(
        kube=gateway, session=session, principal=ROOT, key="Net Ops", base_url=BASE, now=NOW
    ).model_dump(mode="json")
    assert answer["message"] == "Repository Net Ops sync job added to queue."
    result = answer["job_result"]
    assert (result["name"], result["task_name"], result["status"], result["date_done"]) == (
        "Git Repository: Sync",
        "nautobot.core.jobs.GitRepositorySync",
        {"value": "PENDING", "label": "PENDING"},
        None,
    )
    assert result["url"] == f"{BASE}/api/extras/job-results/{result['id']}/"
    assert result["task_kwargs"] == {
        "repository": created["metadata"]["uid"],
        "sync_requested_at": "2026-03-04T05:06:07.890123Z",
    }
    assert result["requested_by"] == "root"
    row = session.get(JobResult, uuid.UUID(result["id"]))
    assert row is not None
    assert row.status == JobStatus.PENDING
    stored = fake.objects[("jobrepositories", "netops")]
    assert stored["metadata"]["annotations"][SYNC_REQUESTED_AT] == "2026-03-04T05:06:07.890123Z"
    assert stored["metadata"]["generation"] == 1
    fake.add("paused", {"url": "https://h/y", "slug": "paused", "suspend": True})
    with pytest.raises(Conflict, match="suspended"):
        service.sync_repository(
            kube=gateway, session=session, principal=ROOT, key="paused", base_url=BASE, now=NOW
        )


@pytest.mark.parametrize(
    ("actions", "call", "expected"),
    [
        ((), "list", PermissionDenied),
        (("view",), "create", PermissionDenied),
        (("view",), "sync", PermissionDenied),
        (("view",), "delete", PermissionDenied),
        (("add",), "get", PermissionDenied),
        (("view",), "missing", NotFound),
        (("view", "change"), "sync", None),
        (("delete",), "delete", None),
    ],
)
def test_permissions(
    actions: tuple[str, ...], call: str, expected: type[ApiError] | None, session: Session
) -> None:
    fake = FakeCustomObjects()
    fake.add("netops", {"url": "https://h/x", "slug": "netops"})
    gateway = fake_gateway(fake)
    who = principal(*actions)
    calls = {
        "list": lambda: service.list_repositories(kube=gateway, principal=who, base_url=BASE, filters={}),
        "get": lambda: service.lookup_repository(kube=gateway, principal=who, key="netops", base_url=BASE),
        "missing": lambda: service.lookup_repository(kube=gateway, principal=who, key="nope", base_url=BASE),
        "create": lambda: service.create_repository(
            kube=gateway, principal=who, write=write(name="x", remote_url="https://h/x"), base_url=BASE
        ),
        "sync": lambda: service.sync_repository(
            kube=gateway, session=session, principal=who, key="netops", base_url=BASE, now=NOW
        ),
        "delete": lambda: service.delete_repository(kube=gateway, principal=who, key="netops", base_url=BASE),
    }
    if expected is None:
        calls[call]()
    else:
        with pytest.raises(expected):
            calls[call]()


def test_the_webhook_requests_a_sync_of_each_matching_repository() -> None:
    fake = FakeCustomObjects()
    fake.add("by-https", {"url": "https://github.com/Org/Repo.git", "slug": "a"})
    fake.add("by-ssh", {"url": "git@github.com:Org/Repo.git", "slug": "b"})
    fake.add("other", {"url": "https://github.com/Org/Other.git", "slug": "c"})
    gateway = fake_gateway(fake)
    body = json.dumps(GITHUB_PUSH).encode()
    answer = service.handle_webhook(
        kube=gateway,
        secret=SecretStr("s3cret"),
        body=body,
        content_type="application/json",
        signature=signed(body),
        now=NOW,
    )
    assert answer.synced == ["by-https", "by-ssh"]
    annotated = {
        name: obj["metadata"].get("annotations", {}).get(SYNC_REQUESTED_AT)
        for (_, name), obj in fake.objects.items()
    }
    assert annotated == {"by-https": sync_timestamp(NOW), "by-ssh": sync_timestamp(NOW), "other": None}


def test_the_webhook_takes_githubs_form_encoding_and_refuses_bad_json() -> None:
    fake = FakeCustomObjects()
    fake.add("by-https", {"url": "https://github.com/Org/Repo.git", "slug": "a"})
    gateway = fake_gateway(fake)
    from urllib.parse import urlencode

    form = urlencode({"payload": json.dumps(GITHUB_PUSH)}).encode()
    answer = service.handle_webhook(
        kube=gateway,
        secret=SecretStr("s3cret"),
        body=form,
        content_type="application/x-www-form-urlencoded",
        signature=signed(form),
        now=NOW,
    )
    assert answer.synced == ["by-https"]
    for bad in (b"{", b"[1]"):
        with pytest.raises(BadRequest):
            service.handle_webhook(
                kube=gateway,
                secret=SecretStr("s3cret"),
                body=bad,
                content_type="application/json",
                signature=signed(bad),
                now=NOW,
            )


# --- Nautobot's payload -------------------------------------------------------------------------------------

NAUTOBOT_PAYLOAD = {
    "name": "Acceptance Seed Jobs",
    "slug": "acceptance_seed_jobs",
    "remote_url": "https://git.example.com/acceptance/seed-jobs.git",
    "branch": "main",
    "provided_contents": ["extras.job"],
}


def test_nautobots_payload_keeps_the_name_and_names_the_object_after_the_slug() -> None:
    fake = FakeCustomObjects()
    gateway = fake_gateway(fake)
    record = service.create_repository(
        kube=gateway, principal=ROOT, write=write(**NAUTOBOT_PAYLOAD), base_url=BASE
    ).model_dump(mode="json")
    stored = fake.objects[("jobrepositories", "acceptance-seed-jobs")]
    assert stored["metadata"]["annotations"] == {REPOSITORY_DISPLAY_NAME: "Acceptance Seed Jobs"}
    assert stored["spec"]["slug"] == "acceptance_seed_jobs"
    assert {key: record[key] for key in (*NAUTOBOT_PAYLOAD, "display", "job_repository")} == {
        **NAUTOBOT_PAYLOAD,
        "display": "Acceptance Seed Jobs",
        "job_repository": {"namespace": NAMESPACE, "name": "acceptance-seed-jobs"},
    }
    # Without a slug, Nautobot's is made from the name; and the name is stripped as DRF strips it.
    other = service.create_repository(
        kube=gateway,
        principal=ROOT,
        write=write(name="  Second Seed Jobs ", remote_url="https://h/second.git"),
        base_url=BASE,
    )
    assert (other.name, other.slug, other.job_repository.name) == (
        "Second Seed Jobs",
        "second_seed_jobs",
        "second-seed-jobs",
    )
    for key in ("Acceptance Seed Jobs", "acceptance-seed-jobs", record["id"]):
        assert service.lookup_repository(kube=gateway, principal=ROOT, key=key, base_url=BASE)[1].slug == (
            "acceptance_seed_jobs"
        )
    listed = service.list_repositories(
        kube=gateway, principal=ROOT, base_url=BASE, filters={"name": ["Acceptance Seed Jobs"]}
    )
    assert [repo.slug for repo in listed] == ["acceptance_seed_jobs"]


@pytest.mark.parametrize(
    ("contents", "messages"),
    [
        (["extras.job"], None),
        (
            ["extras.job", "extras.configcontext"],
            [
                "Only jobs (extras.job) are provided by Git repositories here, not extras.configcontext: "
                "remove it, or keep that content in Nautobot."
            ],
        ),
        (["extras.jobs"], ['"extras.jobs" is not a valid choice.']),
        ([], ["Git repositories here provide jobs: include extras.job."]),
        (None, ["This field may not be null."]),
    ],
)
def test_provided_contents_other_than_jobs_are_refused_not_ignored(
    contents: list[str] | None, messages: list[str] | None
) -> None:
    gateway = fake_gateway(FakeCustomObjects())
    payload = {**NAUTOBOT_PAYLOAD, "provided_contents": contents}
    if messages is None:
        service.create_repository(kube=gateway, principal=ROOT, write=write(**payload), base_url=BASE)
        return
    with pytest.raises(BadRequest) as caught:
        service.create_repository(kube=gateway, principal=ROOT, write=write(**payload), base_url=BASE)
    assert caught.value.body() == {"provided_contents": messages}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "This field may not be blank."),
        ("x" * 256, "Ensure this field has no more than 255 characters."),
        ("a\x00b", "Null characters are not allowed."),
        (None, "This field may not be null."),
    ],
)
def test_bad_names_get_drfs_messages(name: str | None, message: str) -> None:
    gateway = fake_gateway(FakeCustomObjects())
    payload = {**NAUTOBOT_PAYLOAD, "name": name}
    with pytest.raises(BadRequest) as caught:
        service.create_repository(kube=gateway, principal=ROOT, write=write(**payload), base_url=BASE)
    assert caught.value.body() == {"name": [message]}


def test_a_rename_changes_the_annotation_only_and_must_stay_unique() -> None:
    fake = FakeCustomObjects()
    gateway = fake_gateway(fake)
    service.create_repository(kube=gateway, principal=ROOT, write=write(**NAUTOBOT_PAYLOAD), base_url=BASE)
    service.create_repository(
        kube=gateway, principal=ROOT, write=write(name="Other", remote_url="https://h/o"), base_url=BASE
    )
    fake.calls.clear()
    renamed = service.update_repository(
        kube=gateway,
        principal=ROOT,
        key="Acceptance Seed Jobs",
        write=write(name="Seed Jobs", slug="acceptance_seed_jobs"),
        base_url=BASE,
    )
    assert [call for call in fake.calls if call[0] != "list"] == [
        ("patch", "jobrepositories", {"metadata": {"annotations": {REPOSITORY_DISPLAY_NAME: "Seed Jobs"}}})
    ]
    assert (renamed.name, renamed.slug, renamed.job_repository.name) == (
        "Seed Jobs",
        "acceptance_seed_jobs",
        "acceptance-seed-jobs",
    )
    with pytest.raises(BadRequest) as caught:
        service.update_repository(
            kube=gateway, principal=ROOT, key="Seed Jobs", write=write(name="Other"), base_url=BASE
        )
    assert caught.value.body() == {"name": ["Git repository with this name already exists."]}
