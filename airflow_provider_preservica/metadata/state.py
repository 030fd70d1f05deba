"""A metadata run carried across a deferral: counts in the XCom, every row's outcome in a file beside it.

A deferred run waits in the triggerer for Preservica's background work (security tags, moves) and resumes in
``execute_complete``, which needs every row's outcome and which row each progress token belongs to. Pushed to
the XCom that is about 100 bytes a row (10 MB for a 100,000-row sheet, in the Airflow database). Here a
sheet of more than a few rows writes them to a file in ``state_dir`` (JSON Lines, readable by this account
only, streamed from the run's store) and the XCom holds the file's path, its SHA-256 and the counts.

A file that cannot be read where the run resumes (another worker without that folder, a cleaned temp
space, changed content) raises ``RunStateLost``; the operator fails the try with a retryable error rather
than guessing: see ``PreservicaMetadataOperator.execute_complete``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_provider_preservica.exceptions import RunStateLost
from airflow_provider_preservica.metadata.model import RowOutcome
from airflow_provider_preservica.metadata.runner import MetadataRun

INLINE_STATE_LIMIT = 4096  # bytes of per-row state still carried in the XCom itself
STATE_PREFIX = "preservica-metadata-state-"
_PENDING = "pending"


def _lines(run: MetadataRun) -> Iterator[str]:
    yield json.dumps({_PENDING: run.pending}, sort_keys=True) + "\n"
    for outcome in run.iter_outcomes():
        yield json.dumps(outcome.to_json(), ensure_ascii=False) + "\n"


def _header(run: MetadataRun) -> dict[str, Any]:
    return {
        "source": run.source,
        "dry_run": run.dry_run,
        "held_back": run.held_back,
        "rows": run.rows,
        "pending_count": len(run.pending),
    }


def save_state(run: MetadataRun, state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What the XCom carries: the run inline when small, else the path, SHA-256 and size of its state file."""
    state = _header(run)
    size = 0
    for line in _lines(run):
        size += len(line.encode())
        if size > INLINE_STATE_LIMIT:
            break
    else:  # small enough to ride in the XCom itself
        state[_PENDING] = run.pending
        state["outcomes"] = [o.to_json() for o in run.iter_outcomes()]
        return state
    name = f"{STATE_PREFIX}{uuid.uuid4().hex}.jsonl"
    path = Path(state_dir) / name
    digest = hashlib.sha256()
    size = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        for line in _lines(run):
            data = line.encode()
            digest.update(data)
            size += len(data)
            handle.write(line)
    state["state_file"] = {"path": str(path), "sha256": digest.hexdigest(), "bytes": size}
    return state


def load_state(state: dict[str, Any]) -> MetadataRun:
    """The run ``save_state`` described; raises ``RunStateLost`` if its state file cannot be read here."""
    spilled = state.get("state_file")
    if not spilled:
        return MetadataRun(
            source=str(state.get("source", "")),
            dry_run=bool(state.get("dry_run", False)),
            outcomes=[RowOutcome.from_json(o) for o in state.get("outcomes", [])],
            pending={str(k): int(v) for k, v in (state.get(_PENDING) or {}).items()},
            held_back=bool(state.get("held_back", False)),
        )
    path = Path(str(spilled.get("path")))
    try:
        digest = hashlib.sha256()
        with path.open("rb") as handle:  # checked whole before any row is trusted
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != spilled.get("sha256"):
            raise RunStateLost(f"{path} changed since it was written")
        with path.open(encoding="utf-8") as handle:
            pending = json.loads(handle.readline())[_PENDING]
            run = MetadataRun(
                source=str(state.get("source", "")),
                dry_run=bool(state.get("dry_run", False)),
                outcomes=(RowOutcome.from_json(json.loads(line)) for line in handle),  # streamed into the store
                pending={str(k): int(v) for k, v in pending.items()},
                held_back=bool(state.get("held_back", False)),
            )
    except OSError as exc:
        raise RunStateLost(f"{path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise RunStateLost(f"{path} is not a state file this provider wrote ({exc})") from None
    if run.rows != state.get("rows"):
        raise RunStateLost(f"{path} holds {run.rows} rows, not {state.get('rows')}")
    return run


def discard_state(state: dict[str, Any] | None) -> None:
    """Remove the state file, once the run's outcome is known (or the state is of no more use)."""
    spilled = (state or {}).get("state_file")
    if spilled:
        Path(str(spilled.get("path"))).unlink(missing_ok=True)
