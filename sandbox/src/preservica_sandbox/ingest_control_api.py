"""Test controls for ingest: ingest faults, the list of ingest jobs and of progress tokens.

- ``POST /_sandbox/ingest-faults``: one fault or a list; answers each with its ``id``. A fault is
  ``{"outcome": "FAILED" | "FINISHED_MIXED_OUTCOME" | "STUCK", "count": 1, "name": "<glob>",
  "message": "<error text>"}``: it applies to the next ``count`` ingests (``null`` = until cleared) whose
  monitor name (the uploaded key, or ``opex/<container>``) matches ``name`` (default: any). See ``ingest_faults``.
- ``GET /_sandbox/ingest-faults``: active faults. ``DELETE /_sandbox/ingest-faults``: clear them.
- ``GET /_sandbox/ingests``: every ingest job (token, monitor id, workflow instance, name, status,
  created refs, message count).
- ``GET /_sandbox/progress``: every progress token (kind, status, counts).

``ingest_seconds`` (default 1) is set with ``POST /_sandbox/config {"ingest_seconds": 0.2}``.
``POST /_sandbox/reset`` stops running ingests (they end ``ABORTED``) and forgets jobs, tokens, faults
and uploaded objects.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .errors import SandboxHTTPError
from .ingest_faults import parse_ingest_fault
from .route_helpers import json_body
from .security import StateDep

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


@router.post("/ingest-faults")
async def add_ingest_faults(request: Request, state: StateDep) -> list[dict[str, Any]]:
    body = await json_body(request)
    items = body if isinstance(body, list) else [body]
    try:
        faults = [parse_ingest_fault(item) for item in items]
    except ValueError as exc:
        raise SandboxHTTPError(400, str(exc)) from None
    return [state.ingest.add_fault(fault).to_json() for fault in faults]


@router.get("/ingest-faults")
async def list_ingest_faults(state: StateDep) -> list[dict[str, Any]]:
    return [fault.to_json() for fault in state.ingest.faults()]


@router.delete("/ingest-faults")
async def clear_ingest_faults(state: StateDep) -> dict[str, Any]:
    return {"success": True, "removed": state.ingest.clear_faults()}


@router.get("/ingests")
async def ingests(state: StateDep) -> list[dict[str, Any]]:
    return state.ingest.describe()


@router.get("/progress")
async def progress_tokens(state: StateDep) -> list[dict[str, Any]]:
    return state.progress.describe()
