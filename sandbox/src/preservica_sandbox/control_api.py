"""The test control surface under ``/_sandbox`` (no authentication, never counted, never faulted)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .errors import SandboxHTTPError
from .faults import FaultSpecError, parse_faults
from .route_helpers import json_body
from .security import StateDep

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


@router.get("/stats")
async def stats(state: StateDep) -> dict[str, Any]:
    return state.stats()


@router.post("/reset")
async def reset(request: Request, state: StateDep) -> dict[str, Any]:
    """Counters, tokens and faults; also the repository if the body says ``{"repository": true}``."""
    options = await json_body(request) if (await request.body()).strip() else {}
    if not isinstance(options, dict) or set(options) - {"repository"}:
        raise SandboxHTTPError(400, 'reset takes no body or {"repository": true|false}')
    state.reset(repository=bool(options.get("repository", False)))
    return {"success": True}


@router.get("/config")
async def get_config(state: StateDep) -> dict[str, Any]:
    return state.config()


@router.post("/config")
async def set_config(request: Request, state: StateDep) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise SandboxHTTPError(400, "config body must be a JSON object")
    try:
        return state.update_config(body)
    except ValueError as exc:
        raise SandboxHTTPError(400, str(exc)) from None


@router.get("/tokens")
async def tokens(state: StateDep, user: str | None = None) -> list[dict[str, Any]]:
    """Token metadata with an 8-character prefix; full token values are never listed."""
    return state.tokens(user)


@router.get("/users")
async def users(state: StateDep) -> list[dict[str, Any]]:
    return [
        {"name": u.name, "tenant": u.tenant, "two_factor": u.two_factor, "roles": list(u.roles)} for u in state.users()
    ]


@router.post("/faults")
async def add_faults(request: Request, state: StateDep) -> list[dict[str, Any]]:
    """One fault object or a list; answers every fault with its id (immediate kinds with ``applied``)."""
    try:
        faults = parse_faults(await json_body(request))
    except FaultSpecError as exc:
        raise SandboxHTTPError(400, str(exc)) from None
    return [fault.to_json() for fault in state.add_faults(faults)]


@router.get("/faults")
async def list_faults(state: StateDep) -> list[dict[str, Any]]:
    return [fault.to_json() for fault in state.faults.active()]


@router.delete("/faults")
async def clear_faults(state: StateDep) -> dict[str, Any]:
    return {"success": True, "removed": state.faults.clear()}


@router.delete("/faults/{fault_id}")
async def delete_fault(fault_id: int, state: StateDep) -> dict[str, Any]:
    if not state.faults.remove(fault_id):
        raise SandboxHTTPError(404, f"no active fault {fault_id}")
    return {"success": True}
