"""Open a corrections sheet (a local path or an ``ObjectStoragePath`` URL) as text read as it is used.

The sheet is streamed, never read whole: a 100,000-row sheet costs no more memory than a ten-row one.
Every way reading can fail (missing, unreadable, not UTF-8, a broken CSV record) is a ``SheetError``
naming the sheet, whether met on opening or half way through.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO, TypeVar

from airflow_provider_preservica.exceptions import SheetError
from airflow_provider_preservica.files.storage import is_url, object_path

T = TypeVar("T")


@contextmanager
def reading(source: str) -> Iterator[None]:
    """Turn the errors of reading ``source`` into ``SheetError``."""
    try:
        yield
    except FileNotFoundError:
        raise SheetError(f"metadata sheet {source!r} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SheetError(f"cannot read metadata sheet {source!r}: {exc}") from None


@contextmanager
def open_text(source: str) -> Iterator[TextIO]:
    """The sheet opened as text (a BOM dropped, newlines kept for the CSV reader)."""
    with reading(source):
        raw = object_path(source).open("rb") if is_url(source) else Path(source).expanduser().open("rb")
    with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
        yield handle


def read_text(source: str) -> str:
    """The whole sheet (for :func:`~airflow_provider_preservica.metadata.sheet.read_sheet`)."""
    with open_text(source) as handle, reading(source):
        return handle.read()


def decoded(items: Iterable[T], source: str) -> Iterator[T]:
    """``items`` read from the sheet as it streams, read and decoding errors turned into ``SheetError``."""
    iterator = iter(items)
    while True:
        with reading(source):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item
