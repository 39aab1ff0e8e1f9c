"""`jobplane run-pod` as a local process with a pod's environment: events, exit codes, termination message."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.builders import write_module
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "jobs" / "examples"
SECRET = "hunter2-Tr0ub4dor&3"

JOBS = """
    import hashlib
    import time

    from jobplane import ChoiceVar, DryRunVar, Job, StringVar, register_jobs

    name = "run-pod tests"


    class Login(Job):
        password = StringVar()
        realm = ChoiceVar(choices=(("lab", "Lab"), ("prod", "Prod")), default="lab")

        def run(self, *, password, realm):
            self.logger.info("logging in to %s with a password of %d characters", realm, len(password))
            return {"sha256": hashlib.sha256(password.encode()).hexdigest()}


    class Plan(Job):
        dryrun = DryRunVar()

        class Meta:
            has_sensitive_variables = False

        def run(self, *, dryrun):
            return {"dryrun": dryrun}


    class Big(Job):
        class Meta:
            has_sensitive_variables = False

        def run(self):
            self.create_file("numbers.txt", "\\n".join(map(str, range(1000))))
            return {"rows": list(range(50_000)), "note": "\\"quoted\\" " * 1000}


    class Sleepy(Job):
        class Meta:
            has_sensitive_variables = False
            soft_time_limit = 60

        def run(self):
            self.logger.info("sleeping")
            time.sleep(60)


    register_jobs(Login, Plan, Big, Sleepy)
