"""Benchmark: the REST API's read paths over a big results store, and the run endpoint's rate.

Fills a throwaway Postgres (COPY) with job results and log entries, serves the API with `jobplane api` on
127.0.0.1 and measures, through real HTTP with one keep-alive client:
  job-results list pages (first, deep, filtered, with a constrained user's permission filter),
  a run's logs (`job-results/{id}/logs/`) for a typical and for a 10k-entry run, and `job-logs/` pages.
Baselines measured in the same run: the `GET /api/status/` round trip through the same server, and the very
SQL statements the service runs for each case (captured from it, replayed on a raw psycopg connection).
Then, unless --no-cluster, on a local control plane (no node, no operator: runs stay Pending) it times
`POST /api/extras/jobs/{id}/run/` sequentially and from --threads threads, --rounds times, each round
with its baselines: `GET /api/status/` of the same server from as many threads, and the Kubernetes client
creating the same JobRuns directly; and the API process's CPU per request. Figures and ratios are
reported, never asserted. Run as root (the cluster needs it):

    .venv/bin/python bench/api_results.py [--results 100000] [--logs 1000000] [--requests 200] [--no-cluster]
    .venv/bin/python bench/api_results.py --runs-only [--runs 300] [--rounds 3] [--threads 4] [--py-spy FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PostgresServer, _postgres_bindir, free_port  # noqa: E402

NAMESPACE = "bench-api"
DIRECT_NAMESPACE = "bench-direct"
RUN_CLASS_PATH = "api_examples.ExampleVariables"
RUN_BODY = {"data": {"string_variable": "s", "integer_variable": 1}}
AIM_MS = 100.0
# --try-indexes: what the list pages would get from these (applied to the bench database only, then the
# job-results cases are measured again through the same server).
PROPOSED_INDEXES = (
    # Redundant with ix_job_result_created_id (date_created DESC, id DESC), and the planner prefers it for
    # the unfiltered list, then sorts every skipped row again by (date_created, id) (an Incremental Sort).
    "DROP INDEX ix_job_result_date_created",
    # The list order within one user (the "$user" permission constraint's filter), and within one status:
    # the status one only pays off once a page selects its ids first (a deferred join); with today's
    # OFFSET query the planner takes a parallel bitmap scan and a sort for a deep status page instead.
    "DROP INDEX ix_job_result_status_created",
    "CREATE INDEX ix_job_result_status_created_id ON job_result (status, date_created DESC, id DESC)",
    'CREATE INDEX ix_job_result_user_created_id ON job_result ("user", date_created DESC, id DESC)',
    "ANALYZE job_result",
)
BIG_RUN_ENTRIES = 10_000
VIEWER = "viewer"

# --- the data --------------------------------------------------------------------------------------------

MODULES = (
    "devices",
    "circuits",
    "backup",
    "compliance",
    "ipam",
    "cleanup",
    "reports",
    "sync",
    "audit",
    "dns",
)
VERBS = ("Check", "Sync", "Backup", "Audit", "Clean", "Export", "Import", "Verify", "Render", "Collect")
NOUNS = (
    "Interfaces",
    "Configs",
    "Prefixes",
    "Vlans",
    "Cables",
    "Sites",
    "Racks",
    "Circuits",
    "Routes",
    "Dns",
)
STATUSES = ("SUCCESS", "FAILURE", "REVOKED", "STARTED", "PENDING")
STATUS_WEIGHTS = (0.78, 0.17, 0.02, 0.02, 0.01)
SUCCESS_LEVELS = ("info", "debug", "info", "info", "success", "info", "warning", "info", "success")
FAILURE_LEVELS = ("info", "debug", "info", "info", "warning", "info", "error", "failure", "info")
LOG_COUNT_COLUMNS = tuple(
    f"{level}_log_count" for level in ("debug", "info", "success", "warning", "failure", "error", "critical")
)
RESULT_COLUMNS = (
    "id", "name", "job_class_path", "user", "status", "date_created", "date_started", "date_done", "result",
    "traceback", "task_kwargs", "queue", "soft_time_limit", "time_limit", *LOG_COUNT_COLUMNS, "job_model_id",
    "run_name", "run_namespace", "reason", "message", "commit", "dry_run",
)  # fmt: skip
LOG_COLUMNS = ("job_result_id", "log_level", "grouping", "message", "log_object", "absolute_url", "created")
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/jobs/{module}.py", line 88, in run\n    self.check(device)\n'
    '  File "/jobs/{module}.py", line 120, in check\n    raise JobError(message)\n'
    "jobplane.errors.JobError: {device} did not answer within 30 s\n"
)


@dataclass
class Dataset:
    """What the benchmark needs to know about the rows it wrote."""

    results: int = 0
    logs: int = 0
    typical_run: uuid.UUID | None = None
    big_runs: list[uuid.UUID] = field(default_factory=list)
    seconds: float = 0.0


def _levels(status: str, count: int) -> list[str]:
    pattern = FAILURE_LEVELS if status == "FAILURE" else SUCCESS_LEVELS
    return [pattern[index % len(pattern)] for index in range(count)]


def fill(url: str, results: int, logs: int, big_runs: int, seed: int = 5) -> Dataset:
    """Write `results` job results and `logs` log entries (a few big runs of 10k entries), oldest first."""
    import psycopg

    rng = random.Random(seed)
    started_at = time.monotonic()
    jobs = []
    for index in range(200):
        module = MODULES[index % len(MODULES)]
        class_name = f"{VERBS[(index // 10) % 10]}{NOUNS[index % 10]}{index // 100 or ''}"
        jobs.append((f"{class_name} ({module})", f"{module}.{class_name}", uuid.uuid4(), module))
    users = [f"user{index:02d}" for index in range(29)] + [VIEWER]
    now = datetime.now(UTC)
    start = now - timedelta(days=90)
    span = (now - start).total_seconds()
    offsets = sorted(rng.random() * span for _ in range(results))

    big_runs = min(big_runs, results, logs // BIG_RUN_ENTRIES)
    big_positions = set(rng.sample(range(results), big_runs))
    rest = logs - big_runs * BIG_RUN_ENTRIES
    others = results - big_runs
    per_run, extra = divmod(rest, others) if others else (0, 0)

    dataset = Dataset(results=results, logs=logs)
    result_rows: list[tuple[Any, ...]] = []
    plan: list[tuple[uuid.UUID, str, datetime, int, str]] = []
    other_index = 0
    for position in range(results):
        name, class_path, job_id, module = jobs[rng.randrange(len(jobs))]
        status = "SUCCESS" if position in big_positions else rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        if position in big_positions:
            entries = BIG_RUN_ENTRIES
        else:
            entries = per_run + (1 if other_index < extra else 0)
            other_index += 1
        levels = _levels(status, entries)
        counts = [levels.count(column.removesuffix("_log_count")) for column in LOG_COUNT_COLUMNS]
        result_id = uuid.uuid4()
        created = start + timedelta(seconds=offsets[position])
        began = None if status == "PENDING" else created + timedelta(seconds=rng.uniform(0.5, 5))
        done = None
        if status in ("SUCCESS", "FAILURE", "REVOKED") and began is not None:
            done = began + timedelta(seconds=rng.uniform(1, 600))
        site = f"site-{rng.randrange(1, 400):03d}"
        device = f"{site}-sw{rng.randrange(1, 48):02d}"
        result = None
        traceback = None
        reason = None
        message = None
        if status == "SUCCESS":
            checked = rng.randrange(1, 500)
            result = json.dumps(
                {
                    "devices_checked": checked,
                    "changed": rng.randrange(0, checked + 1),
                    "site": site,
                    "report": f"{checked} devices checked at {site}; see the job's files for the details.",
                }
            )
        elif status == "FAILURE":
            traceback = TRACEBACK.format(module=module, device=device)
            if rng.random() < 0.1:
                reason, message = "OOMKilled", "The job's container ran out of memory (limit 512Mi)."
        elif status == "REVOKED":
            reason, message = "Cancelled", "Cancelled by the user who requested the run."
        kwargs = json.dumps({"site": site, "dry_run": False, "devices": [device]})
        result_rows.append(
            (
                result_id, name, class_path, rng.choice(users), status, created, began, done, result,
                traceback, kwargs, "default", 300.0, 600.0, *counts, job_id,
                f"{class_path.replace('.', '-').replace('_', '-').lower()[:40]}-{result_id.hex[:5]}",
                "jobplane", reason, message, uuid.uuid4().hex + uuid.uuid4().hex[:8], False,
            )
        )  # fmt: skip
        plan.append((result_id, status, began or created, entries, device))
        if position in big_positions:
            dataset.big_runs.append(result_id)
    typical = [row for row in plan if row[1] == "SUCCESS" and row[3] == per_run]
    dataset.typical_run = typical[len(typical) // 2][0] if typical else plan[0][0]

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        # The rows are consistent by construction: skip the foreign-key triggers (a superuser may).
        conn.execute("SET session_replication_role = replica")
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY job_result ({', '.join(_quoted(RESULT_COLUMNS))}) FROM STDIN") as copy:
                for row in result_rows:
                    copy.write_row(row)
            with cursor.copy(f"COPY job_log_entry ({', '.join(LOG_COLUMNS)}) FROM STDIN") as copy:
                for result_id, status, began, entries, device in plan:
                    for index, level in enumerate(_levels(status, entries)):
                        copy.write_row(_log_row(result_id, level, index, began, device))
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute("VACUUM ANALYZE job_result")
        conn.execute("VACUUM ANALYZE job_log_entry")
    dataset.seconds = time.monotonic() - started_at
    return dataset


def _quoted(names: tuple[str, ...]) -> list[str]:
    return [f'"{name}"' for name in names]


def _log_row(result_id: uuid.UUID, level: str, index: int, began: datetime, device: str) -> tuple[Any, ...]:
    created = began + timedelta(milliseconds=50 * index)
    if level == "debug":
        return (
            result_id,
            level,
            "main",
            f"Loaded {index * 7 + 3} devices from the inventory",
            None,
            None,
            created,
        )
    if level == "success":
        message = f"{device}: configuration is compliant (interface Ethernet{index % 48 + 1}/1)"
        return (result_id, level, "devices", message, device, f"/dcim/devices/{device}/", created)
    if level == "warning":
        message = f"{device}: interface Ethernet{index % 48 + 1}/1 has no description"
        return (result_id, level, "devices", message, device, f"/dcim/devices/{device}/", created)
    if level in ("error", "failure"):
        return (result_id, level, "devices", f"{device} did not answer within 30 s", device, None, created)
    return (
        result_id,
        level,
        "main",
        f"Step {index}: checking {device} (attempt 1 of 3)",
        None,
        None,
        created,
    )


def create_identities(url: str) -> dict[str, str]:
    """A superuser and a user who may only view their own results; returns their token keys."""
    from jobplane_api.identity import service
    from jobplane_store.database import create_store_engine, make_sessionmaker

    engine = create_store_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            service.create_user(session=session, username="admin", is_superuser=True)
            service.create_user(session=session, username=VIEWER)
            service.create_permission(
                session=session,
                name="view own results",
                object_types=["extras.jobresult"],
                actions=["view"],
                constraints={"user": "$user"},
                users=[VIEWER],
            )
            service.create_permission(
                session=session, name="view logs", object_types=["extras.joblogentry"], actions=["view"],
                users=[VIEWER],
            )  # fmt: skip
            _, admin = service.create_user_token(session=session, username="admin")
            _, viewer = service.create_user_token(session=session, username=VIEWER)
            session.commit()
    finally:
        engine.dispose()
    return {"admin": admin, VIEWER: viewer}


NO_POSTGRES = "Postgres is not installed: run scripts/setup-host.sh"


@contextlib.contextmanager
def filled_store(results: int, logs: int, big_runs: int) -> Iterator[tuple[str, Dataset]]:
    """A throwaway Postgres with the store's schema and `fill`'s rows: (its URL, what was written)."""
    from jobplane_store.database import create_store_engine, ensure_schema

    bindir = _postgres_bindir()
    if bindir is None:
        raise RuntimeError(NO_POSTGRES)
    postgres = PostgresServer(bindir)
    postgres.start()
    try:
        url = postgres.create_database()
        engine = create_store_engine(url)
        ensure_schema(engine)
        engine.dispose()
        print(f"filling {results} results and {logs} log entries ...", file=sys.stderr)
        yield url, fill(url, results, logs, big_runs)
    finally:
        postgres.stop()


# --- the API server --------------------------------------------------------------------------------------


def _kubernetes_ready(status: dict[str, Any]) -> bool:
    return status.get("kubernetes") in ("disabled", "synced")


@contextlib.contextmanager
def api_server(
    url: str,
    workdir: Path,
    *,
    command: Sequence[str] = ("-m", "jobplane.cli", "api"),
    ready: Callable[[dict[str, Any]], bool] = _kubernetes_ready,
    pids: list[int] | None = None,
    **settings: str,
) -> Iterator[str]:
    """`jobplane api` in a subprocess (its own interpreter: the client's work does not share its GIL).

    ``command``: the interpreter's arguments that serve the API with its settings from the environment;
    ``ready``: whether the API's /api/status/ answer says it is ready; ``pids``: gets the server's pid.
    """
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "JOBPLANE_API_DATABASE_URL": url,
        "JOBPLANE_API_HOST": "127.0.0.1",
        "JOBPLANE_API_PORT": str(port),
        **{f"JOBPLANE_API_{key.upper()}": value for key, value in settings.items()},
    }
    log = workdir / f"api-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, *command], env=env, stdout=out, stderr=subprocess.STDOUT)
    if pids is not None:
        pids.append(process.pid)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                status = httpx.get(f"{base}/api/status/", timeout=2).json()
                if ready(status):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- measuring -------------------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(samples: list[float]) -> dict[str, float]:
    """Milliseconds: p50, p95, p99 of samples given in seconds."""
    return {
        "n": len(samples),
        "p50": round(_percentile(samples, 0.50) * 1000, 2),
        "p95": round(_percentile(samples, 0.95) * 1000, 2),
        "p99": round(_percentile(samples, 0.99) * 1000, 2),
    }


def timed(call: Callable[[], object], requests: int, warmup: int, budget: float) -> list[float]:
    """Latencies of `requests` calls after `warmup` ones, stopping early once `budget` seconds are spent."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    deadline = time.monotonic() + budget
    for _ in range(requests):
        begin = time.perf_counter()
        call()
        samples.append(time.perf_counter() - begin)
        if time.monotonic() > deadline and len(samples) >= 20:
            break
    return samples


@dataclass
class Case:
    """One read path: its URL, who calls it, and the service call whose SQL is the raw baseline."""

    name: str
    path: str
    user: str
    service: Callable[[Any, Any], object]
    list_page: bool


def build_cases(dataset: Dataset, failures: int) -> list[Case]:
    from jobplane_api.pagination import PageParams
    from jobplane_api.services import results as service

    typical, big = str(dataset.typical_run), str(dataset.big_runs[0]) if dataset.big_runs else None
    deep = max(0, dataset.results - 50)
    deep_failures = max(0, failures - 50)
    deep_logs = max(0, dataset.logs - 50)
    base = "http://bench"

    def results_page(offset: int, **filters: str) -> Callable[[Any, Any], object]:
        return lambda session, principal: service.list_results(
            session=session,
            principal=principal,
            page=PageParams(limit=50, offset=offset, url=f"{base}/"),
            base_url=base,
            filters={key: [value] for key, value in filters.items()},
        )

    def logs_page(offset: int, **filters: str) -> Callable[[Any, Any], object]:
        return lambda session, principal: service.list_logs(
            session=session,
            principal=principal,
            page=PageParams(limit=50, offset=offset, url=f"{base}/"),
            base_url=base,
            filters={key: [value] for key, value in filters.items()},
        )

    def run_logs(result_id: str) -> Callable[[Any, Any], object]:
        return lambda session, principal: service.result_logs(
            session=session, principal=principal, result_id=result_id, base_url=base
        )

    results = "/api/extras/job-results/"
    cases = [
        Case("results first page", f"{results}?limit=50", "admin", results_page(0), True),
        Case("results deep page", f"{results}?limit=50&offset={deep}", "admin", results_page(deep), True),
        Case(
            "results ?status=FAILURE", f"{results}?status=FAILURE&limit=50", "admin",
            results_page(0, status="FAILURE"), True,
        ),
        Case(
            "results ?status=FAILURE deep", f"{results}?status=FAILURE&limit=50&offset={deep_failures}",
            "admin", results_page(deep_failures, status="FAILURE"), True,
        ),
        Case("results, constrained user", f"{results}?limit=50", VIEWER, results_page(0), True),
        Case("logs/ of a typical run", f"{results}{typical}/logs/", "admin", run_logs(typical), False),
        Case(
            "job-logs ?job_result=typical", f"/api/extras/job-logs/?job_result={typical}&limit=50", "admin",
            logs_page(0, job_result=typical), True,
        ),
        Case("job-logs first page", "/api/extras/job-logs/?limit=50", "admin", logs_page(0), True),
        Case(
            "job-logs deep page", f"/api/extras/job-logs/?limit=50&offset={deep_logs}", "admin",
            logs_page(deep_logs), True,
        ),
    ]  # fmt: skip
    if big is not None:
        cases += [
            Case(
                "job-logs ?job_result=big", f"/api/extras/job-logs/?job_result={big}&limit=50", "admin",
                logs_page(0, job_result=big), True,
            ),
            Case(
                "job-logs ?job_result=big deep",
                f"/api/extras/job-logs/?job_result={big}&limit=50&offset={BIG_RUN_ENTRIES - 50}", "admin",
                logs_page(BIG_RUN_ENTRIES - 50, job_result=big), True,
            ),
            Case("logs/ of a 10k-entry run", f"{results}{big}/logs/", "admin", run_logs(big), False),
        ]  # fmt: skip
    return cases


class StatementCapture:
    """The SQL statements (with parameters) a service call sends, to replay them without the API."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements: list[tuple[str, Any]] = []
        self.recording = False
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.recording:
            self.statements.append((statement, parameters))


def principals(session: Any, keys: dict[str, str]) -> dict[str, Any]:
    from jobplane_api.identity import authenticate

    now = datetime.now(UTC)
    return {
        user: authenticate(session=session, authorization=f"Token {key}", now=now)
        for user, key in keys.items()
    }


def captured_sql(url: str, cases: list[Case], keys: dict[str, str]) -> dict[str, list[tuple[str, Any]]]:
    """Each case's statements, as its service function sends them."""
    from jobplane_store.database import create_store_engine, make_sessionmaker

    engine = create_store_engine(url)
    capture = StatementCapture(engine)
    statements: dict[str, list[tuple[str, Any]]] = {}
    try:
        with make_sessionmaker(engine)() as session:
            callers = principals(session, keys)
            for case in cases:
                capture.statements = []
                capture.recording = True
                case.service(session, callers[case.user])
                capture.recording = False
                statements[case.name] = capture.statements
            session.rollback()
    finally:
        engine.dispose()
    return statements


def raw_sql_timings(
    url: str, statements: list[tuple[str, Any]], requests: int, warmup: int, budget: float
) -> list[float]:
    """The same statements on one raw psycopg connection, rows fetched: the database's share of a request."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:

        def run() -> None:
            with conn.cursor() as cursor:
                for statement, parameters in statements:
                    cursor.execute(statement, parameters)
                    cursor.fetchall()

        return timed(run, requests, warmup, budget)


def explain(url: str, statements: list[tuple[str, Any]]) -> list[str]:
    import psycopg

    plans = []
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for statement, parameters in statements:
            rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).fetchall()
            plans.append("\n".join(row[0] for row in rows))
    return plans


def measure_reads(
    base: str, url: str, cases: list[Case], keys: dict[str, str], args: argparse.Namespace
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    import httpx

    statements = captured_sql(url, cases, keys)
    rows = []
    with httpx.Client(base_url=base, timeout=60) as client:

        def get(path: str, user: str | None) -> Callable[[], object]:
            headers = {"Authorization": f"Token {keys[user]}"} if user else {}

            def call() -> None:
                response = client.get(path, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")

            return call

        status = summary(timed(get("/api/status/", None), args.requests, args.warmup, args.budget))
        for case in cases:
            http = summary(timed(get(case.path, case.user), args.requests, args.warmup, args.budget))
            raw = summary(
                raw_sql_timings(url, statements[case.name], args.requests, args.warmup, args.budget)
            )
            body = client.get(case.path, headers={"Authorization": f"Token {keys[case.user]}"})
            row: dict[str, Any] = {
                "case": case.name,
                "path": case.path,
                "user": case.user,
                "bytes": len(body.content),
                "http": http,
                "sql": raw,
                "statements": len(statements[case.name]),
                "p50_vs_status": round(http["p50"] / status["p50"], 1),
                "p50_vs_sql": round(http["p50"] / raw["p50"], 1) if raw["p50"] else None,
                "list_page": case.list_page,
            }
            if case.list_page and http["p95"] > AIM_MS:
                row["plans"] = explain(url, statements[case.name])
            rows.append(row)
            print(f"  measured {case.name}: p50 {http['p50']} ms p95 {http['p95']} ms", file=sys.stderr)
    return status, rows


# --- the run endpoint ------------------------------------------------------------------------------------


def _rate(count: int, threads: int, call: Callable[[int], None]) -> tuple[float, list[float]]:
    """Requests per second of `count` calls spread over `threads` threads, and their latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for index in range(offset, count, threads):
                begin = time.perf_counter()
                call(index)
                with lock:
                    latencies.append(time.perf_counter() - begin)
        except BaseException as exc:  # reported below, after the other threads end
            errors.append(exc)

    begin = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(offset,)) for offset in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return count / (time.perf_counter() - begin), latencies


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (every core, every process: /proc/stat's first line)."""
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")


def _machine_share(
    count: int, threads: int, call: Callable[[int], None]
) -> tuple[float, float, float, float]:
    """``_rate``'s requests/s, with the whole machine's CPU per request (ms: the API, the apiserver, etcd,
    the webhooks, Postgres and this client together), how busy its cores were (% of all of them), and this
    client's own CPU per request (ms: its part of the machine's, spent by a real client elsewhere)."""
    busy, mine, begin = _machine_busy_s(), _cpu_seconds(os.getpid()), time.perf_counter()
    rate, _ = _rate(count, threads, call)
    used, elapsed = _machine_busy_s() - busy, time.perf_counter() - begin
    client = _cpu_seconds(os.getpid()) - mine
    return rate, used * 1000 / count, 100 * used / (elapsed * (os.cpu_count() or 1)), client * 1000 / count


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording the API's thread that holds the GIL (where its Python CPU goes), until stopped
    (SIGINT writes the file)."""
    spy = Path(sys.executable).parent / "py-spy"
    command = [str(spy), "record", "--gil", "--threads", "--format", "raw", "--rate", "100"]
    command += ["--pid", str(pid), "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_py_spy(profiler: subprocess.Popen[bytes]) -> None:
    import signal

    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and of its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(ordered[len(ordered) // 2], 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
    }


def measure_runs(url: str, admin_key: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The run endpoint's requests/s, sequential and from ``--threads`` threads, taken ``--rounds`` times in
    turn with its baselines: ``GET /api/status/`` of the same server from as many threads (the app's floor:
    the same HTTP stack, session and one SQL round trip), and the Kubernetes client creating the same
    JobRuns directly (the apiserver's floor, without the admission webhook)."""
    import httpx
    from kubernetes import client, config

    from tests.cluster.cluster import Cluster, wait_for
    from tests.stack import ADMISSION_OPT_OUT, EXAMPLES, apply_crds

    t0 = time.monotonic()
    with Cluster(node=False, kwok=False) as cluster:
        config.load_kube_config(str(cluster.kubeconfig))
        apply_crds(cluster)
        for namespace in (NAMESPACE, DIRECT_NAMESPACE):
            cluster.kubectl("create", "namespace", namespace)
        # The baseline creates JobRuns with the client alone: no definitions there, so no admission either.
        cluster.kubectl("label", "namespace", DIRECT_NAMESPACE, f"{ADMISSION_OPT_OUT}=disabled")
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "JOBPLANE_JOBS_ROOT": str(EXAMPLES)}
        subprocess.run(
            [sys.executable, "-m", "jobplane.cli", "sync-jobs", "--namespace", NAMESPACE],
            env=env, check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        definition = next(
            item
            for item in cluster.get_json("jobdefinitions", "-n", NAMESPACE)["items"]
            if (item.get("status") or {}).get("classPath") == RUN_CLASS_PATH
        )
        name = definition["metadata"]["name"]
        cluster.kubectl(
            "patch",
            "jobdefinition",
            name,
            "-n",
            NAMESPACE,
            "--type=merge",
            "-p",
            '{"spec": {"enabled": true}}',
        )
        setup = time.monotonic() - t0

        custom = client.CustomObjectsApi()
        spec = {"job": name, "queue": "default", "requestedBy": "admin", "data": RUN_BODY["data"]}

        def direct(_index: int, namespace: str = DIRECT_NAMESPACE) -> None:
            body = {
                "apiVersion": "jobplane.io/v1alpha1",
                "kind": "JobRun",
                "metadata": {"generateName": f"{name[:40]}-", "labels": {"jobplane.io/requested-via": "api"}},
                "spec": spec,
            }
            custom.create_namespaced_custom_object("jobplane.io", "v1alpha1", namespace, "jobruns", body)

        def admitted(index: int) -> None:
            # Where the API creates its runs: through the admission webhooks, as every run in a release.
            direct(index, NAMESPACE)

        threads = args.threads
        figures: dict[str, Any] = {"runs": args.runs, "threads": threads, "cluster_setup_s": round(setup, 1)}
        rounds: list[dict[str, float]] = []
        direct_latencies: list[float] = []
        api_latencies: list[float] = []
        for _ in range(10):
            direct(0)

        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        pids: list[int] = []
        with api_server(
            url, workdir, pids=pids, kubernetes="true", namespace=NAMESPACE, run_token_key="b" * 64
        ) as base:
            clients = threading.local()
            headers = {"Authorization": f"Token {admin_key}"}
            path = f"/api/extras/jobs/{definition['metadata']['uid']}/run/"

            def http() -> httpx.Client:
                found = getattr(clients, "http", None)
                if found is None:
                    found = clients.http = httpx.Client(base_url=base, timeout=60, headers=headers)
                return found

            def post(_index: int) -> None:
                response = http().post(path, json=RUN_BODY)
                if response.status_code != 201:
                    raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")

            def status(_index: int) -> None:
                response = http().get("/api/status/")
                if response.status_code != 200:
                    raise RuntimeError(f"GET /api/status/: {response.status_code} {response.text[:300]}")

            for _ in range(10):
                post(0)
                status(0)
            created = 10
            parts: list[Path] = []
            for _ in range(args.rounds):
                # In turn, so that each round's figures and their baselines see the same machine.
                row: dict[str, float] = {"load_1m": os.getloadavg()[0]}
                # The profile covers the API's own requests only: the client's JobRuns of the baselines
                # below are in the API's namespace too, and its mirror's work on them is not the endpoint's.
                if args.py_spy:
                    parts.append(args.py_spy.with_name(f"{args.py_spy.name}.{len(parts)}"))
                    profiler = _py_spy(pids[0], parts[-1])
                    time.sleep(1)  # py-spy attaches
                used = _cpu_seconds(pids[0])
                row["status_per_s"], _ = _rate(args.runs, threads, status)
                row["status_cpu_ms"], used = (
                    (_cpu_seconds(pids[0]) - used) * 1000 / args.runs,
                    _cpu_seconds(pids[0]),
                )
                row["api_sequential_per_s"], latencies = _rate(args.runs, 1, post)
                api_latencies += latencies
                (
                    row["api_threads_per_s"],
                    row["machine_cpu_ms_api"],
                    row["machine_busy_pct_api"],
                    row["client_cpu_ms_api"],
                ) = _machine_share(args.runs, threads, post)
                row["api_cpu_ms"] = (_cpu_seconds(pids[0]) - used) * 1000 / (2 * args.runs)
                if args.py_spy:
                    _stop_py_spy(profiler)
                row["direct_sequential_per_s"], latencies = _rate(args.runs, 1, direct)
                direct_latencies += latencies
                row["direct_threads_per_s"], _ = _rate(args.runs, threads, direct)
                (
                    row["admitted_threads_per_s"],
                    row["machine_cpu_ms_admitted"],
                    row["machine_busy_pct_admitted"],
                    row["client_cpu_ms_admitted"],
                ) = _machine_share(args.runs, threads, admitted)
                created += 3 * args.runs
                row["api_vs_admitted_threads"] = row["api_threads_per_s"] / row["admitted_threads_per_s"]
                row["api_vs_status"] = row["api_threads_per_s"] / row["status_per_s"]
                row["api_vs_direct_sequential"] = row["api_sequential_per_s"] / row["direct_sequential_per_s"]
                row["api_vs_direct_threads"] = row["api_threads_per_s"] / row["direct_threads_per_s"]
                rounds.append({key: round(value, 2) for key, value in row.items()})
                print(f"  run endpoint round: {rounds[-1]}", file=sys.stderr)
            if parts:
                # py-spy's raw format is one folded stack and its count a line: the rounds' files add up.
                texts = [part.read_text() for part in parts if part.exists()]
                args.py_spy.write_text("".join(text.rstrip("\n") + "\n" for text in texts))
                for part in parts:
                    part.unlink(missing_ok=True)
            wait_for(
                "the API's runs in Kubernetes",
                lambda: (
                    len(
                        custom.list_namespaced_custom_object("jobplane.io", "v1alpha1", NAMESPACE, "jobruns")[
                            "items"
                        ]
                    )
                    >= created
                    or None
                ),
                timeout=60,
            )
    figures["rounds"] = rounds
    for key in rounds[0]:
        figures[key] = _spread([row[key] for row in rounds])
    figures["direct_latency_ms"] = summary(direct_latencies)
    figures["api_latency_ms"] = summary(api_latencies)
    return figures


# --- the report ------------------------------------------------------------------------------------------


def print_table(status: dict[str, float], rows: list[dict[str, Any]]) -> None:
    print(
        f"baseline GET /api/status/: p50 {status['p50']} ms, p95 {status['p95']} ms, p99 {status['p99']} ms"
    )
    header = (
        f"{'case':32} {'n':>4} {'p50':>8} {'p95':>8} {'p99':>8} {'sql p50':>8} {'sql p95':>8} "
        f"{'x status':>8} {'x sql':>6} {'kB':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        http, sql = row["http"], row["sql"]
        flag = " > aim" if row["list_page"] and http["p95"] > AIM_MS else ""
        print(
            f"{row['case']:32} {http['n']:>4} {http['p50']:>8} {http['p95']:>8} {http['p99']:>8} "
            f"{sql['p50']:>8} {sql['p95']:>8} {row['p50_vs_status']:>8} {row['p50_vs_sql'] or '-':>6} "
            f"{row['bytes'] // 1024:>6}{flag}"
        )
    print(
        "(ms; 'x status': p50 over the /api/status/ p50; 'x sql': p50 over the same SQL's p50, raw psycopg)"
    )
    for row in rows:
        for plan in row.get("plans", []):
            print(f"\nEXPLAIN ANALYZE, {row['case']} (p95 above {AIM_MS:.0f} ms):\n{plan}")


def print_runs(runs: dict[str, Any]) -> None:
    threads = runs["threads"]
    print(f"\nrun endpoint, {runs['runs']} runs per measure, {len(runs['rounds'])} rounds (requests/s):")
    header = (
        f"{'round':>5} {'load':>5} {'status/s':>9} {'run/s 1':>8} {f'run/s {threads}':>8} "
        f"{'direct/s 1':>10} {f'direct/s {threads}':>10} {'x status':>8} {'x direct 1':>10} "
        f"{f'x direct {threads}':>10} {f'admitted/s {threads}':>12} {'x admitted':>10} {'cpu ms status':>13} "
        f"{'cpu ms run':>10} {'machine ms run':>14} {'busy % run':>10} {'machine ms admitted':>18} "
        f"{'busy % admitted':>15} {'client ms run':>13} {'client ms admitted':>18}"
    )
    print(header)
    print("-" * len(header))
    for index, row in enumerate(runs["rounds"], 1):
        print(
            f"{index:>5} {row['load_1m']:>5} {row['status_per_s']:>9} {row['api_sequential_per_s']:>8} "
            f"{row['api_threads_per_s']:>8} {row['direct_sequential_per_s']:>10} "
            f"{row['direct_threads_per_s']:>10} {row['api_vs_status']:>8} "
            f"{row['api_vs_direct_sequential']:>10} {row['api_vs_direct_threads']:>10} "
            f"{row['admitted_threads_per_s']:>12} {row['api_vs_admitted_threads']:>10} "
            f"{row['status_cpu_ms']:>13} {row['api_cpu_ms']:>10} {row['machine_cpu_ms_api']:>14} "
            f"{row['machine_busy_pct_api']:>10} {row['machine_cpu_ms_admitted']:>18} "
            f"{row['machine_busy_pct_admitted']:>15} {row['client_cpu_ms_api']:>13} "
            f"{row['client_cpu_ms_admitted']:>18}"
        )
    print(
        f"(status/s: GET /api/status/ from {threads} threads; run/s: POST .../run/ sequential and from "
        f"{threads} threads; direct/s: the same JobRuns created with the Kubernetes client; x status: run/s "
        f"{threads} over status/s;\nadmitted/s: direct, through the admission webhooks as the API's runs; "
        "cpu ms: the API process's CPU per request, its watch threads included;\nmachine ms: the whole "
        "machine's CPU per request (API, apiserver, etcd, webhooks, Postgres, this client), busy %: of all "
        "its cores, while the threaded runs and the admitted ones ran; client ms: this script's own CPU per "
        "request, part of the machine's)\n"
        f"API p50 {runs['api_latency_ms']['p50']} ms, direct p50 {runs['direct_latency_ms']['p50']} ms "
        "(sequential)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000, help="job results to write")
    parser.add_argument("--logs", type=int, default=1_000_000, help="log entries to write")
    parser.add_argument("--big-runs", type=int, default=5, help=f"runs with {BIG_RUN_ENTRIES} log entries")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per read case")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests before each case")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds at most per case (>= 20 samples)")
    parser.add_argument("--runs", type=int, default=300, help="JobRuns created per run-endpoint measure")
    parser.add_argument("--no-cluster", action="store_true", help="skip the run endpoint (needs root)")
    parser.add_argument("--runs-only", action="store_true", help="only the run endpoint (a small store)")
    parser.add_argument("--threads", type=int, default=4, help="client threads of the concurrent measures")
    parser.add_argument("--rounds", type=int, default=3, help="run-endpoint rounds, baselines taken in turn")
    parser.add_argument(
        "--py-spy", type=Path, help="record the API (GIL holder) with py-spy (raw) during its own requests"
    )
    parser.add_argument(
        "--try-indexes", action="store_true", help="measure the job-results cases again with PROPOSED_INDEXES"
    )
    args = parser.parse_args()
    if args.runs_only:
        if args.no_cluster:
            parser.error("--runs-only measures the run endpoint, which needs the cluster")
        # The run path reads no results: a small store is enough (unless the sizes are given).
        given = set(sys.argv)
        args.results = args.results if "--results" in given else 1000
        args.logs = args.logs if "--logs" in given else 1000
        args.big_runs = args.big_runs if "--big-runs" in given else 0

    if _postgres_bindir() is None:
        print(NO_POSTGRES, file=sys.stderr)
        return 2
    report: dict[str, Any] = {"results": args.results, "logs": args.logs, "aim_p95_ms": AIM_MS}
    with filled_store(args.results, args.logs, args.big_runs) as (url, dataset):
        report["fill_s"] = round(dataset.seconds, 1)
        keys = create_identities(url)
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            failures = conn.execute("SELECT count(*) FROM job_result WHERE status = 'FAILURE'").fetchone()
        cases = build_cases(dataset, int(failures[0]) if failures else 0)
        with tempfile.TemporaryDirectory(prefix="jobplane-bench-") as tmp:
            workdir = Path(tmp)
            if not args.runs_only:
                with api_server(url, workdir, kubernetes="false") as base:
                    status, rows = measure_reads(base, url, cases, keys, args)
                    if args.try_indexes:
                        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
                            for statement in PROPOSED_INDEXES:
                                conn.execute(statement)
                        print("measuring again with the proposed indexes ...", file=sys.stderr)
                        listed = [case for case in cases if case.path.startswith("/api/extras/job-results/?")]
                        _, after = measure_reads(base, url, listed, keys, args)
                report["status_ms"] = status
                report["reads"] = [
                    {key: value for key, value in row.items() if key != "plans"} for row in rows
                ]
                list_p95 = [row["http"]["p95"] for row in rows if row["list_page"]]
                report["worst_list_page_p95_ms"] = max(list_p95) if list_p95 else None
                print_table(status, rows)
                if args.try_indexes:
                    report["with_proposed_indexes"] = [
                        {key: value for key, value in row.items() if key != "plans"} for row in after
                    ]
                    print("\nwith the proposed indexes (PROPOSED_INDEXES):")
                    print_table(status, after)
            if not args.no_cluster:
                print("measuring the run endpoint on a local control plane ...", file=sys.stderr)
                report["run_endpoint"] = runs = measure_runs(url, keys["admin"], workdir, args)
                print_runs(runs)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
