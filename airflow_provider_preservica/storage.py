"""Write outputs so that a partial file never sits under its final name.

Destinations are local paths or any ``ObjectStoragePath`` URL Airflow supports (``s3://``, ``gs://``,
``file://``...). Bytes go to a temporary name next to the destination, which is renamed only after
the writer finished without error; on error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from airflow_provider_preservica.exceptions import PreservicaConfigError


def is_url(destination: str) -> bool:
    return "://" in destination


def _object_path(url: str) -> Any:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


def check_writable(destination: str) -> None:
    """Fail before any work starts when the destination cannot be written."""
    if is_url(destination):
        return  # object stores are checked by the write itself; there is no cheap, reliable probe
    parent = Path(destination).expanduser().resolve().parent
    if not parent.is_dir():
        raise PreservicaConfigError(f"output folder {str(parent)!r} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise PreservicaConfigError(f"output folder {str(parent)!r} is not writable by this worker")
    if Path(destination).is_dir():
        raise PreservicaConfigError(f"output path {destination!r} is a folder; give a file name")


@contextlib.contextmanager
def atomic_output(destination: str, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``destination`` for writing; rename it into place on success."""
    token = uuid.uuid4().hex[:8]
    if is_url(destination):
        final = _object_path(destination)
        temporary = final.parent / f".{final.name}.{token}.partial"
        try:
            with temporary.open(mode, **open_kwargs) as handle:
                yield handle
            temporary.rename(final)
        except BaseException:
            with contextlib.suppress(Exception):
                temporary.unlink()
            raise
        return
    final_path = Path(destination).expanduser()
    temporary_path = final_path.with_name(f".{final_path.name}.{token}.partial")
    try:
        with temporary_path.open(mode, **open_kwargs) as handle:
            yield handle
        os.replace(temporary_path, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary_path.unlink()
        raise
