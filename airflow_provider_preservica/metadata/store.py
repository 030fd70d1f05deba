"""Each row's outcome and planned writes, kept on disk so that a 100,000-row sheet runs in flat memory.

A metadata run must read and plan every row before its first write (a failed row means nothing is written),
so every row's plan lives from the first phase to the last. Held in memory that is a few KB a row; here it
is a row in a private temporary SQLite database (``sqlite3.connect("")``): SQLite unlinks its file as soon
as it opens it, so nothing is left in temp space after the run, even after a crash, and memory stays at
SQLite's page cache whatever the sheet's size. Only this process can read the file, which is why the
planned writes may be pickled (they hold ``Entity`` objects).

Rows are read back in sheet order, a page at a time, with no statement left open while rows are updated.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider_preservica.metadata.model import FAILURES, Outcome, RowOutcome
from airflow_provider_preservica.metadata.plan import Step

PAGE = 500  # rows read back at once
_FAILED = tuple(o.value for o in FAILURES)
_FAILED_SQL = ", ".join("?" * len(_FAILED))


class RowStore:
    """Rows in sheet order: each row's ``RowOutcome`` and, until they are written, its planned ``Step``s."""

    def __init__(self, outcomes: Iterable[RowOutcome] = ()) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE rows (seq INTEGER PRIMARY KEY, row INTEGER NOT NULL, ref TEXT NOT NULL, "
            "outcome TEXT NOT NULL, record TEXT NOT NULL, steps BLOB)"
        )
        self._db.execute("CREATE INDEX rows_row ON rows (row)")
        self._sorted = True
        self._last_row = -1
        self.add_many((o, []) for o in outcomes)

    # -- writing ---------------------------------------------------------------------------------
    def add(self, outcome: RowOutcome, steps: list[Step]) -> None:
        self.add_many([(outcome, steps)])

    def add_many(self, rows: Iterable[tuple[RowOutcome, list[Step]]]) -> None:
        with self._lock, self._db:
            for outcome, steps in rows:
                self._sorted = self._sorted and outcome.row >= self._last_row
                self._last_row = outcome.row
                self._db.execute(
                    "INSERT INTO rows (row, ref, outcome, record, steps) VALUES (?, ?, ?, ?, ?)",
                    (outcome.row, outcome.ref, outcome.outcome.value, _dump(outcome), _steps(steps)),
                )

    def update(self, outcomes: Iterable[RowOutcome], *, drop_steps: bool = False) -> None:
        """Replace the stored outcome of each row (by row number); ``drop_steps``: its writes are done with."""
        sql = "UPDATE rows SET outcome = ?, record = ?, ref = ?" + (", steps = NULL" if drop_steps else "")
        with self._lock, self._db:
            self._db.executemany(sql + " WHERE row = ?", ((o.outcome.value, _dump(o), o.ref, o.row) for o in outcomes))

    def forget_steps(self) -> None:
        """No row will be written (a dry run): drop every planned write."""
        with self._lock, self._db:
            self._db.execute("UPDATE rows SET steps = NULL WHERE steps IS NOT NULL")

    def close(self) -> None:
        self._db.close()

    # -- reading ---------------------------------------------------------------------------------
    def _pages(self, columns: str, where: str = "1", params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows in sheet order, ``PAGE`` at a time, with no statement open between pages."""
        order = "row, seq" if not self._sorted else "seq"
        if not self._sorted:  # only when outcomes were given out of order: small, read at once
            with self._lock:
                yield from self._db.execute(f"SELECT {columns} FROM rows WHERE {where} ORDER BY {order}", params)
            return
        after = 0
        while True:
            with self._lock:
                page = self._db.execute(
                    f"SELECT seq, {columns} FROM rows WHERE seq > ? AND ({where}) ORDER BY seq LIMIT {PAGE}",
                    (after, *params),
                ).fetchall()
            if not page:
                return
            after = page[-1][0]
            for record in page:
                yield record[1:]

    def outcomes(self, where: str = "1", params: tuple[Any, ...] = ()) -> Iterator[RowOutcome]:
        for (record,) in self._pages("record", where, params):
            yield _load(record)

    def planned(self) -> Iterator[tuple[RowOutcome, list[Step]]]:
        """Rows with writes still to do, and those writes."""
        for record, steps in self._pages("record, steps", "steps IS NOT NULL"):
            yield _load(record), pickle.loads(steps)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM rows").fetchone()[0])

    def counts(self) -> Counter[Outcome]:
        with self._lock:
            found = self._db.execute("SELECT outcome, count(*) FROM rows GROUP BY outcome").fetchall()
        return Counter({Outcome(value): int(n) for value, n in found})

    def failed(self, limit: int | None = None) -> list[RowOutcome]:
        found = self.outcomes(f"outcome IN ({_FAILED_SQL})", _FAILED)
        return [o for _, o in zip(range(limit), found, strict=False)] if limit is not None else list(found)

    def with_outcome(self, outcome: Outcome, limit: int) -> list[RowOutcome]:
        return [o for _, o in zip(range(limit), self.outcomes("outcome = ?", (outcome.value,)), strict=False)]

    def shared_refs(self) -> list[list[int]]:
        """Rows not failed that name the same entity, grouped (each group in sheet order)."""
        with self._lock:
            found = self._db.execute(
                f"SELECT ref, group_concat(row) FROM rows WHERE ref != '' AND outcome NOT IN ({_FAILED_SQL}) "
                "GROUP BY ref HAVING count(*) > 1",
                _FAILED,
            ).fetchall()
        return [sorted(int(r) for r in rows.split(",")) for _, rows in found]


def _dump(outcome: RowOutcome) -> str:
    return json.dumps(outcome.to_json(), ensure_ascii=False)


def _load(record: str) -> RowOutcome:
    return RowOutcome.from_json(json.loads(record))


def _steps(steps: list[Step]) -> bytes | None:
    return pickle.dumps(steps, protocol=pickle.HIGHEST_PROTOCOL) if steps else None
