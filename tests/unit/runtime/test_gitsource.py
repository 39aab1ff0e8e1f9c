"""gitsource's pure parts: URL and slug checks, ref picking, git's environment, credentials, scrubbing."""

from __future__ import annotations

import base64
import shutil
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from jobplane_runtime import gitsource
from jobplane_runtime.gitsource import (
    GitCredentials,
    GitSourceError,
    build_git_env,
    credentials_from_secret,
    load_credentials,
    parse_ls_remote,
    pick_ref,
    resolve_ref,
    scrub_secrets,
    validate_slug,
    validate_url,
)

PASSWORD = "ghp_Pa55w0rdT0ken-xyz"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU="
KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
KNOWN_HOSTS = (
    "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
)
SHA_MAIN = "1" * 40
SHA_DEV = "2" * 40
SHA_TAG_OBJECT = "3" * 40
SHA_TAGGED = "4" * 40
SHA_LIGHT = "5" * 40
SHA_PULL = "6" * 40

LS_REMOTE = f"""\
{SHA_MAIN}\tHEAD
{SHA_MAIN}\trefs/heads/main
{SHA_DEV}\trefs/heads/dev
{SHA_LIGHT}\trefs/heads/v1.0
{SHA_TAG_OBJECT}\trefs/tags/v2.0
{SHA_TAGGED}\trefs/tags/v2.0^{{}}
{SHA_PULL}\trefs/tags/v1.0
{SHA_LIGHT}\trefs/tags/light
{SHA_PULL}\trefs/pull/7/head
warning: something git printed
"""


# --- URLs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/jobs.git",
        "http://127.0.0.1:8080/jobs.git",
        "https://git.example.com:8443/group/sub/jobs",
        "https://ann@git.example.com/jobs.git",  # a user name alone is no secret
        "ssh://git@github.com/acme/jobs.git",
        "ssh://git@[::1]:2222/jobs.git",
        "git@github.com:acme/jobs.git",
        "github.com:acme/jobs.git",
    ],
)
def test_urls_git_can_fetch_are_accepted(url: str) -> None:
    validate_url(url, allow_file=False)


def test_file_urls_only_when_allowed() -> None:
    validate_url("file:///srv/git/jobs.git", allow_file=True)
    with pytest.raises(GitSourceError, match="file:// URLs are not allowed here") as caught:
        validate_url("file:///srv/git/jobs.git", allow_file=False)
    assert caught.value.reason == "InvalidURL"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "the URL is empty"),
        ("   ", "the URL is empty"),
        ("https://github.com/acme/my jobs.git", "whitespace"),
        ("https://github.com/acme/jobs.git\n", "whitespace"),
        (f"https://ann:{PASSWORD}@github.com/acme/jobs.git", "credentialsSecretRef"),
        (f"ann:{PASSWORD}@github.com:acme/jobs.git", "credentialsSecretRef"),
        ("ftp://example.com/jobs.git", "the scheme ftp:// is not supported"),
        ("git://example.com/jobs.git", "the scheme git:// is not supported"),
        ("https:///jobs.git", "names no host"),
        ("https://github.com", "names no repository path"),
        ("https://github.com:99999/acme/jobs.git", "port"),
        ("file://server/srv/jobs.git", "names no host"),
        ("/srv/git/jobs.git", "not a URL git can fetch"),
        ("jobs", "not a URL git can fetch"),
        ("ext::sh", "remote helpers"),
        ("--upload-pack=touch", "starts with '-'"),
        ("ssh://-oProxyCommand=touch/jobs.git", "starts with '-'"),
        ("-oProxyCommand=x@host:jobs.git", "starts with '-'"),
    ],
)
def test_urls_are_refused_with_a_reason(url: str, problem: str) -> None:
    with pytest.raises(GitSourceError) as caught:
        validate_url(url, allow_file=True)
    assert caught.value.reason == "InvalidURL"
    assert problem in caught.value.message
    assert PASSWORD not in caught.value.message


# --- slugs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["1jobs", "acme-jobs", "class", "", "acme.jobs", "jöbs"])
def test_slugs_must_be_identifiers(slug: str) -> None:
    with pytest.raises(GitSourceError) as caught:
        validate_slug(slug)
    assert caught.value.reason == "InvalidSlug"


