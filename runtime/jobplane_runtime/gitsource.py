"""Jobs from Git repositories: resolve a ref, fetch one commit, import its job modules (sync-repo, run-pod).

Credentials reach git only through its environment (an ``http.extraHeader`` for HTTP basic auth, an
identity file for SSH), never through its arguments, and every message built from git's output is
scrubbed of them. GitPython is imported on first use, so run-pod pays for it only for repository jobs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import importlib
import importlib.machinery
import keyword
import logging
import os
import pkgutil
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from jobplane.discovery import Discovery, _describe_error, _forget_modules
from jobplane.job import clear_registry, registered_jobs
from jobplane_crds.envcontract import GitFetchFields
from jobplane_crds.gitcontract import (
    COMMIT_PATTERN,
    CREDENTIAL_KEYS,
    CREDENTIALS_MOUNT,
    SCP_PASSWORD_IN_URL,
    SLUG_PATTERN,
    SYNC_REPORT_PREFIX,
    GitCredentials,
)
from jobplane_crds.podcontract import PodContract

__all__ = [
    "CREDENTIALS_MOUNT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "SYNC_REPORT_PREFIX",
    "GitCredentials",
    "GitSourceError",
    "build_git_env",
    "credentials_from_secret",
    "discover_repository",
    "fetch_commit",
    "load_credentials",
    "parse_ls_remote",
    "pick_ref",
    "prepare_repository_job",
    "resolve_ref",
    "scrub_secrets",
    "validate_slug",
    "validate_url",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: float = GitFetchFields.model_fields["git_timeout"].default
DEFAULT_MAX_BYTES: int = GitFetchFields.model_fields["git_max_bytes"].default
HIDDEN = "<hidden>"

_SHA = re.compile(COMMIT_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:\[\]]+|\[[0-9A-Fa-f:.]+\]):(?P<path>.+)$")
_SCP_WITH_PASSWORD = re.compile(SCP_PASSWORD_IN_URL)
_URL_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")
_URL_SCHEMES = ("https", "http", "ssh")
# git's words when a server will not send a commit that no branch or tag points at (protocol v0).
_UNADVERTISED = re.compile(
    r"not our ref|unadvertised object|couldn't find remote ref|no such remote ref|not a valid object", re.I
)
# Inherited GIT_* variables that keep their value; every other one is blanked (GIT_DIR from a hook, ...).
_KEPT_GIT_VARIABLES = ("GIT_EXEC_PATH", "GIT_SSL_", "GIT_HTTP_USER_AGENT", "GIT_PYTHON_")
_CREDENTIALS_IN_URL = (
    "it contains a password: put credentials in the Secret named by credentialsSecretRef "
    "(keys username and password, or identity and known_hosts, with the label "
    "jobplane.io/secret-type: repository-credentials and a key url holding the repository's URL prefix), "
    "never in the URL"
)

# The folders this process put on sys.path for repositories, by slug: a later checkout of the same slug
# replaces its folder, and none of them counts as a module shadowing a slug.
_ROOTS: dict[str, str] = {}


class GitSourceError(Exception):
    """A repository could not be used. ``reason`` is PascalCase, ``message`` says what to do about it.

    Reasons: InvalidURL, InvalidCredentials, InvalidCommit, RefNotFound, FetchFailed, FetchTimeout,
    RepositoryTooLarge, NoJobsPackage, SlugConflict, InvalidSlug, InvalidInput.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# --- credentials -------------------------------------------------------------------------------


def _credentials(values: Mapping[str, str], where: str) -> GitCredentials:
    if not values:
        raise GitSourceError(
            "InvalidCredentials", f"{where} has none of the keys {', '.join(CREDENTIAL_KEYS)}"
        )
    # Files and `kubectl create secret --from-file` often end in a newline that is no part of the value.
    username, password = (values.get(key, "").rstrip("\r\n") or None for key in ("username", "password"))
    identity = values.get("identity", "").strip()
    known_hosts = values.get("known_hosts", "").strip()
    return GitCredentials(
        username=username,
        password=password,
        # OpenSSH refuses a private key file without its final newline.
        identity=identity + "\n" if identity else None,
        known_hosts=known_hosts + "\n" if known_hosts else None,
    )


