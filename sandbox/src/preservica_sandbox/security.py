"""Token checking shared by every authenticated API module.

Use ``session: Annotated[AuthenticatedSession, Depends(require_token)]`` (or ``TokenSession``) in an
endpoint. Missing, unknown, expired or revoked tokens get 401; a valid token never does — permission
problems are 403 (``require_role``), because pyPreservica treats every 401 as "log in again".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from .errors import SandboxHTTPError
from .state import SandboxState
from .tokens import AuthenticatedSession, TokenRejected

HEADER_TOKEN = "Preservica-Access-Token"


async def get_state(request: Request) -> SandboxState:
    """The ``SandboxState`` that ``create_app`` stored on the application."""
    state: SandboxState = request.app.state.sandbox
    return state


def presented_token(request: Request) -> str | None:
    """The token from ``Preservica-Access-Token`` or, failing that, ``Authorization: Bearer``."""
    token = request.headers.get(HEADER_TOKEN)
    if token:
        return token.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def require_token(request: Request) -> AuthenticatedSession:
    """FastAPI dependency: the authenticated session, or a 401 JSON error.

    Async on purpose: a dictionary lookup does not deserve a trip through the thread pool.
    """
    state: SandboxState = request.app.state.sandbox
    try:
        return state.authenticate_token(presented_token(request))
    except TokenRejected as exc:
        raise SandboxHTTPError(401, str(exc)) from None


TokenSession = Annotated[AuthenticatedSession, Depends(require_token)]
StateDep = Annotated[SandboxState, Depends(get_state)]


def require_role(*roles: str) -> Callable[[AuthenticatedSession], Awaitable[AuthenticatedSession]]:
    """Dependency factory: 403 unless the user holds at least one of ``roles``."""

    async def check(session: TokenSession) -> AuthenticatedSession:
        if roles and set(roles).isdisjoint(session.user.roles):
            raise SandboxHTTPError(403, f"User does not have any of the roles {', '.join(roles)}")
        return session

    return check