@pytest.mark.parametrize(
    ("slug", "where"),
    [("json", "json/__init__.py"), ("sys", "built-in"), ("jobplane", "jobplane"), ("pytest", "pytest")],
)
def test_slugs_that_shadow_an_importable_module_conflict(slug: str, where: str) -> None:
    with pytest.raises(GitSourceError) as caught:
        validate_slug(slug)
    assert caught.value.reason == "SlugConflict"
    assert where in caught.value.message
    assert "choose another slug" in caught.value.message


def test_a_free_slug_is_accepted() -> None:
    validate_slug("acme_network_jobs_x")


def test_a_slug_checked_for_its_form_only_may_name_an_importable_module() -> None:
    validate_slug("json", shadowing=False)
    with pytest.raises(GitSourceError) as caught:
        validate_slug("class", shadowing=False)
    assert caught.value.reason == "InvalidSlug"


# --- refs -----------------------------------------------------------------------------------------


def test_ls_remote_output_is_parsed_skipping_noise() -> None:
    refs = parse_ls_remote(LS_REMOTE + "abc\trefs/heads/short\n")
    assert refs["HEAD"] == SHA_MAIN
    assert refs["refs/tags/v2.0^{}"] == SHA_TAGGED
    assert "refs/heads/short" not in refs
    assert len(refs) == 9


@pytest.mark.parametrize(
    ("ref", "commit"),
    [
        ("main", SHA_MAIN),
        ("dev", SHA_DEV),
        ("HEAD", SHA_MAIN),
        ("v2.0", SHA_TAGGED),  # an annotated tag is peeled to its commit
        ("light", SHA_LIGHT),
        ("v1.0", SHA_LIGHT),  # a branch wins over a tag of the same name
        ("refs/tags/v1.0", SHA_PULL),
        ("refs/tags/v2.0", SHA_TAGGED),
        ("refs/pull/7/head", SHA_PULL),
        ("pull/7/head", None),
        ("nope", None),
        ("refs/heads/nope", None),
    ],
)
def test_pick_ref_prefers_branches_then_tags_then_full_names(ref: str, commit: str | None) -> None:
    assert pick_ref(parse_ls_remote(LS_REMOTE), ref) == commit


class FakeGit:
    """Stands in for the git subprocess: records each call, answers from a script."""

    def __init__(self, status: int = 0, stdout: str = LS_REMOTE, stderr: str = "", delay: float = 0) -> None:
        self.calls: list[tuple[list[str], dict[str, str], dict[str, Any]]] = []
        self.result = gitsource._GitResult(status, stdout, stderr)
        self.delay = delay

    def __call__(self, args: list[str], env: Mapping[str, str], **kwargs: Any) -> gitsource._GitResult:
        home = Path(env["HOME"])
        files = {path.name: path.read_text() for path in home.iterdir() if path.is_file()}
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in home.iterdir() if path.is_file()}
        self.calls.append((list(args), dict(env), {"files": files, "modes": modes, **kwargs}))
        time.sleep(self.delay)
        return self.result


@pytest.fixture
def fake_git(monkeypatch: pytest.MonkeyPatch) -> FakeGit:
    fake = FakeGit()
    monkeypatch.setattr(gitsource, "_run_git", fake)
    return fake


def test_a_full_commit_id_is_returned_without_asking_the_server(fake_git: FakeGit) -> None:
    sha = "ABCDEF" + "0" * 34
    assert resolve_ref("https://h.example/r.git", sha, None, timeout=5, allow_file=False) == sha.lower()
    assert fake_git.calls == []


