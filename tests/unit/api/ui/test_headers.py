"""The UI's security headers middleware on a bare Starlette app: pages get them, the REST API does not."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from jobplane_api.ui.headers import CONTENT_SECURITY_POLICY, PageSecurityHeaders


def _page(_request: Request) -> Response:
    return PlainTextResponse("page")


def _framable(_request: Request) -> Response:
    return PlainTextResponse("embeddable", headers={"X-Frame-Options": "SAMEORIGIN"})


def _stream(_request: Request) -> Response:
    return StreamingResponse(iter([b"a", b"b"]), media_type="text/plain")


def _client() -> TestClient:
    routes = [
        Route("/page/", _page),
        Route("/framable/", _framable),
        Route("/stream/", _stream),
        Route("/api/status/", _page),
        Route("/api", _page),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(PageSecurityHeaders)
    return TestClient(app)


def test_pages_and_their_errors_carry_the_security_headers() -> None:
    client = _client()
    for path in ("/page/", "/stream/", "/no-such-page/"):
        answer = client.get(path)
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "same-origin", path
    assert client.get("/stream/").text == "ab"


def test_a_header_the_page_sets_itself_is_kept() -> None:
    answer = _client().get("/framable/")
    assert answer.headers["x-frame-options"] == "SAMEORIGIN"
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_rest_api_answers_without_them() -> None:
    client = _client()
    for path in ("/api/status/", "/api"):
        answer = client.get(path)
        assert answer.status_code == 200
        assert "content-security-policy" not in answer.headers, path
        assert "x-frame-options" not in answer.headers, path
