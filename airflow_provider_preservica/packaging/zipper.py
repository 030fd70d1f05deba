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
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_preservica.packaging.fixity import CHUNK_SIZE
from airflow_provider_preservica.packaging.opex import OPEX_SUFFIX

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_ATTRS = (0o100644 & 0xFFFF) << 16
_DIR_ATTRS = ((0o040755 & 0xFFFF) << 16) | 0x10  # MS-DOS directory bit too


@dataclass(frozen=True)
class ZipEntry:
    """One member: ``arcname`` (POSIX, directories end with ``/``) and the local file (``None`` for a directory)."""

    arcname: str
    source: Path | None


def opex_zip_entries(staged_root: str | os.PathLike[str], *, top_folder: bool = True) -> list[ZipEntry]:
    """The members of a zipped OPEX package, in the deterministic order described above.

    The zip's top folder is the staged folder itself (same name, so that its manifest
    ``<top>/<top>.opex`` keeps matching). A folder manifest is recognised as ``<folder>/<folder>.opex``.
    ``top_folder=False``: the staged folder's contents sit at the zip's root, without the folder itself.
    """
    root = Path(staged_root)
    top = root.name if top_folder else ""
    dirs: list[ZipEntry] = []
    files: list[ZipEntry] = []
    manifests: list[tuple[int, str, ZipEntry]] = []
    for current, subdirs, names in os.walk(root):
        subdirs.sort()
        here = Path(current)
        rel = here.relative_to(root).as_posix()
        arc_dir = top if rel == "." else f"{top}/{rel}".lstrip("/")
        if arc_dir:
            dirs.append(ZipEntry(arc_dir + "/", None))
        folder_name = here.name
        for name in sorted(names):
            entry = ZipEntry(f"{arc_dir}/{name}".lstrip("/"), here / name)
            if name == folder_name + OPEX_SUFFIX:
                manifests.append((arc_dir.count("/"), arc_dir, entry))
            else:
                files.append(entry)
    dirs.sort(key=lambda e: e.arcname)
    files.sort(key=lambda e: e.arcname)
    manifests.sort(key=lambda m: (-m[0], m[1]))
    return dirs + files + [m[2] for m in manifests]


def write_zip(
    entries: Iterable[ZipEntry],
    zip_path: str | os.PathLike[str],
    *,
    compression: int = zipfile.ZIP_STORED,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Path:
    """Write the entries to ``zip_path`` (via a hidden partial file, renamed at the end)."""
    target = Path(zip_path)
    members = list(entries)
    total = sum(e.source.stat().st_size for e in members if e.source is not None)
    partial = target.with_name(f".{target.name}.partial")
    done = 0
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    try:
        with zipfile.ZipFile(partial, "w", compression=compression, allowZip64=True) as archive:
            for entry in members:
                info = zipfile.ZipInfo(entry.arcname, date_time=ZIP_EPOCH)
                info.create_system = 3
                if entry.source is None:
                    info.external_attr = _DIR_ATTRS
                    archive.writestr(info, b"")
                    continue
                info.external_attr = _FILE_ATTRS
                info.compress_type = compression
                info.file_size = entry.source.stat().st_size  # decides ZIP64 before writing
                with open(entry.source, "rb", buffering=0) as source, archive.open(info, "w") as member:
                    while n := source.readinto(buffer):
                        member.write(view[:n])
                        done += n
                        if progress is not None:
                            progress(done, total)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def zip_opex_tree(
    staged_root: str | os.PathLike[str],
    zip_path: str | os.PathLike[str],
    *,
    compression: int = zipfile.ZIP_STORED,
    progress: Callable[[int, int], None] | None = None,
    top_folder: bool = True,
) -> Path:
    """Zip a staged OPEX folder so that the zip holds ``<folder name>/…`` (see ``opex_zip_entries``)."""
    entries = opex_zip_entries(staged_root, top_folder=top_folder)
    return write_zip(entries, zip_path, compression=compression, progress=progress)
