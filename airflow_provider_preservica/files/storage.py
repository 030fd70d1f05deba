"""Write outputs so that a partial file never sits under its final name.

Destinations are local paths or any ``ObjectStoragePath`` URL Airflow supports (``s3://``, ``gs://``,
``file://``...). Bytes go to a temporary name next to the destination, which is renamed only after
the writer finished without error; on error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from airflow_provider_preservica.exceptions import PreservicaConfigError


def is_url(destination: str) -> bool:
    return "://" in destination


def object_path(url: str) -> Any:
    """``url`` as an ``ObjectStoragePath`` (Airflow imported only when a URL is used)."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


def _local_path(destination: str) -> Path | None:
    """The local file ``destination`` names: a path, or a URL on the local filesystem (``file://``)."""
    if not is_url(destination):
        return Path(destination).expanduser().resolve()
    if destination.split("://", 1)[0].lower() in ("file", "local"):
        return Path(object_path(destination).path).resolve()
    return None  # an object store: "folders" are key prefixes, there when the object is


def _make_folder(folder: Path) -> None:
    """Create ``folder`` and any missing parents, or say clearly why it cannot be made."""
    try:
        for existing in (folder, *folder.parents):
            if existing.exists():
                if existing.is_dir():
                    break
                where = "" if existing == folder else f"cannot be created: {str(existing)!r} "
                raise PreservicaConfigError(
                    f"output folder {str(folder)!r} {where}is a file, not a folder; choose another path"
                )
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PreservicaConfigError(
            f"output folder {str(folder)!r} does not exist and cannot be created ({exc.strerror or exc}); "
            "create it or choose another path"
        ) from None


def check_writable(destination: str) -> None:
    """Fail before any work starts when the destination cannot be written; create its missing folders.

    Object stores are checked by the write itself: there is no cheap, reliable probe, and no folder to make.
    """
    local = _local_path(destination)
    if local is None:
        return
    parent = local.parent
    _make_folder(parent)
    if not os.access(parent, os.W_OK):
        raise PreservicaConfigError(f"output folder {str(parent)!r} is not writable by this worker")
    if local.is_dir():
        raise PreservicaConfigError(f"output path {destination!r} is a folder; give a file name")


@contextlib.contextmanager
def atomic_output(destination: str, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``destination`` for writing; rename it into place on success."""
    token = uuid.uuid4().hex[:8]
    if is_url(destination):
        final = object_path(destination)
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


COPY_CHUNK = 8 * 1024 * 1024


def publish_file(local: str | os.PathLike[str], destination: str) -> None:
    """Copy a finished local file to ``destination`` (a path or an object-storage URL), streaming."""
    with open(local, "rb") as source, atomic_output(destination, "wb") as target:
        shutil.copyfileobj(source, target, COPY_CHUNK)


def fetch_to_local(url: str, into: str | os.PathLike[str]) -> Path:
    """Copy the file or folder at object-storage ``url`` under local folder ``into``, file by file.

    The copy keeps the remote name and relative paths, so SourceIDs derived from them are the same on
    every try. Empty remote "folders" (prefixes) do not exist in object stores and are not recreated.
    """
    root = object_path(url)
    if not root.exists():
        raise PreservicaConfigError(f"ingest source {url!r} does not exist (or this worker cannot see it)")
    target = Path(into) / root.name
    if root.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_object(root, target)
        return target
    target.mkdir(parents=True, exist_ok=True)
    for remote in root.rglob("*"):
        if remote.is_file():
            # By path strings: universal-pathlib 0.2 (Airflow 3.1) answers relative_to() with a whole URL.
            relative = PurePosixPath(remote.path).relative_to(PurePosixPath(root.path))
            local = target.joinpath(*relative.parts)
            local.parent.mkdir(parents=True, exist_ok=True)
            _copy_object(remote, local)
    return target


def _copy_object(remote: Any, local: Path) -> None:
    with remote.open("rb") as source, local.open("wb") as target:
        shutil.copyfileobj(source, target, COPY_CHUNK)
