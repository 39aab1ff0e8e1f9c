"""The pod's reporter to the API: started, log batches, files, input files and the result, over HTTP.

Every event still goes to stdout as :class:`jobplane_runtime.pod.StdoutReporter` writes it; the API is told as
well, with the run-scoped token. Reporting never fails the job: when the API cannot be reached after a
few tries, the pod says so once on stderr and carries on with stdout alone (its termination message
still carries the outcome). Only :meth:`ApiReporter.create_file` raises, since a file the job asked
for could not be kept.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any, TextIO
from urllib.parse import unquote

import httpx

from jobplane.joblog import LogEntry
from jobplane.variables import VariableError
from jobplane_runtime.pod import StdoutReporter

__all__ = ["BATCH_SIZE", "FLUSH_INTERVAL", "RETRY_DELAYS", "TIMEOUT", "ApiReporter"]

log = logging.getLogger(__name__)

# Log entries go in one POST every FLUSH_INTERVAL seconds, or as soon as BATCH_SIZE are waiting.
FLUSH_INTERVAL = 0.5
BATCH_SIZE = 200
# A connection error or a 5xx is tried again after each of these delays (3 tries over ~5 s), then the
# API is taken for unreachable for the rest of the run.
RETRY_DELAYS: tuple[float, ...] = (1.5, 3.0)
TIMEOUT = 10.0


class _Unreachable(Exception):
    """The API could not be reached (or refused the token): nothing more is sent to it."""


class _Refused(Exception):
    """The API answered this one request with a 4xx: that request is lost, the next ones may pass."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        self.detail = str(detail or response.text[:200] or response.reason_phrase)
        super().__init__(f"HTTP {self.status_code}: {self.detail}")


def _filename(response: httpx.Response) -> str | None:
    disposition = str(response.headers.get("content-disposition") or "")
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename*" and "''" in value:
            return unquote(value.split("''", 1)[1])
        if key.lower() == "filename":
            return value.strip('"')
    return None


