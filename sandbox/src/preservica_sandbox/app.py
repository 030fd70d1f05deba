"""Builds the sandbox ASGI application from the API routers and the shared state.

The top of the sandbox's layers: it imports every router (and the two middlewares); nothing imports it
but ``server`` and the package. A new API module defines an ``APIRouter`` (reusing ``security.TokenSession``
for authentication and ``route_helpers`` for the rest) and is added to ``API_ROUTERS`` — or included later
with ``app.include_router(...)``; middleware wraps whatever routes exist when the first request arrives.
Routers are matched in the order listed.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from . import (
    auth_api,
    content_api,
    control_api,
    deletions_api,
    download_api,
    entity_actions_api,
    entity_api,
    entity_descriptive_api,
    entity_events_api,
    export_api,
    identity_api,
    ingest_control_api,
    monitor_api,
    progress_api,
    repository_api,
    s3_api,
    structure_api,
    workflow_api,
)
from .errors import install_error_handlers
from .fault_middleware import FaultMiddleware
from .metrics import RequestCounterMiddleware
from .state import SandboxState

API_ROUTERS: list[APIRouter] = [
    auth_api.router,
    identity_api.router,
    # repository, search and Entity API
    repository_api.router,
    content_api.router,
    entity_api.router,
    entity_descriptive_api.router,
    entity_events_api.router,
    *entity_actions_api.ROUTERS,
    *deletions_api.ROUTERS,
    # upload and ingest
    ingest_control_api.router,
    s3_api.router,
    progress_api.router,
    monitor_api.router,
    workflow_api.router,
    # exports, structure walk and downloads
    *export_api.ROUTERS,
    structure_api.router,
    download_api.router,
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
