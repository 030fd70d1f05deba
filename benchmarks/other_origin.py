"""A second origin on loopback that records everything sent to it: where a redirect must never take secrets.

``with OtherOrigin() as elsewhere:`` serves ``elsewhere.base_url`` (another port is another origin) and keeps
every request it receives, raw (request line, headers, body), so that a test or the fault matrix can say
whether a password, an access token or a refresh token reached it. It answers every request with 200 and an
empty JSON object: a client that followed a redirect there would believe it and carry on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_MARKERS = (
    (b"preservica-access-token:", "an access token"),
    (b"authorization:", "an S3 access key (the token)"),
    (b"refreshtoken=", "a refresh token"),
    (b"twofactortoken=", "a 2FA code"),
    (b"password=", "a password field"),
)


class _Recording(BaseHTTPRequestHandler):
    server: _Server

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        head = f"{self.requestline}\r\n{self.headers}".encode("latin-1", "replace")
        with self.server.lock:
            self.server.received.append(head + body)
        payload = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _record

    def log_message(self, format: str, *args: object) -> None:
        pass  # what arrives may hold secrets: never print it


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recording)
        self.lock = threading.Lock()
        self.received: list[bytes] = []


class OtherOrigin:
    """A recording HTTP server on ``127.0.0.1`` and a free port, in a background thread."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, name="other-origin", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def received(self) -> list[bytes]:
        """Every request so far, raw."""
        with self._server.lock:
            return list(self._server.received)

    def holding(self, secrets: Iterable[str]) -> list[str]:
        """The secrets (shortened to their first 4 characters) that any received request contained."""
        raw = b"\n".join(self.received)
        found = set()
        for secret in secrets:
            if secret and (secret.encode() in raw or _form_encoded(secret) in raw):
                found.add(secret[:4] + "...")
        return sorted(found)

    def credentials(self, password: str | None = None) -> list[str]:
        """The kinds of credential the received requests carried (by header and form field; the password if given)."""
        raw = b"\n".join(self.received).lower()
        kinds = {label for marker, label in _MARKERS if marker in raw}
        if password and self.holding([password]):
            kinds.add("the password")
        return sorted(kinds)

    def start(self) -> OtherOrigin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> OtherOrigin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _form_encoded(secret: str) -> bytes:
    from urllib.parse import quote_plus

    return quote_plus(secret).encode()
