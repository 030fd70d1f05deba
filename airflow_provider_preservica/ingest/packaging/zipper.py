"""Zip a staged OPEX tree: deterministic, streamed, ZIP64-ready, stored (no compression) by default.

* Deterministic: entries in a fixed order, fixed timestamps (1980-01-01, the zip epoch) and fixed
  permissions, so the same tree always gives byte-identical zips (same SHA-256; a re-run can be
  recognised). Modification times are not kept: Preservica does not read them from the zip.
* Order: directory entries, then content files and their sidecars (sorted by path), then the folder
  manifests deepest first, the top folder's manifest last — the same "manifests last" rule as on disk,
  for consumers that stream the zip.
* Stored by default: archival content (TIFF, JPEG 2000, PDF, video) is mostly compressed already, and a
  stored zip is written at disk speed. ``compression=zipfile.ZIP_DEFLATED`` is available.
* Streamed in 1 MiB chunks (constant memory); ZIP64 headers are used for files of 4 GiB and more and
  for archives with more than 65,535 entries.
* Written to a hidden ``.<name>.partial`` file, renamed when complete: a half-written zip never
  appears under its final name.
* Flat memory for any number of members: the members are listed as their names only, and the record
  ``zipfile`` keeps of each member until it writes the central directory (a ``ZipInfo``, some 500 bytes)
  waits in an unlinked temporary file instead of a list (``_SpilledInfos``).
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from airflow_provider_preservica.files.fixity import CHUNK_SIZE
from airflow_provider_preservica.ingest.packaging.opex import OPEX_SUFFIX

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_ATTRS = (0o100644 & 0xFFFF) << 16
_DIR_ATTRS = ((0o040755 & 0xFFFF) << 16) | 0x10  # MS-DOS directory bit too


@dataclass(frozen=True)
class ZipEntry:
    """One member: ``arcname`` (POSIX, directories end with ``/``) and the local file (``None`` for a directory)."""

    arcname: str
    source: Path | None


def _arcnames(staged_root: Path, *, top_folder: bool) -> list[str]:
    """The members' names (directories end with ``/``), in the order described above; names only, no paths."""
    top = staged_root.name if top_folder else ""
    dirs: list[str] = []
    files: list[str] = []
    manifests: list[tuple[int, str, str]] = []
    for current, subdirs, names in os.walk(staged_root):
        subdirs.sort()
        rel = os.path.relpath(current, staged_root).replace(os.sep, "/")
        arc_dir = top if rel == "." else f"{top}/{rel}".lstrip("/")
        if arc_dir:
            dirs.append(arc_dir + "/")
        manifest = os.path.basename(current) + OPEX_SUFFIX
        for name in names:
            arcname = f"{arc_dir}/{name}".lstrip("/")
            if name == manifest:
                manifests.append((arc_dir.count("/"), arc_dir, arcname))
            else:
                files.append(arcname)
    dirs.sort()
    files.sort()
    manifests.sort(key=lambda m: (-m[0], m[1]))
    return dirs + files + [m[2] for m in manifests]


def _base(staged_root: Path, top_folder: bool) -> Path:
    """The folder the member names are relative to."""
    return staged_root.parent if top_folder else staged_root


def opex_zip_entries(staged_root: str | os.PathLike[str], *, top_folder: bool = True) -> list[ZipEntry]:
    """The members of a zipped OPEX package, in the deterministic order described above.

    The zip's top folder is the staged folder itself (same name, so that its manifest
    ``<top>/<top>.opex`` keeps matching). A folder manifest is recognised as ``<folder>/<folder>.opex``.
    ``top_folder=False``: the staged folder's contents sit at the zip's root, without the folder itself.
    """
    root = Path(staged_root)
    base = _base(root, top_folder)
    return [_entry(base, name) for name in _arcnames(root, top_folder=top_folder)]


def _entry(base: Path, arcname: str) -> ZipEntry:
    return ZipEntry(arcname, None if arcname.endswith("/") else base / arcname)


class _SpilledInfos:
    """Stands in for ``ZipFile.filelist`` while writing: each member's ``ZipInfo`` is pickled to an unlinked
    temporary file (only this process can read it) and read back, in order, for the central directory.

    ``zipfile`` appends to ``filelist``, takes its ``len()`` and iterates it (the same in Python 3.10-3.13).
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="preservica-zip-")  # noqa: SIM115 - closed by close()
        self._count = 0

    def append(self, info: zipfile.ZipInfo) -> None:
        pickle.dump(info, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[zipfile.ZipInfo]:
        self._file.seek(0)
        for _ in range(self._count):
            yield pickle.load(self._file)  # our own unlinked file, written just before
        self._file.seek(0, os.SEEK_END)

    def close(self) -> None:
        self._file.close()


class _NoNames(dict[str, Any]):
    """Stands in for ``ZipFile.NameToInfo`` while writing: keeps nothing (member names are unique by
    construction here, so the duplicate-name warning it serves cannot apply)."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


