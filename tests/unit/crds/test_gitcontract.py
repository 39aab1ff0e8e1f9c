"""The sync pod's contract: what the operator writes is what `jobplane sync-repo` reads, and a value that
does not fit is refused by its variable's name, never quoted (a URL may hold a password)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from jobplane_crds.envcontract import ContractError
from jobplane_crds.gitcontract import CREDENTIALS_MOUNT, SyncContract
from jobplane_crds.podcontract import PodContract

URL = "https://git.example.com/netops.git"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PASSWORD = "s3cret-T0ken"


def env_of(contract: SyncContract) -> dict[str, str]:
    return {item["name"]: item["value"] for item in contract.env()}


def sync_env(**variables: str) -> dict[str, str]:
    """A whole sync contract's environment, with ``variables`` changed (an empty value is unset)."""
    env = {"JOBPLANE_REPO_URL": URL, "JOBPLANE_REPO_COMMIT": COMMIT, "JOBPLANE_REPO_SLUG": "netops"}
    return {**env, **variables}


def test_what_the_operator_writes_the_sync_pod_reads_back() -> None:
    written = SyncContract(
        repo_url=URL,
        repo_commit=COMMIT.upper(),  # a commit id is read in lower case, as git prints it
        repo_slug="netops",
        repo_credentials_dir=Path(CREDENTIALS_MOUNT),
        git_timeout=2.5,
        git_max_bytes=4096,
    )
    env = env_of(written)
    assert env == {
        "JOBPLANE_REPO_URL": URL,
        "JOBPLANE_REPO_COMMIT": COMMIT,
        "JOBPLANE_REPO_SLUG": "netops",
        "JOBPLANE_REPO_CREDENTIALS_DIR": CREDENTIALS_MOUNT,
        "JOBPLANE_GIT_TIMEOUT": "2.5",
        "JOBPLANE_GIT_MAX_BYTES": "4096",
    }
    assert SyncContract.read(env) == written


def test_what_the_operator_leaves_out_is_not_written_and_the_pod_takes_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBPLANE_GIT_TIMEOUT", "7")  # the operator's own environment: not the pod's
    written = SyncContract(repo_url=URL, repo_commit=COMMIT, repo_slug="netops")
    assert set(env_of(written)) == {"JOBPLANE_REPO_URL", "JOBPLANE_REPO_COMMIT", "JOBPLANE_REPO_SLUG"}
    read = SyncContract.read(env_of(written))
    assert (read.repo_credentials_dir, read.git_timeout, read.git_max_bytes) == (None, 120.0, 512 * 1024**2)


def test_the_pod_reads_its_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sync_env(JOBPLANE_GIT_TIMEOUT="7", JOBPLANE_REPO_CREDENTIALS_DIR="").items():
        monkeypatch.setenv(name, value)
    read = SyncContract.read()
    # An empty variable is unset: a pod template may say JOBPLANE_REPO_CREDENTIALS_DIR="".
    assert (read.checkout(), read.git_timeout, read.repo_credentials_dir) == (
        (URL, COMMIT, "netops"),
        7,
        None,
    )


def test_a_sync_pod_without_its_commit_names_every_missing_variable() -> None:
    with pytest.raises(ContractError) as caught:
        SyncContract.read({"JOBPLANE_REPO_COMMIT": COMMIT, "JOBPLANE_REPO_SLUG": " "})
    assert caught.value.reason == "InvalidInput"
    assert str(caught.value) == (
        "JOBPLANE_REPO_URL and JOBPLANE_REPO_SLUG are missing: a sync pod needs JOBPLANE_REPO_URL, "
        "JOBPLANE_REPO_COMMIT and JOBPLANE_REPO_SLUG"
    )
    with pytest.raises(
        ContractError, match=r"^JOBPLANE_REPO_URL, JOBPLANE_REPO_COMMIT and JOBPLANE_REPO_SLUG"
    ):
        SyncContract.read({})


