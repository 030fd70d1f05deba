"""The ASGI middleware that applies queued faults (``status``, ``redirect``, ``latency``, ``drop``,
``drop_after_bytes``, and ``expire_tokens`` / ``revoke_token`` posted with a ``route``).

It takes what applies to each request from ``state.faults`` (a ``faults.FaultBook``) before the
routers see it, and counts every fault that fires. Nothing here ever applies to ``/_sandbox/*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .faults import Fault, is_control_path

if TYPE_CHECKING:
    from .state import SandboxState


class FaultMiddleware:
    """Applies queued faults before the request reaches the routers."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state
        self._held: dict[int, tuple[list[int], asyncio.Event]] = {}  # fault id -> (requests held, all there)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_control_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        before, action = self.state.faults.take(scope["method"], scope["path"])
        for fault in before:
            self.state.count_fault(fault.kind)
            if fault.on_request:
                fault.applied = self.state.apply_token_fault(fault)
            elif fault.together:
                await self._hold_together(fault)
            else:
                await asyncio.sleep(fault.seconds or 0.0)
        if action is None:
            await self.app(scope, receive, send)
            return
        self.state.count_fault(action.kind)
        if action.kind == "drop":
            await drop_connection(receive, send)
        elif action.kind == "drop_after_bytes":
            await self.app(scope, receive, truncating_send(send, receive, action.bytes or 0))
        elif action.kind == "redirect":
            await send_fault_redirect(action, scope, send)
        else:
            await send_fault_status(action, scope, send)

    async def _hold_together(self, fault: Fault) -> None:
        """Wait until ``fault.together`` requests are held by this fault (at most ``fault.seconds``).

        Every request runs on the server's one event loop, so plain counters are safe here.
        """
        held, everyone = self._held.setdefault(fault.id, ([0], asyncio.Event()))
        held[0] += 1
        if held[0] >= (fault.together or 0):
            everyone.set()
            del self._held[fault.id]  # later requests form the next group
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(everyone.wait(), timeout=fault.seconds or 0.0)


def _fault_headers(scope: Scope, body: bytes) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    request_headers = dict(scope.get("headers", []))
    if request_headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in request_headers:
        # The body is left unread (boto3 even waits for "100 Continue" and never sends it): close the
        # connection, or its next request would be read as this one's body.
        headers.append((b"connection", b"close"))
    return headers


async def send_fault_redirect(fault: Fault, scope: Scope, send: Send) -> None:
    """Answer ``fault.status`` with ``Location: fault.location`` (``{path}``: this request's path and query)."""
    query = scope.get("query_string", b"").decode("latin-1")
    target = scope["path"] + (f"?{query}" if query else "")
    location = (fault.location or "/").replace("{path}", target)
    message = f"sandbox fault: injected redirect {fault.status} for {scope['method']} {scope['path']}"
    body = json.dumps({"success": False, "message": message}).encode()
    headers = [*_fault_headers(scope, body), (b"location", location.encode("latin-1"))]
    await send({"type": "http.response.start", "status": fault.status or 307, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_fault_status(fault: Fault, scope: Scope, send: Send) -> None:
    status = fault.status or 500
    message = f"sandbox fault: injected HTTP {status} for {scope['method']} {scope['path']}"
    body = json.dumps({"success": False, "message": message}).encode()
    headers = _fault_headers(scope, body)
    if fault.retry_after is not None:
        value = fault.retry_after
        text = str(int(value)) if float(value).is_integer() else f"{value:g}"
        headers.append((b"retry-after", text.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def drop_connection(receive: Receive, send: Send) -> None:
    """Close the TCP connection without an HTTP response, so the client sees a connection error.

    Under uvicorn ``receive`` is a bound method of the request cycle that owns the transport: abort
    it, then wait until uvicorn has noticed (otherwise it would log and try to send a 500). Other
    servers get a response that promises more body than it delivers, which clients also treat as a
    broken connection.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_wait_for_disconnect(receive), timeout=5)
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"success": tr', "more_body": True})
    raise ConnectionAbortedError("sandbox fault: connection dropped")


def truncating_send(send: Send, receive: Receive, limit: int) -> Send:
    """A ``send`` that passes the response through until ``limit`` body bytes, then closes the connection.

    Under uvicorn the transport is closed after the first ``limit`` bytes are written (they are flushed
    first), so the client reads exactly that many bytes of a body promised longer and then sees the
    connection end; later sends are dropped and streaming responses stop when they notice the disconnect.
    A body that ends within ``limit`` bytes passes untouched. Elsewhere ``ConnectionAbortedError`` is raised.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    sent = 0
    dropped = False

    async def wrapped(message: Message) -> None:
        nonlocal sent, dropped
        if dropped:
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if sent + len(body) < limit or (sent + len(body) == limit and not more):
            sent += len(body)
            await send(message)
            return
        head = body[: max(0, limit - sent)]
        sent += len(head)
        dropped = True
        if head:
            await send({"type": "http.response.body", "body": head, "more_body": True})
        if transport is not None and hasattr(transport, "close"):
            transport.close()
            return
        raise ConnectionAbortedError("sandbox fault: connection dropped mid-body")

    return wrapped
