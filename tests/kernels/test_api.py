"""The notebook side's API client against servers that answer badly: each failure is an
ApiError with one line saying what happened, never a traceback (app/kernels/api.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.kernels.api import Api, ApiError
from tests.support.server import free_port

FORBIDDEN = {
    "data": None,
    "errors": [{"message": "Only the creator\ncan do it.", "extensions": {"code": "FORBIDDEN"}}],
}
# path: (HTTP status, body); `None`: the connection closes without an answer.
ANSWERS: dict[str, tuple[int, bytes] | None] = {
    "/list": (200, b"[]"),
    "/null": (200, b"null"),
    "/html": (502, b"<html><body>Bad Gateway</body></html>"),
    "/deep": (200, b"[" * 100_000),
    "/no-data": (200, b'{"data": null}'),
    "/forbidden": (200, json.dumps(FORBIDDEN).encode()),
    "/forbidden-403": (403, json.dumps(FORBIDDEN).encode()),
    "/odd-error": (200, b'{"errors": ["something"]}'),
    "/null-version": (200, b'{"data": {"version": null}}'),
    "/list-version": (200, b'{"data": {"version": []}}'),
    "/ok": (200, b'{"data": {"version": {"id": "1"}}}'),
    "/drop": None,
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/cut":  # promises more than it sends
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"data": ')
            self.close_connection = True
            return
        answer = ANSWERS[self.path]
        if answer is None:
            self.close_connection = True
            return
        status, body = answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def refusal(url: str, field: str | None = None) -> ApiError:
    api = Api(url, "ey_token", timeout=10)
    with pytest.raises(ApiError) as caught:
        api.field("{ version }", field) if field else api("{ version }")
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/list", "answered with JSON that is not a GraphQL response"),
        ("/null", "answered with JSON that is not a GraphQL response"),
        ("/html", "answered HTTP 502 with something that is not JSON"),
        ("/deep", "answered with something that is not JSON"),
        ("/no-data", "answered without data"),
        ("/odd-error", "answered with an error that says nothing: something"),
        ("/cut", "broke off its answer: IncompleteRead"),
        ("/drop", "broke off its answer: Remote end closed connection without response"),
    ],
)
def test_answers_that_are_not_the_apis(base: str, path: str, said: str) -> None:
    error = refusal(base + path)
    assert str(error).startswith(f"envyard at {base}{path} "), error
    assert said in str(error)
    assert error.code is None


def test_the_apis_own_refusal_keeps_its_code(base: str) -> None:
    for path in ("/forbidden", "/forbidden-403"):
        error = refusal(base + path)
        assert (str(error), error.code) == ("Only the creator can do it.", "FORBIDDEN")


def test_a_field_that_is_not_an_object(base: str) -> None:
    for path in ("/null-version", "/list-version"):
        assert str(refusal(base + path, "version")) == (
            f"envyard at {base}{path} answered without version"
        )
    assert Api(base + "/ok", "t").field("{ version }", "version") == {"id": "1"}


def test_nobody_listening() -> None:
    url = f"http://127.0.0.1:{free_port()}/graphql"
    error = refusal(url)
    assert str(error).startswith(f"envyard at {url} is not reachable: ")
    assert "Connection refused" in str(error)
    assert "is not a usable address" in str(refusal("http://127.0.0.1:notaport/graphql"))
