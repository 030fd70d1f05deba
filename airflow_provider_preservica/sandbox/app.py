"""Builds the sandbox ASGI application from the API routers and the shared state.

A new API module defines an ``APIRouter`` (reusing ``security.TokenSession`` for authentication) and
is added to ``API_ROUTERS`` — or included later with ``app.include_router(...)``; middleware wraps
whatever routes exist when the first request arrives.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from . import (
    auth_api,
    content_download,
    control_api,
    export_api,
    identity_api,
    ingest_control_api,
    repository_api,
    structure_api,
)
from .errors import install_error_handlers
from .faults import FaultMiddleware
from .metrics import RequestCounterMiddleware
from .state import SandboxState

API_ROUTERS: list[APIRouter] = [
    auth_api.router,
    identity_api.router,
    *repository_api.ROUTERS,
    *ingest_control_api.ROUTERS,
    *export_api.ROUTERS,
    structure_api.router,
    content_download.router,
]


def create_app(state: SandboxState) -> FastAPI:
    app = FastAPI(
        title="Preservica sandbox",
        description="Local emulator of the Preservica REST APIs; test control surface under /_sandbox.",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    install_error_handlers(app)
    app.include_router(control_api.router)
    for router in API_ROUTERS:
        app.include_router(router)
    # Outermost last: requests are counted first, then faults may answer or drop them.
    app.add_middleware(FaultMiddleware, state=state)
    app.add_middleware(RequestCounterMiddleware, state=state)
    return app