"""


@dataclass
class PodRun:
    code: int
    stdout: str
    stderr: str
    message: dict[str, Any] | None
    raw_message: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def logs(self) -> list[str]:
        return [event["message"] for event in self.events if event["type"] == "log"]


class RunPod:
    """Runs the real `jobplane run-pod` command with a pod's environment, in a scratch folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "jobs_root"
        write_module(self.root, "pod_jobs", JOBS)
        self.message_path = tmp_path / "termination-log"

    def env(self, jobs_root: Path, extra: dict[str, str]) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("JOBPLANE_")}
        return {
            **base,
            "JOBPLANE_JOBS_ROOT": str(jobs_root),
            # Pointed into the scratch folder so the test can show that run-pod never creates it.
            "JOBPLANE_DATABASE_URL": f"sqlite:///{self.tmp / 'store.sqlite3'}",
            "JOBPLANE_TERMINATION_MESSAGE_PATH": str(self.message_path),
            "JOBPLANE_RUN_NAME": "run-1",
            "JOBPLANE_RUN_UID": "6f1c2a4e-8a53-4a0e-9a9c-2f7e0d1b5c3d",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def start(self, *args: str, jobs_root: Path | None = None, **env: str) -> subprocess.Popen[str]:
        self.message_path.unlink(missing_ok=True)
        return subprocess.Popen(
            [sys.executable, "-m", "jobplane.cli", "run-pod", *args],
            cwd=self.tmp,
            env=self.env(jobs_root or self.root, env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, process: subprocess.Popen[str], timeout: float = 60) -> PodRun:
        stdout, stderr = process.communicate(timeout=timeout)
        raw = self.message_path.read_text() if self.message_path.exists() else ""
        return PodRun(process.returncode, stdout, stderr, json.loads(raw) if raw else None, raw)

    def __call__(self, *args: str, jobs_root: Path | None = None, **env: str) -> PodRun:
        return self.finish(self.start(*args, jobs_root=jobs_root, **env))


@pytest.fixture
def run_pod(tmp_path: Path) -> RunPod:
    return RunPod(tmp_path)


def test_success_prints_json_events_and_writes_the_summary(run_pod: RunPod) -> None:
    done = run_pod("hello_world.HelloWorld", jobs_root=EXAMPLES, JOBPLANE_RUN_DATA='{"who": "Ann"}')
    assert done.code == 0, done.stderr
    events = done.events
    assert events[0] == {
        "type": "started",
        "job": "hello_world.HelloWorld",
        "run": "run-1",
        "run_uid": "6f1c2a4e-8a53-4a0e-9a9c-2f7e0d1b5c3d",
    }
    greeting = next(e for e in events if e["type"] == "log" and e["level"] == "success")
    assert greeting["message"] == "Hello, Ann!"
    assert greeting["grouping"] == "run"
    assert set(greeting) == {"type", "level", "grouping", "message", "object", "url", "time"}
    assert events[-1] == {
        "type": "result",
        "status": "SUCCESS",
        "result": {"greeting": "Hello, Ann!"},
        "traceback": None,
    }
    assert done.message == {"status": "SUCCESS", "result": '{"greeting": "Hello, Ann!"}', "error": None}
    assert not (run_pod.tmp / "store.sqlite3").exists()  # run-pod never opens the results store


def test_class_path_from_env(run_pod: RunPod) -> None:
    done = run_pod(jobs_root=EXAMPLES, JOBPLANE_RUN_CLASS_PATH="noop.Noop")
    assert done.code == 0, done.stderr
    assert done.message == {"status": "SUCCESS", "result": None, "error": None}


def test_exception_exits_1_with_the_exception_in_the_summary(run_pod: RunPod) -> None:
    done = run_pod(
        "lifecycle_hooks.LifecycleHooks", jobs_root=EXAMPLES, JOBPLANE_RUN_DATA='{"raise_error": true}'
    )
    assert done.code == 1, done.stderr
    assert done.message is not None
    assert done.message["status"] == "FAILURE"
    assert done.message["error"] == "RuntimeError: raise_error was set"
    assert any(line.startswith("The run failed: RuntimeError") for line in done.logs())
    assert "Traceback" in done.events[-1]["traceback"]


def test_fail_exits_1_with_the_last_failure_as_error(run_pod: RunPod) -> None:
    done = run_pod(
        "hostname_check.CheckHostnames",
        jobs_root=EXAMPLES,
        JOBPLANE_RUN_DATA=json.dumps({"hostnames": "ams1-rtr-01\nBadName"}),
    )
    assert done.code == 1, done.stderr
    assert done.message is not None
    assert done.message["error"] == "JobFailed: 1 of 2 host names break the convention"
    assert json.loads(done.message["result"]) == {"checked": 2, "bad": ["BadName"]}


def test_soft_time_limit_lets_the_job_clean_up(run_pod: RunPod) -> None:
    done = run_pod("soft_time_limit.SlowCleanup", jobs_root=EXAMPLES)
    assert done.code == 1, done.stderr
    # Ended by the soft limit (1 s), which the job caught and re-raised, not killed by the hard one (10 s).
    assert done.message is not None
    assert done.message["error"] == "SoftTimeLimitExceeded: Soft time limit of 1 s exceeded"
    logs = done.logs()
    assert any(line.startswith("Soft time limit reached after") for line in logs)
    assert any(line.startswith("Removed ") for line in logs)
    assert not any("hard time limit" in line.lower() for line in logs)  # no warning: hard is Kubernetes'
    assert done.message is not None
    assert done.message["error"] == "SoftTimeLimitExceeded: Soft time limit of 1 s exceeded"


def test_soft_time_limit_from_env_overrides_the_job(run_pod: RunPod) -> None:
    done = run_pod("pod_jobs.Sleepy", JOBPLANE_RUN_SOFT_TIME_LIMIT="0.5")
    assert done.code == 1
    assert done.message is not None
    assert done.message["error"] == "SoftTimeLimitExceeded: Soft time limit of 0.5 s exceeded"


def test_bad_data_exits_2_with_nautobot_errors(run_pod: RunPod) -> None:
    done = run_pod(
        "hello_world.HelloWorld",
        jobs_root=EXAMPLES,
        JOBPLANE_RUN_DATA=json.dumps({"who": "x" * 60, "extra": 1}),
    )
    assert done.code == 2
    assert json.loads(done.stderr) == {
        "errors": {
            "extra": ["Job data contained an unknown property"],
            "who": ["Ensure this value has at most 50 characters (it has 60)."],
        }
    }
    assert done.message is not None
    assert done.message["status"] == "FAILURE"
    assert done.message["error"].startswith("JobDataError: extra: Job data contained an unknown property")
    assert done.stdout == ""  # nothing ran


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (("nope.Nope",), {}, "JobNotFound: no job with class path 'nope.Nope'"),
        ((), {}, "InvalidInput: no job class path"),
        (
            ("pod_jobs.Plan",),
            {"JOBPLANE_RUN_DATA": "{not json"},
            "InvalidInput: JOBPLANE_RUN_DATA is not valid JSON",
        ),
        (("pod_jobs.Plan",), {"JOBPLANE_RUN_DRYRUN": "perhaps"}, "InvalidInput: JOBPLANE_RUN_DRYRUN must be"),
        (("pod_jobs.Big",), {"JOBPLANE_RUN_DRYRUN": "true"}, "DryRunNotSupported: pod_jobs.Big does not"),
    ],
    ids=["unknown-job", "no-class-path", "bad-json", "bad-flag", "dryrun-unsupported"],
)
def test_unusable_inputs_exit_2(
    run_pod: RunPod, args: tuple[str, ...], env: dict[str, str], error: str
) -> None:
    done = run_pod(*args, **env)
    assert done.code == 2, done.stderr
    assert done.message is not None
    assert done.message["error"].startswith(error)
    assert done.stderr.startswith("jobplane: ")


