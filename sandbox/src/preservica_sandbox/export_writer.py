"""The second step of an export: writing the zip to disk from the snapshot, in constant memory.

``write_export(plan, target, report, stop)`` streams the zip (1 MiB copy buffer; PAX zips are written
straight into the outer zip, never to a temporary file). Layout (OPEX 1.2, what pyPreservica's
``OpexAPI`` reads)::

    <ancestor-ref>/                           only with IncludeParentHierarchy=true, root first
      <ancestor-ref>.opex                     folder sidecar; its manifest lists just the next level
      <folder-ref>/                           the exported folder (or the exported asset's parent)
        <folder-ref>.opex                     folder sidecar (see ``export_xml``)
        <sub-folder-ref>/ ...                 every folder below, the same way
        <asset-ref>.pax.zip                   one PAX per asset (stored, not compressed again)
        <asset-ref>.pax.zip.opex              asset sidecar with the SHA-256 of the .pax.zip

An exported asset without the parent hierarchy sits at the top: ``<asset-ref>.pax.zip`` and its sidecar.
Names are entity references, as Preservica's own exports use them (titles are in the sidecars).
Inside each ``<asset-ref>.pax.zip``: ``<asset-ref>.xip`` and the files at exactly four levels,
``Representation_<Type>[_<n>]/<co-ref>/Generation_<g>/<filename>``.

Zips are deterministic: entries in repository order, timestamps from each entity's ``modified`` time,
fixed permissions, DEFLATE for XML and STORED for content.
"""

from __future__ import annotations

import hashlib
import typing
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .entities import IO
from .export_snapshot import BlobSnap, ExportPlan, NodeSnap
from .export_xml import asset_sidecar, asset_xip, folder_sidecar, generation_path

COPY_CHUNK = 1 << 20
_FILE_MODE = 0o644 << 16
_DIR_MODE = (0o755 << 16) | 0x10


class ExportCancelled(Exception):
    """Raised inside ``write_export`` when the job is asked to stop."""


def _date_time(timestamp: str) -> tuple[int, int, int, int, int, int]:
    """``2023-11-14T22:13:20.500Z`` -> a zip timestamp (1980-01-01 for anything unreadable or earlier)."""
    try:
        date, _, clock = timestamp.partition("T")
        year, month, day = (int(x) for x in date.split("-"))
        hour, minute, second = (int(float(x)) for x in clock.rstrip("Z").split(":"))
        if year < 1980:
            raise ValueError
        return year, month, day, hour, minute, min(second, 59)
    except ValueError:
        return 1980, 1, 1, 0, 0, 0


def _info(name: str, when: str, compress: int, size: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_date_time(when))
    info.create_system = 3
    info.compress_type = compress
    info.external_attr = _DIR_MODE if name.endswith("/") else _FILE_MODE
    info.file_size = size
    return info


