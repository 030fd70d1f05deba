"""Access Token API: ``/api/accesstoken/login``, ``/complete-2fa``, ``/refresh``, ``/acquire-external``.

Answers are JSON, failures are 401 with ``{"success": false, "message": ...}``; messages never echo
a password, code or token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .errors import SandboxHTTPError, error_response
from .security import StateDep, TokenSession
from .state import SandboxState
from .tokens import AccessToken, TokenRejected
from .totp import verify_totp
from .users import SandboxUser

router = APIRouter(prefix="/api/accesstoken", tags=["access token"])
logger = logging.getLogger(__name__)

BAD_CREDENTIALS = "Authentication failed: invalid username, password or tenant"
#: How far a shared-secret timestamp may be from the sandbox clock.
EXTERNAL_AUTH_SKEW = 300


async def _form(request: Request, *required: str) -> dict[str, str]:
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    missing = [name for name in required if not values.get(name)]
    if missing:
        raise SandboxHTTPError(400, f"Missing required form field(s): {', '.join(missing)}")
    return values


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes"}


def valid_for_minutes(record: AccessToken) -> int | float:
    """``validFor`` in minutes: an int for whole minutes, otherwise a float (sandbox extension)."""
    minutes = (record.expires_at - record.issued_at) / 60
    return int(minutes) if float(minutes).is_integer() else round(minutes, 6)


def token_body(record: AccessToken, user: SandboxUser, include_user_details: bool) -> dict[str, Any]:
    # Log an 8-character prefix only: enough to correlate with /_sandbox/tokens, useless to a thief.
    logger.info(
        "token %s... issued to %r, valid %.0f s",
        record.token[:8],
        user.name,
        record.expires_at - record.issued_at,
    )
    body: dict[str, Any] = {
        "success": True,
        "token": record.token,
        "refresh-token": record.refresh_token,
        "validFor": valid_for_minutes(record),
        "user": user.name,
    }
    if include_user_details:
        body.update(
            tenant=user.tenant,
            tenantValue=user.tenant,
            fullName=user.full_name,
            email=user.email,
            roles=list(user.roles),
        )
    return body


def _tenant_matches(user: SandboxUser, tenant: str | None) -> bool:
    return not tenant or tenant.strip().upper() == user.tenant.upper()


def _password_user(state: SandboxState, username: str, password: str, tenant: str | None) -> SandboxUser:
    user = state.get_user(username)
    ok = (
        user is not None
        and hmac.compare_digest(user.password.encode(), password.encode())
        and _tenant_matches(user, tenant)
    )
    if not ok or user is None:
        logger.info("login refused for user %r", username)
        state.record_login_failure(username)
        raise SandboxHTTPError(401, BAD_CREDENTIALS)
    return user


@router.post("/login")
async def login(request: Request, state: StateDep) -> JSONResponse:
    form = await _form(request, "username", "password")
    user = _password_user(state, form["username"], form["password"], form.get("tenant"))
    if user.two_factor:
        continuation = state.start_two_factor(user)
        extra = {"continuationToken": continuation, "tenant": user.tenant}
        return error_response(401, "needs.2fa", extra=extra)
    record = state.issue_token(user)
    return JSONResponse(token_body(record, user, _truthy(form.get("includeUserDetails"))))


@router.api_route("/complete-2fa", methods=["POST", "PUT"])
async def complete_two_factor(request: Request, state: StateDep) -> JSONResponse:
    form = await _form(request, "username", "continuationToken", "twoFactorToken")
    username = form["username"]
    try:
        user = state.take_continuation(form["continuationToken"], username)
    except TokenRejected as exc:
        state.record_login_failure(username)
        raise SandboxHTTPError(401, str(exc)) from None
    if not _tenant_matches(user, form.get("tenant")):
        state.record_login_failure(username)
        raise SandboxHTTPError(401, BAD_CREDENTIALS)
    code = form["twoFactorToken"]
    if user.totp_secret is None or not verify_totp(user.totp_secret, code, at=state.clock()):
        state.record_login_failure(username)
        raise SandboxHTTPError(401, "Two-factor authentication failed: invalid code")
    record = state.issue_token(user)
    return JSONResponse(token_body(record, user, _truthy(form.get("includeUserDetails"))))


@router.post("/refresh")
async def refresh(request: Request, state: StateDep, session: TokenSession) -> JSONResponse:
    form = await _form(request, "refreshToken")
    try:
        record = state.refresh(session, form["refreshToken"])
    except TokenRejected as exc:
        raise SandboxHTTPError(401, str(exc)) from None
    return JSONResponse(token_body(record, session.user, _truthy(form.get("includeUserDetails"))))


@router.post("/acquire-external")
async def acquire_external(request: Request, state: StateDep) -> JSONResponse:
    """Shared-secret login (deprecated in Preservica 7.6); the sandbox uses the password as secret."""
    form = await _form(request, "username", "timestamp", "hash")
    username = form["username"]
    user = state.get_user(username)
    try:
        timestamp = int(form["timestamp"])
    except ValueError:
        raise SandboxHTTPError(400, "timestamp must be an integer (epoch seconds)") from None
    if user is not None:
        material = f"preservica-external-auth{timestamp}{username}{user.password}".encode()
        expected = hashlib.sha1(material, usedforsecurity=False).hexdigest()
        fresh = abs(state.clock() - timestamp) <= EXTERNAL_AUTH_SKEW
        matches = hmac.compare_digest(expected, form["hash"].lower())
        if fresh and matches and _tenant_matches(user, form.get("tenant")):
            record = state.issue_token(user)
            return JSONResponse(token_body(record, user, False))
    state.record_login_failure(username)
    raise SandboxHTTPError(401, BAD_CREDENTIALS)
