"""Server version and user details: the two calls pyPreservica makes right after logging in."""

from __future__ import annotations

from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .security import StateDep, TokenSession
from .versions import VERSIONED_ENTITY_PREFIX, api_version, entity_ns

router = APIRouter(tags=["identity"])


def _version_response(request: Request, state_version: str) -> Response:
    pinned = request.path_params.get("api_version")
    namespace = entity_ns(pinned or api_version(state_version))
    body = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<VersionDetails xmlns="{namespace}"><CurrentVersion>{escape(state_version)}</CurrentVersion>'
        "</VersionDetails>"
    )
    return Response(body, media_type="application/xml")


@router.get("/api/entity/versiondetails/version")
async def version(request: Request, state: StateDep, _: TokenSession) -> Response:
    return _version_response(request, state.version)


@router.get(VERSIONED_ENTITY_PREFIX + "/versiondetails/version")
async def pinned_version(request: Request, state: StateDep, _: TokenSession) -> Response:
    """Same answer in the namespace the path pins (``/api/entity/v7.7/...``)."""
    return _version_response(request, state.version)


@router.get("/api/user/details")
async def user_details(session: TokenSession) -> JSONResponse:
    user = session.user
    return JSONResponse(
        {
            "success": True,
            "user": user.name,
            "userName": user.name,
            "fullName": user.full_name,
            "email": user.email,
            "tenant": user.tenant,
            "tenantValue": user.tenant,
            "roles": list(user.roles),
        }
    )