def write_zip(
    entries: Iterable[ZipEntry],
    zip_path: str | os.PathLike[str],
    *,
    compression: int = zipfile.ZIP_STORED,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Path:
    """Write the entries to ``zip_path`` (via a hidden partial file, renamed at the end)."""
    members = [(e.arcname, None if e.source is None else os.fspath(e.source)) for e in entries]
    total = sum(os.stat(source).st_size for _, source in members if source is not None)
    return _write(members, total, zip_path, compression=compression, progress=progress, chunk_size=chunk_size)


class ZipStream:
    """A zip being written member by member, in the given order: ``directory``, ``data`` (bytes held in memory,
    e.g. a sidecar) and ``stream`` (a file read in chunks). Deterministic headers as described above; written
    to a hidden partial file that becomes ``zip_path`` only when the ``with`` block ends without an error.
    """

    def __init__(
        self, zip_path: str | os.PathLike[str], *, compression: int = zipfile.ZIP_STORED, chunk_size: int = CHUNK_SIZE
    ) -> None:
        self.target = Path(zip_path)
        self.partial = self.target.with_name(f".{self.target.name}.partial")
        self.compression = compression
        self._buffer = bytearray(chunk_size)
        self._infos = _SpilledInfos()
        try:
            self._archive = zipfile.ZipFile(self.partial, "w", compression=compression, allowZip64=True)
        except BaseException:
            self._infos.close()
            raise
        self._archive.filelist = self._infos  # type: ignore[assignment]
        self._archive.NameToInfo = _NoNames()

    def __enter__(self) -> ZipStream:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            self._archive.close()  # the central directory, also after an error (then discarded)
            if kind is None:
                os.replace(self.partial, self.target)
        finally:
            self._infos.close()
            self.partial.unlink(missing_ok=True)  # gone once renamed; a failed zip is never left behind

    def _info(self, arcname: str, attrs: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
        info.create_system = 3
        info.external_attr = attrs
        return info

    def directory(self, arcname: str) -> None:
        """A folder entry (``arcname`` ends with ``/``)."""
        self._archive.writestr(self._info(arcname, _DIR_ATTRS), b"")

    def data(self, arcname: str, data: bytes) -> None:
        """A small member held in memory (a sidecar or a manifest)."""
        info = self._info(arcname, _FILE_ATTRS)
        info.compress_type = self.compression
        self._archive.writestr(info, data)

    def stream(
        self, arcname: str, source: BinaryIO, size: int, on_chunk: Callable[[memoryview], None] | None = None
    ) -> int:
        """A member read from ``source`` to its end in chunks (``size``, the expected size, decides ZIP64);
        ``on_chunk`` sees every chunk written (to hash it, to count progress). Returns the bytes written."""
        info = self._info(arcname, _FILE_ATTRS)
        info.compress_type = self.compression
        info.file_size = size  # decides ZIP64 before writing
        buffer = self._buffer
        view = memoryview(buffer)
        written = 0
        with self._archive.open(info, "w") as member:
            while n := source.readinto(buffer):  # type: ignore[attr-defined]
                chunk = view[:n]
                member.write(chunk)
                if on_chunk is not None:
                    on_chunk(chunk)
                written += n
        return written


def _write(
    members: Iterable[tuple[str, str | None]],  # (arcname, local file or None for a directory)
    total: int,
    zip_path: str | os.PathLike[str],
    *,
    compression: int,
    progress: Callable[[int, int], None] | None,
    chunk_size: int = CHUNK_SIZE,
) -> Path:
    done = 0

    def advance(chunk: memoryview) -> None:
        nonlocal done
        done += len(chunk)
        if progress is not None:
            progress(done, total)

    with ZipStream(zip_path, compression=compression, chunk_size=chunk_size) as archive:
        for arcname, source_path in members:
            if source_path is None:
                archive.directory(arcname)
                continue
            with open(source_path, "rb", buffering=0) as source:
                archive.stream(arcname, source, os.fstat(source.fileno()).st_size, advance)
    return archive.target


def zip_opex_tree(
    staged_root: str | os.PathLike[str],
    zip_path: str | os.PathLike[str],
    *,
    compression: int = zipfile.ZIP_STORED,
    progress: Callable[[int, int], None] | None = None,
    top_folder: bool = True,
) -> Path:
    """Zip a staged OPEX folder so that the zip holds ``<folder name>/…`` (see ``opex_zip_entries``)."""
    root = Path(staged_root)
    base = os.fspath(_base(root, top_folder))  # plain strings: a ``Path`` per member would intern every name
    names = _arcnames(root, top_folder=top_folder)
    files = ((name, os.path.join(base, name)) for name in names if not name.endswith("/"))
    total = sum(os.stat(local).st_size for _, local in files)
    members = ((name, None if name.endswith("/") else os.path.join(base, name)) for name in names)
    return _write(members, total, zip_path, compression=compression, progress=progress)