def load_credentials(directory: Path | None) -> GitCredentials | None:
    """The credentials in a mounted Secret (files username, password, identity, known_hosts), or None."""
    if directory is None:
        return None
    if not directory.is_dir():
        raise GitSourceError("InvalidCredentials", f"the credentials folder {directory} does not exist")
    values = {}
    for key in CREDENTIAL_KEYS:
        path = directory / key
        try:
            values[key] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise GitSourceError("InvalidCredentials", f"cannot read {path}: {problem}") from None
    return _credentials(values, f"the credentials folder {directory}")


def credentials_from_secret(data: Mapping[str, str]) -> GitCredentials:
    """The credentials in a Secret's ``.data`` (base64 values); other keys are ignored."""
    values = {}
    for key in CREDENTIAL_KEYS:
        encoded = data.get(key)
        if encoded is None:
            continue
        try:
            values[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise GitSourceError(
                "InvalidCredentials", f"the key {key} of the credentials Secret is not base64-encoded text"
            ) from None
    return _credentials(values, "the credentials Secret")


def scrub_secrets(text: str, credentials: GitCredentials | None) -> str:
    """``text`` without any credential value (replaced by <hidden>) and without userinfo in URLs."""
    for value in credentials.secrets() if credentials is not None else []:
        text = text.replace(value, HIDDEN)
    return _URL_USERINFO.sub(r"\1", text)


def _shown_url(url: str) -> str:
    """The URL as messages show it: without userinfo holding a password."""
    text = _URL_USERINFO.sub(r"\1", url)
    return text[text.index("@") + 1 :] if _SCP_WITH_PASSWORD.match(text) else text


# --- URLs and slugs -------------------------------------------------------------------------------


def _is_ssh(url: str) -> bool:
    return url.lower().startswith("ssh://") or "://" not in url


def validate_url(url: str, *, allow_file: bool) -> None:
    """Refuse what git must not be given: other schemes, passwords in the URL, options in disguise.

    Accepted: ``https://``, ``http://``, ``ssh://``, scp-like ``git@host:path``, and ``file://`` when
    ``allow_file``. Raises GitSourceError("InvalidURL") with a message a person can act on.
    """

    def refuse(problem: str) -> GitSourceError:
        shown = _shown_url(url) if url.isprintable() else repr(_shown_url(url))
        return GitSourceError("InvalidURL", f"invalid repository URL {shown!r}: {problem}")

    supported = "use https://host/path, http://host/path, ssh://[user@]host/path or user@host:path"
    if allow_file:
        supported += ", or file:///path"
    if not url.strip():
        raise refuse("the URL is empty")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise refuse("it contains whitespace or control characters")
    if url.startswith("-"):
        raise refuse("it starts with '-'")
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        parts = urlsplit(url)
        if scheme == "file":
            if not allow_file:
                raise refuse("file:// URLs are not allowed here (the operator setting allow_file_urls)")
            if parts.netloc not in ("", "localhost"):
                raise refuse("a file:// URL names no host: file:///path/to/repository")
            if not parts.path.strip("/"):
                raise refuse("it names no repository path")
            return
        if scheme not in _URL_SCHEMES:
            raise refuse(f"the scheme {scheme}:// is not supported: {supported}")
        try:
            host = parts.hostname
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise refuse("its port is not a number from 1 to 65535") from None
        if parts.password is not None:
            raise refuse(_CREDENTIALS_IN_URL)
        if not host:
            raise refuse("it names no host")
        if host.startswith("-") or (parts.username or "").startswith("-"):
            raise refuse("its host or user name starts with '-'")
        if not parts.path.strip("/"):
            raise refuse("it names no repository path")
        return
    if "::" in url:
        raise refuse(f"git remote helpers (transport::address) are not supported: {supported}")
    if _SCP_WITH_PASSWORD.match(url):
        raise refuse(_CREDENTIALS_IN_URL)
    match = _SCP_LIKE.match(url)
    if match is None or "/" in url.split(":", 1)[0]:
        raise refuse(f"it is not a URL git can fetch from here: {supported}")
    if match["host"].startswith("-") or (match["user"] or "").startswith("-"):
        raise refuse("its host or user name starts with '-'")


def _absolute(entry: str) -> str:
    return os.path.abspath(entry or os.curdir)


def _under(location: str, roots: set[str]) -> bool:
    location = _absolute(location)
    return any(location == root or location.startswith(root + os.sep) for root in roots)


def _locations(origin: str | None, search: Any) -> list[str]:
    """The file a module comes from, then its package folders (several for a namespace package)."""
    places = [origin] if origin and origin not in ("built-in", "frozen", "namespace") else []
    return places + [str(place) for place in search or []]


def _shadowing_module(slug: str, own: Path | None) -> str | None:
    """Where an importable module named ``slug`` lives, ignoring this process's own checkouts."""
    ours = set(_ROOTS.values())
    allowed = ours | ({str(own.resolve()), str(own)} if own is not None else set())
    loaded = sys.modules.get(slug)
    if loaded is not None:
        places = _locations(getattr(loaded, "__file__", None), getattr(loaded, "__path__", None))
        if not places or not all(_under(place, allowed) for place in places):
            return places[0] if places else "a built-in module"
    if slug in sys.builtin_module_names:
        return "a built-in module"
    path = [entry for entry in sys.path if _absolute(entry) not in ours]
    for finder in sys.meta_path:
        try:
            if isinstance(finder, type) and issubclass(finder, importlib.machinery.PathFinder):
                spec = finder.find_spec(slug, path)
            else:
                find = getattr(finder, "find_spec", None)
                spec = find(slug, None) if find is not None else None
        except Exception:  # A third-party finder that breaks on an odd name finds nothing for it.
            log.debug("finder failed finder=%r module=%s", finder, slug, exc_info=True)
            continue
        if spec is None:
            continue
        places = _locations(spec.origin, spec.submodule_search_locations)
        if not places:
            return f"a {spec.origin or 'built-in'} module"
        if not all(_under(place, allowed) for place in places):
            return places[0] if spec.has_location else "a namespace package in " + ", ".join(places)
    return None


def _check_slug(slug: str, own: Path | None, *, shadowing: bool = True) -> None:
    if not _SLUG.match(slug) or keyword.iskeyword(slug):
        raise GitSourceError(
            "InvalidSlug",
            f"slug {slug!r} is not a Python identifier (letters, digits and _, not starting with a digit, "
            "not a keyword): the repository's jobs import as <slug>.jobs",
        )
    if not shadowing:
        return
    shadow = _shadowing_module(slug, own)
    if shadow is not None:
        raise GitSourceError(
            "SlugConflict",
            f"slug {slug!r} is already the name of an importable module ({shadow}), so the repository's "
            f"jobs could not be imported as {slug}.jobs: choose another slug",
        )


def validate_slug(slug: str, *, shadowing: bool = True) -> None:
    """A Python identifier (InvalidSlug) that no importable module already answers to (SlugConflict).

    ``shadowing=False`` checks the form only: for a process (the operator) whose modules are not those of
    the pods that import the repository; the sync pod checks the rest.
    """
    _check_slug(slug, None, shadowing=shadowing)


# --- running git ---------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def build_git_env(
    url: str,
    credentials: GitCredentials | None,
    home: Path,
    *,
    allow_file: bool,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a git subprocess: no prompts, no user or system config, credentials for ``url``.

    ``home`` is a private, writable folder (HOME, and where the SSH key and known hosts are written,
    0600). The values override ``base`` (default os.environ), whose other GIT_* variables are blanked.
    """
    base = os.environ if base is None else base
    env = {
        name: ""
        for name in base
        if (name.startswith("GIT_") and not name.startswith(_KEPT_GIT_VARIABLES))
        or name in ("SSH_AUTH_SOCK", "SSH_ASKPASS")
    }
    protocols = ["https", "http", "ssh"] + (["file"] if allow_file else [])
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        # Empty: no askpass program at all, so a missing password fails at once ("terminal prompts
        # disabled") instead of waiting on a dialog or sending an empty one.
        GIT_ASKPASS="",
        GIT_ALLOW_PROTOCOL=":".join(protocols),
        LC_ALL="C",
        LANGUAGE="C",
    )
    config = [
        ("core.hooksPath", os.devnull),
        ("advice.detachedHead", "false"),
        ("gc.auto", "0"),
        ("fetch.recurseSubmodules", "false"),
    ]
    token = credentials.basic_token() if credentials is not None else None
    lowered = url.lower()
    if token is not None and lowered.startswith(("https://", "http://")):
        parts = urlsplit(url)
        # Scoped to the repository's server: a redirect elsewhere does not get the header.
        origin = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}/"
        config.append((f"http.{origin}.extraHeader", f"Authorization: Basic {token}"))
    if _is_ssh(url) and not lowered.startswith("file://"):
        env["GIT_SSH_COMMAND"] = _ssh_command(credentials, home)
        env["GIT_SSH_VARIANT"] = "ssh"
    if allow_file and lowered.startswith("file://"):
        # A local repository belongs to another user than the pod's: git refuses to read it ("dubious
        # ownership") unless safe.directory says so, which it only reads from a global or system file.
        # file:// is opt-in (allow_file) and meant for repositories the cluster's admin put there.
        global_config = home / "gitconfig"
        global_config.write_text("[safe]\n\tdirectory = *\n")
        env["GIT_CONFIG_GLOBAL"] = str(global_config)
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _ssh_command(credentials: GitCredentials | None, home: Path) -> str:
    if credentials is None or not credentials.known_hosts:
        raise GitSourceError(
            "InvalidCredentials",
            "an SSH URL needs the server's host keys: put known_hosts (and the private key as identity) "
            "in the Secret named by credentialsSecretRef",
        )
    known_hosts = home / "known_hosts"
    _write_private(known_hosts, credentials.known_hosts)
    options = [
        "-F",
        os.devnull,
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        f"GlobalKnownHostsFile={os.devnull}",
        "-o",
        "IdentitiesOnly=yes",
    ]
    if credentials.identity:
        identity = home / "identity"
        _write_private(identity, credentials.identity)
        options += ["-o", f"IdentityFile={identity}"]
    else:
        options += ["-o", "IdentityFile=none"]
    return "ssh " + " ".join(shlex.quote(option) for option in options)


@contextlib.contextmanager
def _git_env(
    url: str, credentials: GitCredentials | None, *, allow_file: bool, repo: Path | None = None
) -> Iterator[dict[str, str]]:
    """build_git_env in a fresh private folder, removed afterwards with the key written into it."""
    home = Path(tempfile.mkdtemp(prefix="jobplane-git-"))
    try:
        env = build_git_env(url, credentials, home, allow_file=allow_file)
        if repo is not None:
            # Explicit, so inherited values (a git hook's GIT_DIR, GIT_INDEX_FILE, ...) cannot redirect.
            git_dir = repo / ".git"
            env.update(
                GIT_DIR=str(git_dir),
                GIT_WORK_TREE=str(repo),
                GIT_COMMON_DIR=str(git_dir),
                GIT_INDEX_FILE=str(git_dir / "index"),
                GIT_OBJECT_DIRECTORY=str(git_dir / "objects"),
            )
        yield env
    finally:
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class _GitResult:
    status: int
    stdout: str
    stderr: str


def _run_git(
    args: list[str], env: Mapping[str, str], *, timeout: float, cwd: Path | None = None
) -> _GitResult:
    """One git command through GitPython, killed (with its children) after ``timeout`` seconds."""
    try:
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # a missing git is reported below, not at import
        import git
    except ImportError as exc:
        raise GitSourceError("FetchFailed", f"GitPython cannot be used: {exc}") from None
    runner = git.cmd.Git(str(cwd) if cwd is not None else None)
    executable = git.cmd.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"
    try:
        status, stdout, stderr = runner.execute(
            [executable, *args],
            env=env,
            kill_after_timeout=timeout,
            with_extended_output=True,
            with_exceptions=False,
            strip_newline_in_stdout=False,
        )
    except git.GitCommandNotFound:
        raise GitSourceError("FetchFailed", "the git command is not installed here") from None
    return _GitResult(status, stdout, stderr)


class _Deadline:
    def __init__(self, timeout: float, what: str) -> None:
        self.timeout = timeout
        self.what = what
        self.end = time.monotonic() + timeout

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> GitSourceError:
        return GitSourceError("FetchTimeout", f"{self.what} took longer than {self.timeout:g} s")


def _git(
    args: list[str],
    env: Mapping[str, str],
    deadline: _Deadline,
    credentials: GitCredentials | None,
    *,
    cwd: Path | None = None,
    check: bool = True,
) -> _GitResult:
    result = _run_git(args, env, timeout=deadline.remaining(), cwd=cwd)
    if result.status != 0 and time.monotonic() >= deadline.end:
        raise deadline.expired()
    if check and result.status != 0:
        raise GitSourceError("FetchFailed", _failure_message(deadline.what, result.stderr, credentials))
    return result


def _failure_message(what: str, stderr: str, credentials: GitCredentials | None) -> str:
    lines = [line.strip() for line in scrub_secrets(stderr, credentials).splitlines() if line.strip()]
    said = "; ".join(lines[-6:])[-1500:] or "git gave no reason"
    hint = ""
    if re.search(r"terminal prompts disabled|Authentication failed|\b40[13]\b", stderr):
        if credentials is None or not credentials.has_basic:
            hint = " (the server asks for credentials: set credentialsSecretRef to a Secret with username "
            hint += "and password, scoped to the repository by its label and url key)"
        else:
            hint = " (the server refused the username and password of the credentials Secret)"
    elif "Host key verification failed" in stderr:
        hint = " (the server's host key is not in the known_hosts of the credentials Secret)"
    elif "Permission denied (publickey" in stderr:
        hint = " (the server refused the identity of the credentials Secret)"
    return f"{what} failed: {said}{hint}"


# --- resolving a ref --------------------------------------------------------------------------------


def parse_ls_remote(output: str) -> dict[str, str]:
    """``git ls-remote`` output as ref name → commit (lowercase); malformed lines are skipped."""
    refs = {}
    for line in output.splitlines():
        sha, _, name = line.strip().partition("\t")
        if _SHA.match(sha) and name:
            refs[name.strip()] = sha.lower()
    return refs


def pick_ref(refs: Mapping[str, str], ref: str) -> str | None:
    """The commit ``ref`` names: a branch, else a tag (peeled to its commit), else a full ref name."""
    if ref == "HEAD":
        return refs.get("HEAD")
    for name in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if name in refs:
            return refs[name]
    if ref.startswith("refs/"):
        return refs.get(f"{ref}^{{}}") or refs.get(ref)
    return None


def _seen(refs: Mapping[str, str], limit: int = 10) -> str:
    names = [name.removeprefix("refs/heads/") for name in refs if name.startswith("refs/heads/")]
    names += [
        name.removeprefix("refs/tags/")
        for name in refs
        if name.startswith("refs/tags/") and not name.endswith("^{}")
    ]
    if not names:
        return "the repository has no branches or tags"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"branches/tags seen: {', '.join(names[:limit])}{more}"


def resolve_ref(
    url: str, ref: str, credentials: GitCredentials | None, *, timeout: float, allow_file: bool
) -> str:
    """The commit a branch, tag, full ref name or HEAD points at (``git ls-remote``); a full sha as is."""
    validate_url(url, allow_file=allow_file)
    ref = ref.strip()
    if _SHA.match(ref):
        return ref.lower()
    shown = _shown_url(url)
    if not ref or ref.startswith("-"):
        raise GitSourceError("RefNotFound", f"{ref!r} is not a branch, tag or commit of {shown}")
    deadline = _Deadline(timeout, f"listing the branches and tags of {shown}")
    with _git_env(url, credentials, allow_file=allow_file) as env:
        result = _git(["ls-remote", "--", url], env, deadline, credentials)
    refs = parse_ls_remote(result.stdout)
    commit = pick_ref(refs, ref)
    if commit is None:
        hint = ""
        if re.fullmatch(r"[0-9a-fA-F]{4,39}", ref):
            hint = " (a commit must be given as its full 40-character id)"
        raise GitSourceError("RefNotFound", f"ref {ref!r} not found in {shown}{hint}; {_seen(refs)}")
    return commit


# --- fetching one commit ------------------------------------------------------------------------


def _folder_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _tree_size(
    commit: str, env: Mapping[str, str], deadline: _Deadline, credentials: GitCredentials | None
) -> int:
    """Bytes the commit's files take once checked out (blob sizes; submodules count nothing)."""
    listing = _git(["ls-tree", "-r", "-l", "--full-tree", "-z", commit], env, deadline, credentials)
    total = 0
    for entry in listing.stdout.split("\0"):
        fields = entry.split(None, 4)
        if len(fields) >= 4 and fields[3].isdigit():
            total += int(fields[3])
    return total


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def fetch_commit(
    url: str,
    commit: str,
    dest: Path,
    credentials: GitCredentials | None,
    *,
    timeout: float,
    max_bytes: int,
    allow_file: bool = True,
) -> None:
    """Check out exactly ``commit`` of ``url`` into ``dest`` (empty or absent), fetching it shallow.

    A server that refuses to send a commit by its id (protocol v0) gets a second, full fetch of its
    branches and tags. History plus files above ``max_bytes`` is RepositoryTooLarge, and nothing is
    checked out (the limit is checked once the history is in: during the fetch itself, the pod's /tmp
    sizeLimit is the bound). On any failure ``dest`` is removed.
    """
    validate_url(url, allow_file=allow_file)
    if not _SHA.match(commit):
        raise GitSourceError("InvalidCommit", f"{commit!r} is not a full 40-character commit id")
    commit = commit.lower()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise GitSourceError("FetchFailed", f"cannot fetch into {dest}: it is not an empty folder")
    shown = _shown_url(url)
    deadline = _Deadline(timeout, f"fetching commit {commit} of {shown}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GitSourceError("FetchFailed", f"cannot create {dest}: {exc.strerror}") from None
    started = time.monotonic()
    try:
        with _git_env(url, credentials, allow_file=allow_file, repo=dest) as env:
            _git(["init", "--quiet", "--template="], env, deadline, credentials, cwd=dest)
            shallow = ["fetch", "--quiet", "--no-tags", "--depth=1", "--", url, commit]
            fetched = _git(shallow, env, deadline, credentials, cwd=dest, check=False)
            if fetched.status != 0:
                if not _UNADVERTISED.search(fetched.stderr):
                    message = _failure_message(deadline.what, fetched.stderr, credentials)
                    raise GitSourceError("FetchFailed", message)
                log.info("server refused a fetch by commit id, fetching all branches url=%s", shown)
                refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
                _git(
                    ["fetch", "--quiet", "--no-tags", "--", url, *refspecs],
                    env,
                    deadline,
                    credentials,
                    cwd=dest,
                )
                exists = ["cat-file", "-e", f"{commit}^{{commit}}"]
                present = _git(exists, env, deadline, credentials, cwd=dest, check=False)
                if present.status != 0:
                    raise GitSourceError(
                        "FetchFailed", f"commit {commit} not found in {shown}: no branch or tag contains it"
                    )
            size = _folder_size(dest)
            if size <= max_bytes:
                size += _tree_size(commit, env, deadline, credentials)
            if size > max_bytes:
                raise GitSourceError(
                    "RepositoryTooLarge",
                    f"commit {commit} of {shown} takes {_mib(size)} (history fetched plus files), above "
                    f"the limit of {_mib(max_bytes)}",
                )
            _git(["checkout", "--quiet", "--detach", commit], env, deadline, credentials, cwd=dest)
            head = _git(["rev-parse", "--verify", "HEAD^{commit}"], env, deadline, credentials, cwd=dest)
            if head.stdout.strip().lower() != commit:
                raise GitSourceError(
                    "FetchFailed", f"checked out {head.stdout.strip()} of {shown} instead of {commit}"
                )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    log.info(
        "fetched commit url=%s commit=%s dest=%s seconds=%.2f",
        shown,
        commit,
        dest,
        time.monotonic() - started,
    )


# --- importing a repository's jobs -----------------------------------------------------------------


def _place_on_path(slug: str, parent: Path) -> None:
    """Put ``parent`` on sys.path for ``slug``, replacing the folder an earlier checkout of it used."""
    root = str(parent.resolve())
    previous = _ROOTS.get(slug)
    if previous is not None and previous != root:
        still_used = any(path == previous for other, path in _ROOTS.items() if other != slug)
        if not still_used:
            with contextlib.suppress(ValueError):
                sys.path.remove(previous)
    _ROOTS[slug] = root
    if root not in sys.path:
        # Last: no module is shadowed by it, and the slug was checked to be free everywhere else.
        sys.path.append(root)
    importlib.invalidate_caches()


def _import_repository_module(name: str, checkout: Path, errors: dict[str, str]) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except (Exception, SystemExit) as exc:  # SystemExit: a module calling sys.exit() fails only itself
        errors[name] = _describe_error(exc, checkout)
        clear_registry(name)  # what it registered before failing is not trusted
        log.warning("repository job module failed to import module=%s error=%s", name, errors[name])
        return None


def discover_repository(checkout: Path, slug: str) -> Discovery:
    """Import ``<slug>.jobs`` of a checkout (the folder named ``slug``) and each of its submodules.

    A module that fails to import is reported by its module name, with the file named relative to the
    checkout, and does not hide the jobs of the others. Returns only the jobs under ``<slug>.``; a
    repeated call in one process imports the code afresh.
    """
    checkout = checkout.resolve()
    _check_slug(slug, checkout)
    if checkout.name != slug:
        raise GitSourceError(
            "InvalidSlug", f"the checkout folder {checkout.name!r} must be named after the slug {slug!r}"
        )
    if not (checkout / "jobs.py").is_file() and not (checkout / "jobs").is_dir():
        raise GitSourceError(
            "NoJobsPackage",
            "the repository has neither a jobs.py module nor a jobs/ package at its root "
            "(its jobs are imported as <slug>.jobs)",
        )
    _forget_modules([slug])
    _place_on_path(slug, checkout.parent)
    errors: dict[str, str] = {}
    package_name = f"{slug}.jobs"
    # No __pycache__ in the checkout: a re-checkout within the same second could match stale bytecode.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        package = _import_repository_module(package_name, checkout, errors)
        if package is not None and hasattr(package, "__path__"):
            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_"):
                    _import_repository_module(f"{package_name}.{module.name}", checkout, errors)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    prefix = f"{slug}."
    jobs = {path: cls for path, cls in registered_jobs().items() if path.startswith(prefix)}
    return Discovery(jobs=jobs, errors=errors)


# --- run-pod ------------------------------------------------------------------------


def prepare_repository_job(
    contract: PodContract,
    workdir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """For run-pod: check out the commit the pod contract names (``repo_*``) into ``workdir/<slug>``.

    ``workdir`` goes on sys.path, so the job's class path (``<slug>.jobs.<module>.<Class>``) imports.
    Returns the checkout; raises GitSourceError.
    """
    url, commit, slug = contract.repo_url, contract.repo_commit, contract.repo_slug
    if not (url and commit and slug):
        # The contract refuses a URL without the other two; this is a pod with no repository at all.
        names = ", ".join(PodContract.env_name(f) for f in ("repo_url", "repo_commit", "repo_slug"))
        raise GitSourceError("InvalidInput", f"a repository job needs {names}")
    dest = workdir / slug
    _check_slug(slug, dest)
    credentials = load_credentials(contract.repo_credentials_dir)
    if dest.exists():
        # Left by an earlier attempt in this pod (a restarted container keeps its emptyDir).
        shutil.rmtree(dest, ignore_errors=True)
    fetch_commit(url, commit, dest, credentials, timeout=timeout, max_bytes=max_bytes)
    _forget_modules([slug])
    _place_on_path(slug, workdir)
    return dest