PASSWORD_REFUSED = (
    "JOBPLANE_REPO_URL must not hold a password: credentials go in the Secret named by the JobRepository's "
    "credentialsSecretRef"
)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("JOBPLANE_REPO_URL", f"https://ann:{PASSWORD}@git.example.com/netops.git", PASSWORD_REFUSED),
        ("JOBPLANE_REPO_URL", f"ann:{PASSWORD}@git.example.com:team/netops.git", PASSWORD_REFUSED),
        (
            "JOBPLANE_REPO_URL",
            f"https://git.example.com/netops.git --upload-pack={PASSWORD}",
            "JOBPLANE_REPO_URL must be one URL, without whitespace or control characters",
        ),
        (
            "JOBPLANE_REPO_COMMIT",
            "main",
            "JOBPLANE_REPO_COMMIT must be a full 40-character commit id (hexadecimal)",
        ),
        (
            "JOBPLANE_REPO_SLUG",
            "class",
            "JOBPLANE_REPO_SLUG must be a Python identifier (letters, digits and _, not starting with a "
            "digit, not a keyword): the repository's jobs import as <slug>.jobs",
        ),
        ("JOBPLANE_REPO_SLUG", "net-ops", None),
        (
            "JOBPLANE_GIT_TIMEOUT",
            "soon",
            "JOBPLANE_GIT_TIMEOUT is malformed: Input should be a valid number, unable to parse string as a "
            "number",
        ),
        ("JOBPLANE_GIT_TIMEOUT", "inf", "JOBPLANE_GIT_TIMEOUT is malformed: Input should be a finite number"),
        ("JOBPLANE_GIT_TIMEOUT", "-1", "JOBPLANE_GIT_TIMEOUT is malformed: Input should be greater than 0"),
        (
            "JOBPLANE_GIT_MAX_BYTES",
            "-5",
            "JOBPLANE_GIT_MAX_BYTES is malformed: Input should be greater than 0",
        ),
    ],
)
def test_a_value_that_does_not_fit_is_named_by_its_variable_never_quoted(
    variable: str, value: str, message: str | None
) -> None:
    with pytest.raises(ContractError) as caught:
        SyncContract.read(sync_env(**{variable: value}))
    assert caught.value.reason == "InvalidInput"
    if message is not None:
        assert str(caught.value) == message
    else:
        assert str(caught.value).startswith(f"{variable} must be")
    assert value not in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ContractError) as caught:
        SyncContract.read(sync_env(JOBPLANE_REPO_COMMIT="HEAD", JOBPLANE_GIT_MAX_BYTES="lots"))
    assert str(caught.value).split("; ") == [
        "JOBPLANE_GIT_MAX_BYTES is malformed: Input should be a valid integer, unable to parse string as an "
        "integer",
        "JOBPLANE_REPO_COMMIT must be a full 40-character commit id (hexadecimal)",
    ]


def test_the_operator_building_a_bad_contract_never_logs_the_value() -> None:
    # The operator checks the URL before it plans a sync; were one to get through, kopf would log this.
    with pytest.raises(ValidationError) as caught:
        SyncContract(
            repo_url=f"https://ann:{PASSWORD}@git.example.com/x.git", repo_commit=COMMIT, repo_slug="x"
        )
    assert PASSWORD not in str(caught.value)
    assert "must not hold a password" in str(caught.value)


def test_a_run_pod_shares_the_checkout_variables_and_their_refusals() -> None:
    checkout = {"repo_url", "repo_commit", "repo_slug", "repo_credentials_dir"}
    assert checkout <= set(PodContract.model_fields) & set(SyncContract.model_fields)
    with pytest.raises(ContractError, match=r"^JOBPLANE_REPO_COMMIT must be a full 40-character commit id"):
        PodContract.read(
            {"JOBPLANE_REPO_URL": URL, "JOBPLANE_REPO_COMMIT": "main", "JOBPLANE_REPO_SLUG": "n"}
        )
