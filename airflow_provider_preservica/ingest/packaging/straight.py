"""Write a package's zip straight from the source (what an ingest does, ``keep_staged=False``): nothing staged,
no sidecar or manifest on disk; each file read once, never through a link, hashed while it is zipped."""

from __future__ import annotations

import hashlib
import os
from array import array
from pathlib import Path
from typing import Any, BinaryIO

from airflow_provider_preservica.exceptions import FixityError, MissingSourceFilesError, SourceChangedError
from airflow_provider_preservica.files.fixity import ALGORITHMS, FileFixity, FixityRecord
from airflow_provider_preservica.files.nofollow import open_file
from airflow_provider_preservica.ingest.packaging.model import AssetRecord
from airflow_provider_preservica.ingest.packaging.opex import asset_sidecar, manifest_name, sidecar_name
from airflow_provider_preservica.ingest.packaging.planning import (
    BuildProgress,
    PlannedEntity,
    asset_record,
    folder_manifests,
    with_content_ids,
)
from airflow_provider_preservica.ingest.packaging.source import SourceEntry, SourceTree
from airflow_provider_preservica.ingest.packaging.validation import display
from airflow_provider_preservica.ingest.packaging.zipper import ZipStream


def open_source(tree: SourceTree, entry: SourceEntry) -> BinaryIO:
    """A source file for reading, never through a link: the file the scan saw, or ``SourceChangedError``."""
    root = tree.local_path("")
    if root is not None:
        return open_file(root, entry.path, identity=entry.identity)
    return tree.open(entry.path)


def vanished_or(tree: SourceTree, path: str) -> MissingSourceFilesError | None:
    """``MissingSourceFilesError`` if the file at ``path`` is gone (deleted or moved since the scan); ``None`` if
    something is there (a link or another file: the ``SourceChangedError`` caught says which)."""
    local = tree.local_path(path)
    if local is None or os.path.lexists(local):
        return None
    return MissingSourceFilesError([display(path)])


def zip_straight(
    tree: SourceTree,
    planned_folders: list[PlannedEntity],
    planned_files: list[PlannedEntity],
    final_zip: Path,
    *,
    top: str,
    algorithms: tuple[str, ...],
    compression: int,
    fixity_identifier: str | None,
    progress: BuildProgress | None,
) -> list[AssetRecord]:
    """Write the package's zip straight from the source: no staged tree, no sidecar or manifest files on disk.

    Each content file is read once, from its source path (never through a link, see ``nofollow``), and hashed
    while it is written into the zip, so the sidecar that follows it promises exactly the bytes the zip holds;
    sidecars and manifests go from memory into the zip. The members, their order and their bytes are those
    ``zip_opex_tree`` writes for the staged tree of the same build. A file whose size differs from the scan's,
    or that cannot be read, fails the build (every such file named at once) and no zip is left behind.
    """
    prefix = f"{top}/" if top else ""
    total = sum(e.entry.size for e in planned_files)
    done = 0

    # Members: folders, then content files and their sidecars by name (k = 2 * position, + 1 for the sidecar).
    def member_name(k: int) -> str:
        path = planned_files[k >> 1].path
        return sidecar_name(path) if k & 1 else path

    order = array("q", sorted(range(2 * len(planned_files)), key=member_name))
    sidecar_sizes = array("q", bytes(8 * len(planned_files)))  # by position in planned_files
    pending: dict[int, FileFixity] = {}  # content zipped, sidecar not yet (usually the next member)
    assets: list[AssetRecord] = []
    changed: list[str] = []
    unreadable: list[tuple[str, str]] = []
    with ZipStream(final_zip, compression=compression) as archive:
        for arcname in sorted(f"{prefix}{f.path}/" if f.path else prefix for f in planned_folders if f.path or top):
            archive.directory(arcname)
        for k in order:
            index = k >> 1
            item = planned_files[index]
            if k & 1:  # the sidecar, once its content file is in
                result = pending.pop(index, None)
                if result is None:
                    continue  # the content failed: named below
                data = asset_sidecar(with_content_ids(item.props, result.records, fixity_identifier), result.records)
                archive.data(sidecar_name(prefix + item.path), data)
                sidecar_sizes[index] = len(data)
                assets.append(asset_record(item, result))
                continue
            try:
                source = open_source(tree, item.entry)
            except (FileNotFoundError, SourceChangedError):
                gone = vanished_or(tree, item.path)
                if gone is None:
                    raise
                raise gone from None
            except OSError as exc:
                unreadable.append((display(item.path), exc.strerror or str(exc)))
                continue
            hashers = [hashlib.new(ALGORITHMS[name]) for name in algorithms]

            def digest(chunk: memoryview, hashers: list[Any] = hashers) -> None:
                nonlocal done
                for hasher in hashers:
                    hasher.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress("zip", done, total)

            try:
                with source:
                    size = archive.stream(prefix + item.path, source, item.entry.size, digest)
            except OSError as exc:
                unreadable.append((display(item.path), exc.strerror or str(exc)))
                continue  # the zip is discarded below
            if size != item.entry.size:
                changed.append(f"{display(item.path)} ({item.entry.size} -> {size} bytes)")
                continue
            records = tuple(FixityRecord(n, h.hexdigest()) for n, h in zip(algorithms, hashers, strict=True))
            pending[index] = FileFixity(size, records)
        raise_for_unread(unreadable, changed, "")
        for folder, document in folder_manifests(planned_folders, planned_files, sidecar_sizes, top_folder=bool(top)):
            directory = prefix + folder.path if folder.path else top
            archive.data(f"{directory}/{manifest_name(directory.rsplit('/', 1)[-1])}", document)
    return assets


def raise_for_unread(unreadable: list[tuple[str, str]], changed: list[str], advice: str) -> None:
    """``FixityError`` naming every file that could not be read (``(path, why)``), or else every file that changed
    size (``advice``: what else to do than waiting for the transfer to end)."""
    if unreadable:
        listing = "\n".join(f"  - {path}: {why}" for path, why in sorted(unreadable))
        raise FixityError(
            f"{len(unreadable)} file(s) could not be hashed (check they exist and are readable):\n{listing}",
            sorted(path for path, _ in unreadable),
        )
    if changed:
        raise FixityError(
            "file(s) changed size while the package was being built (still being written?): "
            + "; ".join(changed)
            + ". Wait until the transfer into the source has finished"
            + advice
            + ".",
            changed,
        )
