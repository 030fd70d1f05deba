"""Run a sheet against Preservica: check, read and plan every row, then write, in parallel, then wait.

Order of work, so that a bad sheet loses nothing and a good one is quick:

1. Offline checks (``sheet``) and the security tags this account may use: bad rows are ``invalid``.
2. Read every row's entity (by reference, or looked up by identifier), the parent folders it moves to,
   and the identifiers and fragments it touches; plan the writes still needed (``plan``). Nothing has
   been written yet, so when any row failed and partial success is not allowed, nothing is written at all.
3. Write each row's steps (rows in parallel, a row's steps in order). Security tags and moves are done
   by Preservica in the background: their progress tokens are waited for together at the end.

All threads share the hook's one client (``MetadataCalls``: the hook's ``entities`` and ``wait_for_all``): one
pooled session and the account's one token.

Memory stays flat whatever the sheet's length: the sheet is read as the rows are planned (a few rows per
worker in flight), each row's outcome and planned writes wait on disk in a ``store.RowStore`` (the entity
read for it is dropped once planned), and the report is written from there row by row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from airflow_provider_preservica.client.entities import (
    Entity,
    EntityNotFoundError,
    EntityService,
    EntityType,
    EntityTypeMismatchError,
)
from airflow_provider_preservica.client.progress import Progress
from airflow_provider_preservica.exceptions import PreservicaError, PreservicaHTTPError
from airflow_provider_preservica.metadata.model import ROOT, Outcome, RowChange, RowOutcome
from airflow_provider_preservica.metadata.plan import EntityState, Step, plan_row
from airflow_provider_preservica.metadata.sheet import RowProblem
from airflow_provider_preservica.metadata.store import PAGE, RowStore

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_WORKERS = 8


class MetadataRun:
    """Every row's outcome, in sheet order, and the background work still running (token -> row).

    The outcomes are kept on disk (``store.RowStore``), not in memory: read them with ``iter_outcomes()``,
    ``counts()``, ``first_failed()``; ``outcomes`` and ``failed`` build lists (fine for small sheets).
    """

    def __init__(
        self,
        source: str,
        dry_run: bool,
        outcomes: Iterable[RowOutcome] | RowStore = (),
        pending: dict[str, int] | None = None,
        held_back: bool = False,  # good rows were not applied because others failed
    ) -> None:
        self.source = source
        self.dry_run = dry_run
        self.store = outcomes if isinstance(outcomes, RowStore) else RowStore(outcomes)
        self.pending: dict[str, int] = dict(pending or {})
        self.held_back = held_back

    @property
    def rows(self) -> int:
        return len(self.store)

    def iter_outcomes(self) -> Iterator[RowOutcome]:
        return self.store.outcomes()

    @property
    def outcomes(self) -> list[RowOutcome]:
        return list(self.store.outcomes())

    def counts(self) -> Counter[Outcome]:
        return self.store.counts()

    @property
    def failed(self) -> list[RowOutcome]:
        return self.store.failed()

    @property
    def failed_count(self) -> int:
        counts = self.counts()
        return sum(n for outcome, n in counts.items() if outcome.failed)

    def first_failed(self, limit: int) -> list[RowOutcome]:
        return self.store.failed(limit)

    def first_with(self, outcome: Outcome, limit: int) -> list[RowOutcome]:
        return self.store.with_outcome(outcome, limit)

    def close(self) -> None:
        """Free the temporary store now rather than when the run is garbage-collected."""
        self.store.close()

    def finish_background(self, results: dict[str, tuple[str, list[str]]]) -> None:
        """Record how background work ended: token -> (Preservica status, error texts)."""
        ended: dict[int, list[str]] = {}
        for token, (status, errors) in results.items():
            row = self.pending.pop(token, None)
            if row is None:
                continue
            problems = ended.setdefault(row, [])
            if status != "COMPLETED":
                detail = "; ".join(errors[:3]) or "no error details returned"
                problems.append(f"background work {token} ended {status}: {detail}")
        waiting_rows = set(self.pending.values())

        def updated() -> Iterator[RowOutcome]:
            for outcome in self.store.outcomes("outcome = ?", (Outcome.PENDING.value,)):
                problems = ended.get(outcome.row, [])
                if problems:
                    outcome.outcome = Outcome.REJECTED
                    for problem in problems:
                        outcome.message = _join(outcome.message, problem)
                elif outcome.row not in waiting_rows:
                    outcome.outcome = Outcome.CHANGED
                else:
                    continue
                yield outcome

        _update_in_pages(self.store, updated())


def _update_in_pages(store: RowStore, outcomes: Iterable[RowOutcome], *, drop_steps: bool = False) -> None:
    """Write ``outcomes`` back a page at a time (never while a read of the store is open)."""
    page: list[RowOutcome] = []
    for outcome in outcomes:
        page.append(outcome)
        if len(page) >= PAGE:
            store.update(page, drop_steps=drop_steps)
            page = []
    if page:
        store.update(page, drop_steps=drop_steps)


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


class _Progress:
    """Logs how far a long phase has got, at most every ``every`` seconds."""

    def __init__(self, phase: str, total: int | None = None, every: float = 10.0) -> None:
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
        of = f" of {self.total}" if self.total is not None else ""
        log.info("Metadata %s: %d%s rows (%.0f rows/s)", self.phase, self.done, of, rate)


class MetadataCalls(Protocol):
    """What a metadata run asks of Preservica: what ``PreservicaHook`` offers (pass the hook)."""

    @property
    def entities(self) -> EntityService: ...

    def wait_for_all(
        self,
        tokens: list[str],
        *,
        poll_interval: float,
        timeout: float,
        what: str,
        map_fn: Callable[..., Iterable[Any]] = ...,
    ) -> dict[str, Progress]: ...


class MetadataUpdater:
    """Applies sheets through the hook's calls; ``max_workers`` rows are read or written at once."""

    def __init__(self, preservica: MetadataCalls, *, max_workers: int = DEFAULT_WORKERS) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.preservica = preservica
        self.entities = preservica.entities
        self.max_workers = max_workers
        self._folders: dict[str, bool] = {}
        self._folders_lock = threading.Lock()
        self._tags: set[str] | None = None
        self._tags_read = False
        self._tags_lock = threading.Lock()

    # -- parallel map ------------------------------------------------------------------------------
    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``map(fn, items)`` on ``max_workers`` threads, in order, reading ``items`` lazily: at most a few
        items per worker are in flight, so a sheet of any length is never held whole."""
        if self.max_workers == 1:
            return map(fn, items)
        window = self.max_workers * 4

        def results() -> Iterator[R]:
            with ThreadPoolExecutor(self.max_workers, thread_name_prefix="preservica-metadata") as executor:
                running: deque[Future[R]] = deque()
                try:
                    for item in items:
                        running.append(executor.submit(fn, item))
                        if len(running) >= window:
                            yield running.popleft().result()
                    while running:
                        yield running.popleft().result()
                finally:
                    for future in running:
                        future.cancel()

        return results()

    # -- phase 1: security tags --------------------------------------------------------------------
    def _tag_problem(self, tag: str | None) -> str | None:
        """Why ``tag`` cannot be used (the account's tags are listed once, when a row first names one)."""
        if not tag:
            return None
        with self._tags_lock:
            if not self._tags_read:
                self._tags_read = True
                try:
                    self._tags = set(self.entities.security_tags())
                except PreservicaHTTPError as exc:
                    if exc.status not in (403, 404, 405):
                        raise
                    log.warning("Cannot list this account's security tags (%s); Preservica will check each one", exc)
            known = self._tags
        if known is None or tag in known:
            return None
        return f"security tag {tag!r} is not one this account may use; use one of {', '.join(sorted(known))}"

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

    def _plan(self, item: RowChange | RowProblem, dry_run: bool) -> tuple[RowOutcome, list[Step]]:
        """The row's outcome so far and the writes it still needs; the entity read for it is dropped here."""
        if isinstance(item, RowProblem):
            return RowOutcome(item.row, item.locator, Outcome.INVALID, message=item.message), []
        change = item
        outcome = RowOutcome(change.row, change.locator, Outcome.PENDING)
        problem = self._tag_problem(change.security_tag)
        if problem:
            outcome.outcome, outcome.message = Outcome.INVALID, problem
            return outcome, []
        try:
            found = self._resolve(change)
            if isinstance(found, RowOutcome):
                return found, []
            outcome.ref = found.ref
            if change.parent == ROOT and found.entity_type == "IO":
                outcome.outcome = Outcome.INVALID
                outcome.message = "an asset cannot be moved to the root (@root@); give a folder reference as parent"
                return outcome, []
            if change.parent not in (None, ROOT) and not self._folder_exists(change.parent):
                outcome.outcome, outcome.message = Outcome.NOT_FOUND, f"no parent folder with reference {change.parent}"
                return outcome, []
            steps = plan_row(change, self._read_state(change, found))
        except PreservicaError as exc:
            if not exc.retryable:  # a refused login is no row's fault: it ends the run
                raise
            outcome.outcome, outcome.message = Outcome.REJECTED, f"reading failed: {exc}"
            return outcome, []
        outcome.changes = [step.what for step in steps]
        if not steps:
            outcome.outcome = Outcome.UNCHANGED
        else:
            outcome.outcome = Outcome.WOULD_CHANGE if dry_run else Outcome.PENDING
        return outcome, steps

    @staticmethod
    def _refuse_duplicates(store: RowStore) -> None:
        """Rows that change the same entity are both invalid (which one should win is the sheet's call)."""
        for rows in store.shared_refs():
            first, *others = rows
            by_row = {o.row: o for o in store.outcomes(f"row IN ({', '.join('?' * len(rows))})", tuple(rows))}
            ref = by_row[first].ref
            messages = {row: (first, row) for row in others}
            messages[first] = (first, others[-1])
            for row, outcome in by_row.items():
                outcome.outcome = Outcome.INVALID
                pair = messages[row]
                outcome.message = f"rows {pair[0]} and {pair[1]} both change {ref}; merge them into one row"
            store.update(by_row.values(), drop_steps=True)

    # -- phase 3: write ----------------------------------------------------------------------------
    def _apply(self, row: tuple[RowOutcome, list[Step]], progress: _Progress) -> tuple[RowOutcome, dict[str, int]]:
        outcome, steps = row
        tokens: dict[str, int] = {}
        done: list[str] = []
        for step in steps:
            try:
                token = step.run(self.entities)
            except PreservicaError as exc:
                if not exc.retryable:
                    raise
                outcome.outcome = Outcome.REJECTED
                outcome.message = f"{step.what}: {exc}"
                outcome.changes = done
                progress.tick()
                return outcome, tokens
            done.append(step.what)
            if step.background and token:
                tokens[token] = outcome.row
        outcome.outcome = Outcome.PENDING if tokens else Outcome.CHANGED
        progress.tick()
        return outcome, tokens

    # -- the whole run -----------------------------------------------------------------------------
    def run(
        self,
        sheet: Iterable[RowChange | RowProblem],
        *,
        dry_run: bool = False,
        allow_partial: bool = False,
        wait: bool = True,
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
    ) -> MetadataRun:
        """Apply ``sheet`` (a ``Sheet``, or a ``SheetStream`` read as it goes, rows in sheet order).

        With ``wait=False`` background work is left in ``MetadataRun.pending``. Memory does not grow with
        the sheet: rows are read, planned and written a few per worker at a time, and each row's plan waits
        in the run's temporary store (see ``store``) between planning and writing.
        """
        store = RowStore()
        try:
            reading = _Progress("read and plan")
            planned: list[tuple[RowOutcome, list[Step]]] = []

            def plan_one(item: RowChange | RowProblem) -> tuple[RowOutcome, list[Step]]:
                result = self._plan(item, dry_run)
                reading.tick()
                return result

            for result in self._map(plan_one, sheet):
                planned.append(result)
                if len(planned) >= PAGE:
                    store.add_many(planned)
                    planned = []
            store.add_many(planned)
            del planned
            self._refuse_duplicates(store)
            run = MetadataRun(getattr(sheet, "source", "rows given in code"), dry_run, store)
            if dry_run:
                store.forget_steps()
                return run
            counts = store.counts()
            if any(outcome.failed for outcome in counts) and not allow_partial:
                run.held_back = counts.get(Outcome.PENDING, 0) > 0  # rows with writes to do (see _plan)
                self._hold_back(store)
                return run
            writing = _Progress("write", counts.get(Outcome.PENDING, 0))
            written = self._map(lambda row: self._apply(row, writing), store.planned())
            _update_in_pages(store, self._collect_tokens(written, run.pending), drop_steps=True)
        except BaseException:
            store.close()
            raise
        if wait and run.pending:
            self.wait(run, poll_interval=poll_interval, timeout=timeout)
        return run

    @staticmethod
    def _collect_tokens(
        written: Iterable[tuple[RowOutcome, dict[str, int]]], pending: dict[str, int]
    ) -> Iterator[RowOutcome]:
        for outcome, tokens in written:
            pending.update(tokens)
            yield outcome

    @staticmethod
    def _hold_back(store: RowStore) -> None:
        """Nothing is written: the good rows with writes to do become ``not applied``."""

        def marked() -> Iterator[RowOutcome]:
            for outcome, _ in store.planned():
                outcome.outcome = Outcome.NOT_APPLIED
                yield outcome

        _update_in_pages(store, marked(), drop_steps=True)

    def wait(self, run: MetadataRun, *, poll_interval: float = 2.0, timeout: float = 3600.0) -> None:
        """Wait for the run's background work (security tags, moves) and record how each ended."""
        log.info("Waiting for %d security tag changes and moves in Preservica", len(run.pending))
        finished: dict[str, Progress] = self.preservica.wait_for_all(
            list(run.pending),
            poll_interval=poll_interval,
            timeout=timeout,
            what="metadata change",
            map_fn=self._map,
        )
        run.finish_background({t: (p.status, p.errors) for t, p in finished.items()})
