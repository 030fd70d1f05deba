"""Run a sheet against Preservica: check, read and plan every row, then write, in parallel, then wait.

Order of work, so that a bad sheet loses nothing and a good one is quick:

1. Offline checks (``sheet``) and the security tags this account may use: bad rows are ``invalid``.
2. Read every row's entity (by reference, or looked up by identifier), the parent folders it moves to,
   and the identifiers and fragments it touches; plan the writes still needed (``plan``). Nothing has
   been written yet, so when any row failed and partial success is not allowed, nothing is written at all.
3. Write each row's steps (rows in parallel, a row's steps in order). Security tags and moves are done
   by Preservica in the background: their progress tokens are waited for together at the end.

All threads share one ``PreservicaClient``: one pooled session and the account's one token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from airflow_provider_preservica.client.entities import (
    Entity,
    EntityNotFoundError,
    EntityService,
    EntityType,
    EntityTypeMismatchError,
)
from airflow_provider_preservica.client.progress import Progress, wait_for_all
from airflow_provider_preservica.exceptions import PreservicaError, PreservicaHTTPError
from airflow_provider_preservica.metadata.model import ROOT, Outcome, RowChange, RowOutcome
from airflow_provider_preservica.metadata.plan import EntityState, Step, plan_row
from airflow_provider_preservica.metadata.sheet import Sheet

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_WORKERS = 8


@dataclass
class RowPlan:
    change: RowChange
    outcome: RowOutcome
    steps: list[Step] = field(default_factory=list)


@dataclass
class MetadataRun:
    """Every row's outcome, in sheet order, and the background work still running (token -> row)."""

    source: str
    dry_run: bool
    outcomes: list[RowOutcome]
    pending: dict[str, int] = field(default_factory=dict)
    held_back: bool = False  # good rows were not applied because others failed

    def counts(self) -> Counter[Outcome]:
        return Counter(o.outcome for o in self.outcomes)

    @property
    def failed(self) -> list[RowOutcome]:
        return [o for o in self.outcomes if o.outcome.failed]

    def finish_background(self, results: dict[str, tuple[str, list[str]]]) -> None:
        """Record how background work ended: token -> (Preservica status, error texts)."""
        by_row = {o.row: o for o in self.outcomes}
        for token, (status, errors) in results.items():
            row = self.pending.pop(token, None)
            outcome = by_row.get(row) if row is not None else None
            if outcome is None:
                continue
            if status != "COMPLETED":
                outcome.outcome = Outcome.REJECTED
                detail = "; ".join(errors[:3]) or "no error details returned"
                outcome.message = _join(outcome.message, f"background work {token} ended {status}: {detail}")
        waiting_rows = set(self.pending.values())
        for outcome in self.outcomes:
            if outcome.outcome is Outcome.PENDING and outcome.row not in waiting_rows:
                outcome.outcome = Outcome.CHANGED


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


class _Progress:
    """Logs how far a long phase has got, at most every ``every`` seconds."""

    def __init__(self, phase: str, total: int, every: float = 10.0) -> None:
        self.phase, self.total, self.every = phase, total, every
        self.done = 0
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            now = time.monotonic()
            if now - self.last < self.every and self.done != self.total:
                return
            self.last = now
        rate = self.done / max(now - self.started, 1e-6)
        log.info("Metadata %s: %d of %d rows (%.0f rows/s)", self.phase, self.done, self.total, rate)