class ApiReporter:
    """Reports a run to the API at ``api_url`` as run ``run_uid``, and on stdout like StdoutReporter.

    ``started_body`` is what ``started/`` receives (class path, run name, namespace, user): never the
    job's inputs. Log entries are batched by a background thread; :meth:`finished` and :meth:`flush`
    send what is left.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        api_url: str,
        token: str,
        run_uid: str,
        max_file_size: int,
        run: Mapping[str, Any] | None = None,
        started_body: Mapping[str, Any] | None = None,
        err: TextIO | None = None,
        flush_interval: float = FLUSH_INTERVAL,
        batch_size: int = BATCH_SIZE,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        timeout: float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.stdout = StdoutReporter(out, max_file_size=max_file_size, run=run)
        self._api_url = api_url.rstrip("/")
        self._max_file_size = max_file_size
        self._started_body = dict(started_body or {})
        self._err = err
        self._interval = flush_interval
        self._batch_size = batch_size
        self._retry_delays = tuple(retry_delays)
        self._client_options: dict[str, Any] = {
            "base_url": f"{self._api_url}/api/runs/{run_uid}/",
            "headers": {"Authorization": f"Bearer {token.strip()}", "User-Agent": "jobplane-run-pod"},
            "timeout": timeout,
            "transport": transport,
        }
        self._client = httpx.Client(**self._client_options)
        self._reachable = True
        self._warned: set[str] = set()
        # Reentrant: the SIGTERM handler may flush while the main thread is inside log().
        self._pending_lock = threading.Condition(threading.RLock())
        self._pending: list[dict[str, Any]] = []
        # One sender at a time, so batches reach the API in the order they were logged.
        self._send_lock = threading.Lock()
        self._stopping = threading.Event()
        self._sender: threading.Thread | None = None
        self._closed = False

    # --- what StdoutReporter offers ------------------------------------------------------------

    @property
    def last_failure(self) -> str | None:
        return self.stdout.last_failure

    @property
    def reachable(self) -> bool:
        """False once the API was given up on: the rest of the run goes to stdout only."""
        return self._reachable

    def emit(self, event: Mapping[str, Any]) -> None:
        self.stdout.emit(event)

    def started(self) -> None:
        self.stdout.started()
        self._start_sender()
        try:
            self._send("POST", "started/", json=self._started_body)
        except _Unreachable:
            pass
        except _Refused as exc:
            # Without its result row the API refuses the logs too: stop talking to it.
            self._give_up(f"the API refused started/ ({exc})")

    def log(self, entry: LogEntry) -> None:
        if self._reachable:
            self._queue(entry)
        # Queued first: a SIGTERM that lands in the stdout write still finds the entry to flush.
        self.stdout.log(entry)

    def _queue(self, entry: LogEntry) -> None:
        item = entry.as_report()
        with self._pending_lock:
            self._pending.append(item)
            if len(self._pending) >= self._batch_size:
                self._pending_lock.notify()

    def create_file(self, name: str, content: bytes) -> str:
        if len(content) > self._max_file_size:
            raise ValueError(
                f"File {name!r} is {len(content)} bytes, above the limit of {self._max_file_size} bytes "
                "(JOBPLANE_CREATE_FILE_MAX_SIZE)"
            )
        try:
            response = self._send(
                "POST", "files/", files={"file": (name, content, "application/octet-stream")}
            )
        except _Unreachable as exc:
            raise RuntimeError(f"Could not upload file {name!r}: {exc}") from None
        except _Refused as exc:
            if exc.status_code == 413:
                raise ValueError(f"File {name!r} was refused by the API: {exc.detail}") from None
            raise RuntimeError(f"Could not upload file {name!r}: {exc}") from None
        file_id = str(response.json()["id"])
        self.stdout.emit({"type": "file", "id": file_id, "name": name, "size": len(content)})
        return file_id

    def open_input_file(self, file_id: str) -> IO[bytes]:
        try:
            response = self._send("GET", f"input-files/{file_id}/")
        except _Unreachable as exc:
            raise VariableError(f"Could not fetch the uploaded file {file_id}: {exc}") from None
        except _Refused as exc:
            if exc.status_code == 404:
                raise VariableError(f"No uploaded file with id {file_id} for this run") from None
            raise VariableError(f"Could not fetch the uploaded file {file_id}: {exc}") from None
        handle = io.BytesIO(response.content)
        handle.name = _filename(response) or file_id
        return handle

    def discard_input_files(self, file_ids: list[str]) -> None:
        if not file_ids:
            return
        try:
            self._send("DELETE", "input-files/")
        except _Unreachable:
            pass  # already said once
        except _Refused as exc:
            # The API deletes a run's inputs with its result anyway; nothing the job can do.
            self._warn_once("discard", f"could not discard the run's input files: {exc}")

    def finished(self, status: str, result: Any, traceback: str | None) -> None:
        self.stdout.finished(status, result, traceback)
        self._stop_sender()
        self._send_pending()
        try:
            self._send("POST", "result/", json={"status": status, "result": result, "traceback": traceback})
        except _Unreachable:
            pass
        except _Refused as exc:
            self._warn_once("result", f"the API refused the result: {exc}")
        self.close()

    # --- flushing and closing ------------------------------------------------------------------

    def flush(self, timeout: float) -> None:
        """Send the waiting log entries within ``timeout`` seconds, without retries (SIGTERM's flush)."""
        if self._closed:
            return
        # A client of its own: the signal may have interrupted the main thread inside the shared one.
        with httpx.Client(**self._client_options) as client:
            self._send_pending(deadline=time.monotonic() + timeout, client=client)

    def close(self) -> None:
        """Stop the batching thread and release the connections; entries still waiting are dropped."""
        self._stop_sender()
        self._closed = True
        self._client.close()

    # --- internals -------------------------------------------------------------------------------

    def _start_sender(self) -> None:
        if self._sender is None and self._reachable:
            self._sender = threading.Thread(target=self._send_loop, name="jobplane-log-sender", daemon=True)
            self._sender.start()

    def _stop_sender(self) -> None:
        self._stopping.set()
        with self._pending_lock:
            self._pending_lock.notify()
        sender = self._sender
        if sender is not None and sender is not threading.current_thread():
            sender.join()

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            with self._pending_lock:
                self._pending_lock.wait_for(
                    lambda: self._stopping.is_set() or len(self._pending) >= self._batch_size,
                    timeout=self._interval,
                )
            if self._stopping.is_set():
                return  # what is left is sent by finished() (or flush()), in the caller's thread
            self._send_pending()

    def _send_pending(self, deadline: float | None = None, client: httpx.Client | None = None) -> None:
        if deadline is None:
            self._send_lock.acquire()
        elif not self._send_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return
        try:
            while True:
                with self._pending_lock:
                    batch = self._pending[: self._batch_size]
                    del self._pending[: len(batch)]
                if not batch or not self._reachable:
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return
                try:
                    self._send("POST", "logs/", json={"entries": batch}, deadline=deadline, client=client)
                except _Unreachable:
                    return
                except _Refused as exc:
                    # A batch the API will never take (e.g. after a bad entry): lost, said once.
                    self._warn_once("logs", f"the API refused {len(batch)} log entries: {exc}")
        finally:
            self._send_lock.release()

    def _send(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None = None,
        client: httpx.Client | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, tried again on connection errors and 5xx; _Unreachable once it gives up."""
        if not self._reachable or self._closed:
            raise _Unreachable(f"the API at {self._api_url} is unreachable")
        delays = (0.0, *self._retry_delays) if deadline is None else (0.0,)
        problem = ""
        for delay in delays:
            if delay:
                time.sleep(delay)
            if deadline is not None:
                kwargs["timeout"] = max(0.1, deadline - time.monotonic())
            try:
                response = (client or self._client).request(method, path, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.status_code >= 500:
                problem = f"HTTP {response.status_code} from {method} {path}"
                continue
            if response.status_code in (401, 403):
                self._give_up(f"the API refused the run token (HTTP {response.status_code})")
                raise _Unreachable(f"the API at {self._api_url} refused the run token")
            if response.status_code >= 400:
                raise _Refused(response)
            return response
        if deadline is None:
            self._give_up(problem)
        raise _Unreachable(f"the API at {self._api_url} is unreachable ({problem})")

    def _give_up(self, problem: str) -> None:
        if not self._reachable:
            return
        self._reachable = False
        with self._pending_lock:
            self._pending.clear()
        self._say(
            f"jobplane: cannot report to the API at {self._api_url} ({problem}); "
            "the rest of this run is reported on stdout only"
        )

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self._say(f"jobplane: {message}")

    def _say(self, message: str) -> None:
        if self._err is None:
            log.warning("reporting problem api_url=%s message=%s", self._api_url, message)
            return
        with contextlib.suppress(OSError, ValueError):  # stderr closed: the run still goes on
            print(message, file=self._err, flush=True)
