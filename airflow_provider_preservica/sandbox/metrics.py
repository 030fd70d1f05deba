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


def route_template(routes: list[Any], scope: Scope) -> str:
    """The template of the route that will serve ``scope`` (a method mismatch still names the route)."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        path = getattr(route, "path", None)
        if path is None:
            continue
        if match == Match.FULL:
            return _CONVERTOR.sub(r"{\1}", path)
        if match == Match.PARTIAL and partial is None:
            partial = _CONVERTOR.sub(r"{\1}", path)
    return partial or UNMATCHED


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
