"""What an ingest sent, file by file: each asset's SourceID, file name and promised fixity, kept on disk.

The runner needs this from the build to the verification after Preservica's outcome: which SourceIDs to
look for, and the checksum each one's sidecar promised. Held in dicts and lists that is some 500 bytes a
file (50 MB for 100,000 files, on top of the build); here it is a row in a private temporary SQLite
database (``sqlite3.connect("")``: SQLite unlinks its file as soon as it opens it, so nothing is left in
temp space, even after a crash), and memory stays at SQLite's page cache whatever the delivery's size.

``SentFiles`` is a read-only ``Mapping`` ``{SourceID: (file name, algorithm, checksum)}`` for the readers
(``ingest.verify`` reads it from its worker threads), iterated in SourceID order a page at a time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

PAGE = 1000  # rows read back at once

Expected = tuple[str, str, str]  # file name, algorithm, lowercase hex


class SentFiles(Mapping[str, Expected]):
    def __init__(self, rows: Iterable[tuple[str, str, str, str]] = ()) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE sent (source_id TEXT PRIMARY KEY, filename TEXT NOT NULL, algorithm TEXT NOT NULL, "
            "value TEXT NOT NULL) WITHOUT ROWID"
        )
        self._count = 0
        self.add_many(rows)

    def add_many(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Add ``(SourceID, file name, algorithm, checksum)`` rows; a SourceID given again replaces its row."""
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?)", rows)
            self._count = int(self._db.execute("SELECT count(*) FROM sent").fetchone()[0])

    def replace_all(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM sent")
        self.add_many(rows)

    def __getitem__(self, source_id: str) -> Expected:
        with self._lock:
            row = self._db.execute(
                "SELECT filename, algorithm, value FROM sent WHERE source_id = ?", (source_id,)
            ).fetchone()
        if row is None:
            raise KeyError(source_id)
        return (str(row[0]), str(row[1]), str(row[2]))

    def __len__(self) -> int:
        return self._count

    def rows(self) -> Iterator[tuple[str, str, str, str]]:
        """Every row in SourceID order, a page at a time, with no statement left open between pages."""
        after = ""
        while True:
            with self._lock:
                page = self._db.execute(
                    f"SELECT source_id, filename, algorithm, value FROM sent WHERE source_id > ? "
                    f"ORDER BY source_id LIMIT {PAGE}",
                    (after,),
                ).fetchall()
            if not page:
                return
            after = page[-1][0]
            yield from page

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self.rows())

    def to_json(self) -> list[list[str]]:
        """For a small delivery's state carried inline (``IngestReport.to_state``)."""
        return [list(row) for row in self.rows()]

    @classmethod
    def from_json(cls, value: Any) -> SentFiles:
        """From ``to_json``, or from the ``expected_fixity`` dict of a state written by an older release."""
        if isinstance(value, dict):
            return cls((str(sid), str(v[0]), str(v[1]), str(v[2])) for sid, v in value.items())
        return cls((str(a), str(b), str(c), str(d)) for a, b, c, d in value or [])

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SentFiles({self._count} files)"

    def __deepcopy__(self, memo: dict[int, Any]) -> SentFiles:
        return SentFiles(self.rows())