def test_dryrun_flag_reaches_the_job(run_pod: RunPod) -> None:
    done = run_pod("pod_jobs.Plan", JOBPLANE_RUN_DRYRUN="true")
    assert done.code == 0, done.stderr
    assert done.events[-1]["result"] == {"dryrun": True}
    assert run_pod("pod_jobs.Plan").events[-1]["result"] == {"dryrun": False}


def test_huge_result_and_files_keep_the_message_under_4096_bytes(run_pod: RunPod) -> None:
    done = run_pod("pod_jobs.Big")
    assert done.code == 0, done.stderr
    assert len(done.raw_message.encode()) <= 4096
    assert done.message is not None
    assert done.message["result"].startswith('{"rows": [0, 1, 2')
    files = [e for e in done.events if e["type"] == "file"]
    assert [(f["name"], f["size"]) for f in files] == [("numbers.txt", len("\n".join(map(str, range(1000)))))]


def test_sensitive_data_from_a_file_is_used_and_never_echoed(run_pod: RunPod) -> None:
    data_file = run_pod.tmp / "data.json"
    data_file.write_text(json.dumps({"password": SECRET, "realm": "prod"}))
    done = run_pod("pod_jobs.Login", JOBPLANE_RUN_DATA_FILE=str(data_file))
    assert done.code == 0, done.stderr
    assert done.events[-1]["result"] == {"sha256": hashlib.sha256(SECRET.encode()).hexdigest()}
    for text in (done.stdout, done.stderr, done.raw_message):
        assert SECRET not in text


def test_sensitive_data_in_env_is_refused_without_echo(run_pod: RunPod) -> None:
    done = run_pod("pod_jobs.Login", JOBPLANE_RUN_DATA=json.dumps({"password": SECRET}))
    assert done.code == 2
    assert done.message is not None
    assert done.message["error"].startswith("SensitiveDataInEnv: pod_jobs.Login has sensitive variables")
    assert done.stdout == ""
    assert SECRET not in done.stderr + done.raw_message


def test_bad_sensitive_data_hides_the_values_in_errors(run_pod: RunPod) -> None:
    data_file = run_pod.tmp / "data.json"
    data_file.write_text(json.dumps({"password": "x", "realm": SECRET}))
    done = run_pod("pod_jobs.Login", JOBPLANE_RUN_DATA_FILE=str(data_file))
    assert done.code == 2
    assert json.loads(done.stderr) == {
        "errors": {"realm": ["Select a valid choice. <hidden> is not one of the available choices."]}
    }
    assert SECRET not in done.stderr + done.raw_message


def test_sigterm_ends_the_run_at_once_with_a_summary(run_pod: RunPod) -> None:
    process = run_pod.start("pod_jobs.Sleepy")
    assert process.stdout is not None
    for line in process.stdout:  # wait until the job runs
        if '"sleeping"' in line:
            break
    process.send_signal(signal.SIGTERM)
    done = run_pod.finish(process, timeout=10)
    assert done.code == 143
    assert done.message is not None
    assert done.message["error"].startswith("Terminated: the pod received SIGTERM")


def test_as_pid_1_a_sigterm_before_the_jobs_code_is_fetched_still_ends_the_pod(run_pod: RunPod) -> None:
    """A pod's main process is PID 1 of its container, where the kernel drops the signals it has no handler
    for. Deleted while its job's code is still being fetched (a Git server that never answers here), the pod
    must end now, not at the end of its grace period."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    port = server.getsockname()[1]
    env = run_pod.env(
        run_pod.root,
        {
            "JOBPLANE_REPO_URL": f"http://127.0.0.1:{port}/netops.git",
            "JOBPLANE_REPO_COMMIT": "0" * 40,
            "JOBPLANE_REPO_SLUG": "netops",
            "JOBPLANE_GIT_WORKDIR": str(run_pod.tmp / "git"),
        },
    )
    # Its own PID namespace, as a container's: run-pod is PID 1 there (unshare waits for it, outside).
    command = ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-m", "jobplane.cli", "run-pod"]
    process = subprocess.Popen([*command, "netops.jobs.hello.Hello"], cwd=run_pod.tmp, env=env)
    try:
        server.settimeout(60)
        held.append(server.accept()[0])  # git asks for the repository: run-pod is fetching
        (pid_1,) = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        (ns_pids,) = [
            line for line in Path(f"/proc/{pid_1}/status").read_text().splitlines() if "NSpid" in line
        ]
        assert ns_pids.split()[-1] == "1", ns_pids  # its pid in its own namespace
        os.kill(int(pid_1), signal.SIGTERM)
        assert process.wait(timeout=15) == 143
    finally:
        process.kill()
        process.wait()
        for connection in held:
            connection.close()
        server.close()
