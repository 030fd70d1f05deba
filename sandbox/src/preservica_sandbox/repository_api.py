"""Control endpoints for the repository (``/_sandbox/seed``, ``/_sandbox/repository``).

- ``POST /_sandbox/seed`` ``{"assets": N, "random_seed": 42, "file": "/path/seed.json",
  "replace": true, "parent": null}``: clear (unless ``replace`` is false), load the file (if any),
  then generate ``N`` assets (see ``seed``). Answers counts and the seconds it took.
- ``GET /_sandbox/repository``: counts of folders, assets, content objects and the version.
- ``DELETE /_sandbox/repository``: empty the repository.
- ``POST /_sandbox/repository/save``: write ``repository.jsonl`` now (with a data directory).

``POST /_sandbox/reset`` keeps the repository unless its body says ``{"repository": true}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from .entities import RepositoryError
from .errors import SandboxHTTPError
from .route_helpers import json_body
from .security import StateDep

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

SEED_OPTIONS = frozenset({"assets", "random_seed", "file", "replace", "parent"})


@router.post("/seed")
async def seed(request: Request, state: StateDep) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise SandboxHTTPError(400, "seed body must be a JSON object")
    unknown = set(body) - SEED_OPTIONS
    if unknown:
        raise SandboxHTTPError(400, f"unknown seed options: {sorted(unknown)}")
    try:
        result: dict[str, Any] = await run_in_threadpool(lambda: state.repository.seed(**body))
    except RepositoryError as exc:
        raise SandboxHTTPError(exc.status, str(exc)) from None
    return result


@router.get("/repository")
async def repository_counts(state: StateDep) -> dict[str, Any]:
    return state.repository.counts()


@router.delete("/repository")
async def clear_repository(state: StateDep) -> dict[str, Any]:
    state.repository.clear()
    return {"success": True, **state.repository.counts()}


@router.post("/repository/save")
async def save_repository(state: StateDep) -> dict[str, Any]:
    return {"success": True, "saved": await run_in_threadpool(state.repository.save, True)}
