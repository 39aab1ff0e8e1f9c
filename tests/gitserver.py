"""A Git smart-HTTP server for tests: `git http-backend` behind HTTP basic auth on 127.0.0.1.

    with GitHttpServer(root, "ann", "s3cret") as server:
        url = server.url_for("jobs.git")  # http://127.0.0.1:<port>/jobs.git, serving root/jobs.git

Every repository under ``root`` is served (clone, fetch, ls-remote, and push for authenticated users).
Requests without the right ``Authorization: Basic`` header get 401 with a ``WWW-Authenticate`` challenge.
Every Authorization header received, right or wrong, is kept (``server.authorizations``), so a test can
tell which credentials reached the server and which never did.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import subprocess
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["GitHttpServer", "GitRepo"]

REALM = "jobplane-test-git"
# Headers git sends that http-backend reads as CGI variables.
FORWARDED_HEADERS = {
    "Git-Protocol": "HTTP_GIT_PROTOCOL",
    "Content-Encoding": "HTTP_CONTENT_ENCODING",
    "User-Agent": "HTTP_USER_AGENT",
}


class GitHttpServer:
    """Serves the Git repositories under ``root`` over smart HTTP, with basic auth unless username is None.

    ``protocol_v2=False`` hides the client's Git-Protocol header, so the server speaks protocol v0 as old
    servers do (which refuse to send a commit that no branch or tag points at).
    """

    def __init__(
        self,
        root: Path,
        username: str | None,
        password: str | None,
        *,
        protocol_v2: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.root = root.resolve()
        # A test cluster's pods (on its pod network) reach the host at the cluster's bridge address
        # (Cluster.apiserver_ip), not at 127.0.0.1: the e2e tests serve there.
        self.host = host
        self.username = username
        self.password = password
        self.protocol_v2 = protocol_v2
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), in arrival order
        self.authorizations: list[tuple[str, str]] = []  # (path, Authorization header), in arrival order
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running: use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url_for(self, repo_name: str) -> str:
        """The clone URL of ``root/<repo_name>``."""
        return f"{self.base_url}/{repo_name.strip('/')}"

    def authorized(self, header: str | None) -> bool:
        if self.username is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.username}:{self.password or ''}"
        return hmac.compare_digest(decoded.encode(), expected.encode())

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def record_authorization(self, path: str, header: str) -> None:
        with self._lock:
            self.authorizations.append((path, header))

    def basic_credentials(self, repo_name: str | None = None) -> list[str]:
        """The ``user:password`` pairs received in Basic Authorization headers (of requests for
        ``repo_name`` only, when given), in arrival order; a header that is not Basic is kept as it came."""
        with self._lock:
            received = list(self.authorizations)
        wanted = f"/{repo_name.strip('/')}/" if repo_name else "/"
        pairs = []
        for path, header in received:
            if not (urlsplit(path).path.rstrip("/") + "/").startswith(wanted):
                continue
            scheme, _, value = header.partition(" ")
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = header
            pairs.append(decoded if scheme.lower() == "basic" else header)
        return pairs

    def __enter__(self) -> GitHttpServer:
        self._httpd = ThreadingHTTPServer((self.host, 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="git-http", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        # git sends large POST bodies chunked (above http.postBuffer).
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # the CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _split_cgi_output(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a CGI response (headers end at the first blank line)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = output.partition(separator)
        if found:
            break
    else:
        return 502, [("Content-Type", "text/plain")], b"http-backend gave no headers\n"
    status = 200
    headers = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.strip().split(" ", 1)[0])
        elif name.strip():
            headers.append((name.strip(), value.strip()))
    return status, headers, body


def _handler_for(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test output is not the place for an access log."""

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            server.record(self.command, self.path, status)

        def _serve(self) -> None:
            body = _read_body(self)
            authorization = self.headers.get("Authorization")
            if authorization is not None:
                server.record_authorization(self.path, authorization)
            if not server.authorized(authorization):
                challenge = [("WWW-Authenticate", f'Basic realm="{REALM}"'), ("Content-Type", "text/plain")]
                self._reply(401, challenge, b"authentication required\n")
                return
            parts = urlsplit(self.path)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.0",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": parts.path,
                "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": self.client_address[0],
            }
            if server.username is not None:
                env["REMOTE_USER"] = server.username  # lets authenticated users push
            for header, variable in FORWARDED_HEADERS.items():
                value = self.headers.get(header)
                if value is not None and (server.protocol_v2 or header != "Git-Protocol"):
                    env[variable] = value
            done = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            )
            if done.returncode != 0 and not done.stdout:
                self._reply(500, [("Content-Type", "text/plain")], done.stderr or b"http-backend failed\n")
                return
            self._reply(*_split_cgi_output(done.stdout))

    return Handler


class GitRepo:
    """A Git repository on disk that a test writes and commits to; fetched over file:// or served.

    Its git runs with no user or system configuration (the author is fixed), so the host's settings
    cannot change what a test sees.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
        }
        path.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch=main")

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def commit(
        self, files: dict[str, str | bytes | None], message: str = "change", *, push_to: Path | None = None
    ) -> str:
        """Write (str/bytes), or delete (None), files and commit them; returns the commit id.

        ``push_to``: a bare repository that then gets the commit as its main branch.
        """
        for name, content in files.items():
            target = self.path / name
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(textwrap.dedent(content), encoding="utf-8")
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        if push_to is not None:
            self.git("push", "--quiet", str(push_to), "HEAD:main")
        return self.git("rev-parse", "HEAD")