def test_basic_credentials_reach_git_only_as_a_scoped_header(fake_git: FakeGit) -> None:
    credentials = GitCredentials(username="ann", password=PASSWORD)
    url = "https://git.example.com:8443/acme/jobs.git"
    assert resolve_ref(url, "dev", credentials, timeout=5, allow_file=False) == SHA_DEV
    [(args, env, extra)] = fake_git.calls
    assert args == ["ls-remote", "--", url]
    assert not any(PASSWORD in arg for arg in args)
    assert not any(PASSWORD in value for value in env.values())
    token = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    configured = {
        env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert configured["http.https://git.example.com:8443/.extraHeader"] == f"Authorization: Basic {token}"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_ASKPASS"] == ""
    assert env["GIT_ALLOW_PROTOCOL"] == "https:http:ssh"
    assert "GIT_SSH_COMMAND" not in env
    assert extra["files"] == {}  # nothing written for HTTP
    assert not Path(env["HOME"]).exists()  # the private folder is gone afterwards
    assert 0 < extra["timeout"] <= 5


def test_unknown_ref_names_what_the_repository_has(fake_git: FakeGit) -> None:
    with pytest.raises(GitSourceError) as caught:
        resolve_ref("https://h.example/r.git", "feature/x", None, timeout=5, allow_file=False)
    assert caught.value.reason == "RefNotFound"
    assert caught.value.message == (
        "ref 'feature/x' not found in https://h.example/r.git; "
        "branches/tags seen: main, dev, v1.0, v2.0, v1.0, light"
    )


def test_a_short_commit_id_gets_a_hint(fake_git: FakeGit) -> None:
    with pytest.raises(GitSourceError, match="full 40-character id"):
        resolve_ref("https://h.example/r.git", "abc1234", None, timeout=5, allow_file=False)


def test_git_errors_are_scrubbed_of_credentials(fake_git: FakeGit) -> None:
    token = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    fake_git.result = gitsource._GitResult(
        128,
        "",
        f"fatal: unable to access 'https://ann:{PASSWORD}@h.example/r.git/': The requested URL returned "
        f"error: 403\ntrace: Authorization: Basic {token}\n",
    )
    credentials = GitCredentials(username="ann", password=PASSWORD)
    with pytest.raises(GitSourceError) as caught:
        resolve_ref("https://h.example/r.git", "main", credentials, timeout=5, allow_file=False)
    error = caught.value
    assert error.reason == "FetchFailed"
    assert PASSWORD not in error.message
    assert token not in error.message
    assert "'https://h.example/r.git/'" in error.message
    assert "Authorization: Basic <hidden>" in error.message
    assert "refused the username and password" in error.message


def test_missing_credentials_get_a_hint(fake_git: FakeGit) -> None:
    fake_git.result = gitsource._GitResult(
        128, "", "fatal: could not read Username for 'https://h.example': terminal prompts disabled"
    )
    with pytest.raises(GitSourceError, match="set credentialsSecretRef"):
        resolve_ref("https://h.example/r.git", "main", None, timeout=5, allow_file=False)


def test_a_git_killed_at_the_deadline_is_a_timeout(fake_git: FakeGit) -> None:
    fake_git.result = gitsource._GitResult(-9, "", "Timeout: the command did not complete")
    fake_git.delay = 0.2
    with pytest.raises(GitSourceError) as caught:
        resolve_ref("https://h.example/r.git", "main", None, timeout=0.1, allow_file=False)
    assert caught.value.reason == "FetchTimeout"
    assert (
        caught.value.message
        == "listing the branches and tags of https://h.example/r.git took longer than 0.1 s"
    )


def test_ssh_key_goes_to_a_private_file_with_strict_host_checking(fake_git: FakeGit) -> None:
    credentials = GitCredentials(identity=KEY, known_hosts=KNOWN_HOSTS)
    resolve_ref("git@git.example.com:acme/jobs.git", "main", credentials, timeout=5, allow_file=False)
    [(args, env, extra)] = fake_git.calls
    assert extra["files"] == {"identity": KEY, "known_hosts": KNOWN_HOSTS}
    assert extra["modes"] == {"identity": 0o600, "known_hosts": 0o600}
    command = env["GIT_SSH_COMMAND"]
    for option in ("StrictHostKeyChecking=yes", "BatchMode=yes", "IdentitiesOnly=yes", "-F /dev/null"):
        assert option in command
    assert f"IdentityFile={env['HOME']}/identity" in command
    assert f"UserKnownHostsFile={env['HOME']}/known_hosts" in command
    assert not any("PRIVATE KEY" in value or "b3BlbnNz" in value for value in env.values())
    assert not any("b3BlbnNz" in arg for arg in args)
    assert not Path(env["HOME"]).exists()


def test_ssh_without_known_hosts_is_refused_before_connecting(tmp_path: Path) -> None:
    for credentials in (None, GitCredentials(identity=KEY)):
        with pytest.raises(GitSourceError, match="known_hosts") as caught:
            build_git_env("ssh://git@h.example/r.git", credentials, tmp_path, allow_file=False)
        assert caught.value.reason == "InvalidCredentials"


def test_inherited_git_variables_are_blanked_but_tls_settings_kept(tmp_path: Path) -> None:
    base = {
        "GIT_DIR": "/elsewhere/.git",
        "GIT_INDEX_FILE": "/elsewhere/index",
        "GIT_SSL_CAINFO": "/etc/ca.pem",
        "SSH_AUTH_SOCK": "/run/agent",
        "PATH": "/usr/bin",
    }
    env = build_git_env("file:///srv/r.git", None, tmp_path, allow_file=True, base=base)
    assert env["GIT_DIR"] == env["GIT_INDEX_FILE"] == env["SSH_AUTH_SOCK"] == ""
    assert "GIT_SSL_CAINFO" not in env
    assert "PATH" not in env
    assert env["GIT_ALLOW_PROTOCOL"] == "https:http:ssh:file"
    assert env["HOME"] == str(tmp_path)
    assert "GIT_SSH_COMMAND" not in env


# --- credentials ----------------------------------------------------------------------------------


def test_credentials_from_a_mounted_secret(tmp_path: Path) -> None:
    (tmp_path / "username").write_text("ann\n")
    (tmp_path / "password").write_text(PASSWORD + "\n")
    (tmp_path / "unrelated").write_text("x")
    credentials = load_credentials(tmp_path)
    assert credentials == GitCredentials(username="ann", password=PASSWORD)
    assert PASSWORD not in repr(credentials)
    assert load_credentials(None) is None


def test_credentials_folder_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match="does not exist"):
        load_credentials(tmp_path / "missing")
    with pytest.raises(GitSourceError, match="has none of the keys username, password") as caught:
        load_credentials(tmp_path)
    assert caught.value.reason == "InvalidCredentials"


