"""Request counting per route template (``"GET /api/user/details"``), before any fault applies."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from .faults import is_control_path

if TYPE_CHECKING:
    from .state import SandboxState

UNMATCHED = "<unmatched>"
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def _match(routes: list[Any], scope: Scope) -> tuple[str | None, str | None]:
    """(full match, first partial match) among ``routes``, descending into lazily included routers."""
    partial: str | None = None
    for route in routes:
        included = getattr(route, "original_router", None)  # newer FastAPI keeps included routers lazy
        if included is not None:
            full, inner_partial = _match(list(included.routes), scope)
            if full is not None:
                return full, partial
            partial = partial or inner_partial
            continue
        path = getattr(route, "path", None)
        if path is None:
            continue
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return _CONVERTOR.sub(r"{\1}", path), partial
        if match == Match.PARTIAL and partial is None:
            partial = _CONVERTOR.sub(r"{\1}", path)
    return None, partial


def route_template(routes: list[Any], scope: Scope) -> str:
    """The template of the route that will serve ``scope`` (a method mismatch still names the route)."""
    full, partial = _match(routes, scope)
    return full or partial or UNMATCHED


class RequestCounterMiddleware:
    """Counts every non-control HTTP request, including those a fault answers or drops."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_control_path(scope["path"]):
            application = scope.get("app")
            routes = getattr(getattr(application, "router", None), "routes", [])
            self.state.count_request(f"{scope['method']} {route_template(routes, scope)}")
        await self.app(scope, receive, send)