class MetadataUpdater:
    """Applies sheets through one ``EntityService``; ``max_workers`` rows are read or written at once."""

    def __init__(self, entities: EntityService, *, max_workers: int = DEFAULT_WORKERS) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.entities = entities
        self.max_workers = max_workers
        self._folders: dict[str, bool] = {}
        self._folders_lock = threading.Lock()

    # -- parallel map ------------------------------------------------------------------------------
    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        items = list(items)
        if self.max_workers == 1 or len(items) < 2:
            return map(fn, items)
        executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="preservica-metadata")

        def results() -> Iterator[R]:
            with executor:
                yield from executor.map(fn, items)

        return results()

    # -- phase 1: security tags --------------------------------------------------------------------
    def _check_tags(self, plans: list[RowPlan]) -> None:
        wanted = {p.change.security_tag for p in plans if p.change.security_tag}
        if not wanted:
            return
        try:
            known = set(self.entities.security_tags())
        except PreservicaHTTPError as exc:
            if exc.status in (403, 404, 405):
                log.warning("Cannot list this account's security tags (%s); Preservica will check each one", exc)
                return
            raise
        for plan in plans:
            tag = plan.change.security_tag
            if tag and tag not in known:
                plan.outcome.outcome = Outcome.INVALID
                plan.outcome.message = (
                    f"security tag {tag!r} is not one this account may use; use one of {', '.join(sorted(known))}"
                )

    # -- phase 2: read and plan --------------------------------------------------------------------
    def _resolve(self, change: RowChange) -> Entity | RowOutcome:
        outcome = RowOutcome(change.row, change.locator, Outcome.NOT_FOUND)
        kind: EntityType | None = change.entity_type  # type: ignore[assignment]
        if change.ref:
            try:
                return self.entities.get(change.ref, kind)
            except EntityTypeMismatchError as exc:
                outcome.outcome, outcome.message = Outcome.INVALID, f"{exc.what}; fix entity_type or the reference"
                return outcome
            except EntityNotFoundError:
                outcome.message = f"no {'folder' if kind == 'SO' else 'asset' if kind == 'IO' else 'entity'} "
                outcome.message += f"with reference {change.ref}"
                return outcome
        assert change.lookup is not None
        id_type, id_value = change.lookup
        matches = [
            e
            for e in self.entities.find_by_identifier(id_type, id_value)
            if e.entity_type in (("SO", "IO") if kind is None else (kind,))
        ]
        if not matches:
            outcome.message = f"no {kind or 'folder or asset'} has identifier {id_type}={id_value!r}"
            return outcome
        if len(matches) > 1:
            outcome.outcome = Outcome.AMBIGUOUS
            refs = ", ".join(m.ref for m in matches[:5]) + (" ..." if len(matches) > 5 else "")
            outcome.message = (
                f"{len(matches)} entities have identifier {id_type}={id_value!r} ({refs}); "
                "use the reference column for this row"
            )
            return outcome
        return self.entities.get(matches[0].ref, matches[0].entity_type)  # type: ignore[arg-type]

    def _folder_exists(self, ref: str) -> bool:
        with self._folders_lock:
            if ref in self._folders:
                return self._folders[ref]
        try:
            self.entities.get(ref, "SO")
            exists = True
        except EntityNotFoundError:
            exists = False
        with self._folders_lock:
            self._folders[ref] = exists
        return exists

    def _read_state(self, change: RowChange, entity: Entity) -> EntityState:
        kind: EntityType = entity.entity_type  # type: ignore[assignment]
        state = EntityState(entity)
        if change.identifiers:
            state.identifiers = self.entities.identifiers(entity.ref, kind)
        schemas = {f.schema for f in change.fragments}
        for link in entity.fragments:
            if link.schema in schemas:
                state.documents[link.url] = self.entities.metadata_document(link.url)
        return state

    def _plan(self, plan: RowPlan, dry_run: bool) -> RowPlan:
        change, outcome = plan.change, plan.outcome
        try:
            found = self._resolve(change)
            if isinstance(found, RowOutcome):
                plan.outcome = found
                return plan
            outcome.ref = found.ref
            if change.parent == ROOT and found.entity_type == "IO":
                outcome.outcome = Outcome.INVALID
                outcome.message = "an asset cannot be moved to the root (@root@); give a folder reference as parent"
                return plan
            if change.parent not in (None, ROOT) and not self._folder_exists(change.parent):
                outcome.outcome, outcome.message = Outcome.NOT_FOUND, f"no parent folder with reference {change.parent}"
                return plan
            plan.steps = plan_row(change, self._read_state(change, found))
        except PreservicaError as exc:
            if not exc.retryable:  # a refused login is no row's fault: it ends the run
                raise
            outcome.outcome, outcome.message = Outcome.REJECTED, f"reading failed: {exc}"
            return plan
        outcome.changes = [step.what for step in plan.steps]
        if not plan.steps:
            outcome.outcome = Outcome.UNCHANGED
        else:
            outcome.outcome = Outcome.WOULD_CHANGE if dry_run else Outcome.PENDING
        return plan

    @staticmethod
    def _refuse_duplicates(plans: list[RowPlan]) -> None:
        first: dict[str, RowPlan] = {}
        for plan in plans:
            ref = plan.outcome.ref
            if not ref or plan.outcome.outcome.failed:
                continue
            if ref in first:
                for bad in (first[ref], plan):
                    bad.outcome.outcome = Outcome.INVALID
                    bad.outcome.message = (
                        f"rows {first[ref].change.row} and {plan.change.row} both change {ref}; merge them into one row"
                    )
                    bad.steps = []
            else:
                first[ref] = plan

    # -- phase 3: write ----------------------------------------------------------------------------
    def _apply(self, plan: RowPlan, progress: _Progress) -> dict[str, int]:
        tokens: dict[str, int] = {}
        done: list[str] = []
        for step in plan.steps:
            try:
                token = step.run(self.entities)
            except PreservicaError as exc:
                if not exc.retryable:
                    raise
                plan.outcome.outcome = Outcome.REJECTED
                plan.outcome.message = f"{step.what}: {exc}"
                plan.outcome.changes = done
                progress.tick()
                return tokens
            done.append(step.what)
            if step.background and token:
                tokens[token] = plan.change.row
        plan.outcome.outcome = Outcome.PENDING if tokens else Outcome.CHANGED
        progress.tick()
        return tokens

    # -- the whole run -----------------------------------------------------------------------------
    def run(
        self,
        sheet: Sheet,
        *,
        dry_run: bool = False,
        allow_partial: bool = False,
        wait: bool = True,
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
    ) -> MetadataRun:
        """Apply ``sheet``. With ``wait=False`` background work is left in ``MetadataRun.pending``."""
        invalid = [RowOutcome(p.row, p.locator, Outcome.INVALID, message=p.message) for p in sheet.problems]
        plans = [RowPlan(c, RowOutcome(c.row, c.locator, Outcome.PENDING)) for c in sheet.changes]
        self._check_tags(plans)
        to_read = [p for p in plans if p.outcome.outcome is Outcome.PENDING]
        reading = _Progress("read and plan", len(to_read))

        def plan_one(plan: RowPlan) -> RowPlan:
            self._plan(plan, dry_run)
            reading.tick()
            return plan

        list(self._map(plan_one, to_read))
        self._refuse_duplicates(plans)
        run = MetadataRun(sheet.source, dry_run, sorted([*invalid, *(p.outcome for p in plans)], key=lambda o: o.row))
        if dry_run:
            return run
        writable = [p for p in plans if p.steps and not p.outcome.outcome.failed]
        if run.failed and not allow_partial:
            for plan in writable:
                plan.outcome.outcome = Outcome.NOT_APPLIED
            run.held_back = bool(writable)
            return run
        writing = _Progress("write", len(writable))
        for tokens in self._map(lambda p: self._apply(p, writing), writable):
            run.pending.update(tokens)
        if wait and run.pending:
            self.wait(run, poll_interval=poll_interval, timeout=timeout)
        return run

    def wait(self, run: MetadataRun, *, poll_interval: float = 2.0, timeout: float = 3600.0) -> None:
        """Wait for the run's background work (security tags, moves) and record how each ended."""
        log.info("Waiting for %d security tag changes and moves in Preservica", len(run.pending))
        finished: dict[str, Progress] = wait_for_all(
            self.entities.client,
            list(run.pending),
            poll_interval=poll_interval,
            timeout=timeout,
            what="metadata change",
            map_fn=self._map,
        )
        run.finish_background({t: (p.status, p.errors) for t, p in finished.items()})