def test_credentials_from_secret_data() -> None:
    data = {
        key: base64.b64encode(value.encode()).decode()
        for key, value in {"identity": KEY.strip(), "known_hosts": KNOWN_HOSTS, "other": "x"}.items()
    }
    credentials = credentials_from_secret(data)
    assert credentials.identity == KEY  # the final newline OpenSSH needs is put back
    assert credentials.known_hosts == KNOWN_HOSTS
    assert credentials.username is None
    assert not credentials.has_basic
    with pytest.raises(GitSourceError, match="key password of the credentials Secret is not base64"):
        credentials_from_secret({"password": "not base64!"})


def test_secrets_and_scrubbing() -> None:
    credentials = GitCredentials(username="ann", password=PASSWORD, identity=KEY)
    token = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    assert set(credentials.secrets()) >= {PASSWORD, token, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU="}
    text = f"pw {PASSWORD} token {token} key b3BlbnNzaC1rZXktdjEAAAAABG5vbmU= at https://x:y@h/r and ssh://git@h/r"
    assert scrub_secrets(text, credentials) == (
        "pw <hidden> token <hidden> key <hidden> at https://h/r and ssh://h/r"
    )
    assert scrub_secrets("https://tok@h/r", None) == "https://h/r"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_git_runs_with_the_environment_given(tmp_path: Path) -> None:
    # The real runner: GitPython passes the environment and returns status and output without raising.
    env = build_git_env("file:///nowhere", None, tmp_path, allow_file=True)
    result = gitsource._run_git(["ls-remote", "--", "file:///nowhere/at/all"], env, timeout=30)
    assert result.status != 0
    assert "nowhere/at/all" in result.stderr
    version = gitsource._run_git(["version"], {**env, "LC_ALL": "C"}, timeout=30)
    assert version.status == 0
    assert version.stdout.startswith("git version")