class _HashingWriter:
    """Counts and SHA-256-hashes what passes through to ``target`` (an unseekable stream for zipfile)."""

    def __init__(self, target: typing.IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def close(self) -> None:
        """The PAX zip closing must not close the outer zip's entry: that is closed by its own ``with``."""


@dataclass
class ExportResult:
    size: int
    assets: int
    folders: int
    files: int


Progress = Callable[[int], None]


class _Writer:
    def __init__(self, plan: ExportPlan, out: zipfile.ZipFile, report: Progress, stop: Callable[[], bool]) -> None:
        self.plan = plan
        self.out = out
        self.report = report
        self.stop = stop
        self.done = 0
        self.files = 0

    def _check(self) -> None:
        if self.stop():
            raise ExportCancelled("the export was cancelled")

    def text(self, name: str, when: str, body: str) -> None:
        self._check()
        self.out.writestr(_info(name, when, zipfile.ZIP_DEFLATED), body.encode("utf-8"))

    def directory(self, name: str, when: str) -> None:
        self.out.writestr(_info(name.rstrip("/") + "/", when, zipfile.ZIP_STORED), b"")

    def _copy(self, blob: BlobSnap, target: typing.IO[bytes]) -> None:
        if blob.data is not None:
            target.write(blob.data)
            self.done += len(blob.data)
            self.report(self.done)
            return
        assert blob.path is not None
        written = 0
        with open(blob.path, "rb") as source:
            while chunk := source.read(COPY_CHUNK):
                self._check()
                target.write(chunk)
                written += len(chunk)
                self.done += len(chunk)
                self.report(self.done)
        if written != blob.size:
            raise OSError(f"bitstream {blob.filename} has {written} bytes on disk, {blob.size} recorded")

    def asset(self, node: NodeSnap, directory: str) -> tuple[str, int]:
        """Write ``<ref>.pax.zip`` and its sidecar; returns the PAX name and size."""
        self._check()
        name = f"{node.ref}.pax.zip"
        xip = asset_xip(node, self.plan.options, self.plan.xip_ns).encode("utf-8")
        blobs = [
            (f"{generation_path(rep, co, g)}/{b.filename}", b)
            for rep in node.representations
            for co in rep.content_objects
            for g in co.generations
            for b in g.bitstreams
        ]
        bound = len(xip) + sum(b.size + 200 + 3 * len(path) for path, b in blobs) + 1024
        # file_size is an upper bound here (zipfile sets the real one): it decides whether ZIP64 is needed.
        entry = _info(directory + name, node.modified, zipfile.ZIP_STORED, bound)
        with self.out.open(entry, "w") as raw:
            hashing = _HashingWriter(raw)
            with zipfile.ZipFile(hashing, "w", allowZip64=True) as pax:
                pax.writestr(_info(f"{node.ref}.xip", node.modified, zipfile.ZIP_DEFLATED), xip)
                for path, blob in blobs:
                    with pax.open(_info(path, node.modified, zipfile.ZIP_STORED, blob.size), "w") as member:
                        self._copy(blob, member)
                    self.files += 1
        self.text(directory + name + ".opex", node.modified, asset_sidecar(node, hashing.digest.hexdigest()))
        return name, hashing.size

    def folder(self, node: NodeSnap, parent_dir: str, only_child: NodeSnap | None = None) -> None:
        """Write a folder, everything below it, then its sidecar (its manifest needs the PAX sizes)."""
        directory = f"{parent_dir}{node.ref}/"
        self.directory(directory, node.modified)
        files: list[tuple[str, str, int | None]] = []
        folders: list[str] = []
        children = (only_child,) if only_child is not None else node.children
        for child in children:
            if child.kind == IO:
                pax, size = self.asset(child, directory)
                files += [(pax, "content", size), (pax + ".opex", "metadata", None)]
            else:
                self.folder(child, directory)
                folders.append(child.ref)
        self.text(f"{directory}{node.ref}.opex", node.modified, folder_sidecar(node, files, folders))

    def run(self) -> None:
        plan = self.plan
        directory = ""
        chain = list(plan.ancestors)
        for index, ancestor in enumerate(chain):
            following = chain[index + 1] if index + 1 < len(chain) else plan.target
            if following.kind == IO:
                # The asset's parent folder: write it with just this asset.
                self.folder(ancestor, directory, only_child=following)
                return
            self._ancestor(ancestor, directory, following)
            directory += f"{ancestor.ref}/"
        if plan.target.kind == IO:
            self.asset(plan.target, directory)
        else:
            self.folder(plan.target, directory)

    def _ancestor(self, node: NodeSnap, directory: str, following: NodeSnap) -> None:
        here = f"{directory}{node.ref}/"
        self.directory(here, node.modified)
        self.text(f"{here}{node.ref}.opex", node.modified, folder_sidecar(node, [], [following.ref]))


def write_export(plan: ExportPlan, target: Path, report: Progress, stop: Callable[[], bool]) -> ExportResult:
    """Write the export zip of ``plan`` to ``target``; ``report(bytes_copied)`` as content is copied.

    Raises ``ExportCancelled`` when ``stop()`` turns true, ``OSError`` when a blob is missing or short.
    ``target`` is left half-written on error: callers write to a temporary name.
    """
    with open(target, "wb") as handle:
        with zipfile.ZipFile(handle, "w", allowZip64=True) as out:
            writer = _Writer(plan, out, report, stop)
            writer.run()
        handle.flush()
    return ExportResult(target.stat().st_size, plan.assets, plan.folders, writer.files)
