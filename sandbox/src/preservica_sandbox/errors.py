"""JSON error bodies in Preservica's shape: ``{"success": false, "message": "..."}``.

pyPreservica calls ``response.json()`` on every failed login, so even framework errors (404, 405,
validation) are answered as JSON rather than Starlette's plain text.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class SandboxHTTPError(Exception):
    """Raise from an endpoint to answer ``status`` with a Preservica-style JSON error."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.extra = extra or {}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "message": message, **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers)


async def _sandbox_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SandboxHTTPError)
    return error_response(exc.status, exc.message, exc.headers, exc.extra)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}" for error in exc.errors()
    )
    return error_response(400, f"Invalid request: {problems}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SandboxHTTPError, _sandbox_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
