"""Build an OPEX package from a source tree: validate, stage, hash, write sidecars, then manifests, then zip.

Layout produced in ``output_dir``::

    <package_name>/                      staged tree (kept unless keep_staged=False)
        <package_name>.opex              manifest of the top folder (written last of all)
        report.pdf  report.pdf.opex      content file and its sidecar
        images/images.opex               manifest of a sub-folder
        images/scan01.tif  images/scan01.tif.opex
    <package_name>.zip                   the same tree, zipped (if make_zip), top folder inside

Order of work, so that nothing half-done is ever visible:

1. Scan and validate everything (names, metadata, security tags, SourceIDs); one error lists every problem.
2. Stage into a hidden ``.<name>.partial-*`` folder of ``output_dir``: hard links by default (instant,
   no extra space; the staged file *is* the source file, which the builder never writes to), falling back
   to a copy across filesystems; ``stage="copy"`` always copies (use it when the source may change
   while the staged package waits for upload). Links are never followed: a file swapped for a link (or for
   another file) since the scan fails the build (``SourceChangedError``, see ``nofollow``).
3. Hash the *staged* files in parallel (what is hashed is what is shipped) and check their sizes did
   not change since the scan.
4. Write every asset sidecar, then the folder manifests deepest first, the top folder's last; each
   manifest appears atomically (written aside, then renamed).
5. Zip (deterministic, stored, ZIP64, streamed; see ``zipper``), then move the staged folder to its
   final name. Only complete packages ever carry the final names.

With ``keep_staged=False`` (what an ingest uses) steps 2-5 are one pass straight into the zip
(``straight.zip_straight``): nothing is staged and no sidecar or manifest is written to disk (creating 10,000 small
files is slow on a busy disk). Each content file is read once from the source, never through a link (the
file the scan saw, or ``SourceChangedError``), hashed while it is zipped, and its sidecar written into the
zip from memory right after it; the manifests follow, the top folder's last. The zip is the copy: whatever
happens to the source afterwards, the package holds the bytes its sidecars promise (``stage`` changes
nothing here). The zip is byte-for-byte the one the staged path writes for the same source.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import zipfile
from array import array
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from airflow_provider_preservica.exceptions import (
    FixityError,
    MissingSecurityTagError,
    PackageValidationError,
    PackagingError,
    SourceChangedError,
)
from airflow_provider_preservica.files.fixity import (
    CHUNK_SIZE,
    DEFAULT_ALGORITHM,
    Algorithms,
    hash_file,
    hash_files,
    normalize_algorithms,
)
from airflow_provider_preservica.files.nofollow import stage_file
from airflow_provider_preservica.ingest.packaging.descriptive import (
    MetadataResolver,
    MetadataSource,
)
from airflow_provider_preservica.ingest.packaging.model import (
    AssetRecord,
    FolderRecord,
    PackageManifest,
)
from airflow_provider_preservica.ingest.packaging.opex import (
    asset_sidecar,
    manifest_name,
    sidecar_name,
)
from airflow_provider_preservica.ingest.packaging.planning import (
    BuildProgress,
    PlannedEntity,
    asset_record,
    folder_manifests,
    plan_entities,
    with_content_ids,
)
from airflow_provider_preservica.ingest.packaging.source import SourceEntry, SourceTree, as_source_tree
from airflow_provider_preservica.ingest.packaging.source_ids import SourceIdFunc, uuid_source_ids
from airflow_provider_preservica.ingest.packaging.straight import raise_for_unread, vanished_or, zip_straight
from airflow_provider_preservica.ingest.packaging.validation import ValidationOptions, display, scan_source
from airflow_provider_preservica.ingest.packaging.zipper import zip_opex_tree

log = logging.getLogger(__name__)

StageMode = Literal["hardlink", "copy"]
HASH_SLICE = 1024  # files hashed (and their checksums held) at once


def _check_locations(tree: SourceTree, out: Path, final_dir: Path) -> None:
    root = tree.local_path("")
    if root is None:
        return
    root = root.resolve()
    if out.is_relative_to(root):
        raise PackagingError(f"output_dir {out} is inside the source {root}: the package would package itself")
    if final_dir == root or root.is_relative_to(final_dir):
        raise PackagingError(
            f"the package folder {final_dir} would replace the source {root}: choose another output_dir or package_name"
        )


def _stage_file(tree: SourceTree, entry: SourceEntry, target: Path, mode: StageMode) -> str:
    root = tree.local_path("")
    if root is not None:  # never through a link: the file the scan saw, or SourceChangedError
        return stage_file(root, entry.path, target, link=mode == "hardlink", identity=entry.identity)
    with tree.open(entry.path) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK_SIZE)
    return "copied"


def _offset(progress: BuildProgress | None, phase: str, base: int, total: int) -> Callable[[int, int], None] | None:
    """A slice's ``progress(done, total)`` as the whole phase's: ``base`` bytes were done before the slice."""
    if progress is None:
        return None
    return lambda done, _slice_total: progress(phase, base + done, total)


def _write_atomically(target: Path, data: bytes) -> None:
    partial = target.with_name(f".{target.name}.partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)


def _stage_and_zip(
    tree: SourceTree,
    planned_folders: list[PlannedEntity],
    planned_files: list[PlannedEntity],
    out: Path,
    name: str,
    *,
    stage: StageMode,
    algorithms: tuple[str, ...],
    workers: int | None,
    compression: int,
    fixity_identifier: str | None,
    progress: BuildProgress | None,
    make_zip: bool,
    top_folder: bool,
) -> tuple[Path | None, Path | None, list[AssetRecord]]:
    """Steps 2-5 for a kept staged tree: stage, hash, sidecars, manifests, zip; ``(zip, staged folder, assets)``."""
    final_dir = out / name
    final_zip = out / f"{name}.zip"
    work = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=out))
    staged = work / name
    try:
        # 2. stage
        staged.mkdir()
        for folder in planned_folders:
            if folder.path:
                (staged / folder.path).mkdir()
        total = sum(e.entry.size for e in planned_files)
        done = 0
        how: dict[str, int] = defaultdict(int)
        for item in planned_files:
            try:
                how[_stage_file(tree, item.entry, staged / item.path, stage)] += 1
            except (FileNotFoundError, SourceChangedError):
                gone = vanished_or(tree, item.path)
                if gone is None:
                    raise  # replaced (by a link or another file), not gone: SourceChangedError says which
                raise gone from None  # deleted or moved since the scan
            done += item.entry.size
            if progress is not None:
                progress("stage", done, total)
        log.info("Staged %d file(s) (%s) in %s", len(planned_files), dict(how), staged)

        # 3 + 4a. hash what will be shipped, a slice at a time, and write each slice's sidecars: only a slice's
        # checksums are held at once, never the whole delivery's (flat memory for 100,000 files)
        sidecar_sizes = array("q", bytes(8 * len(planned_files)))  # by position in planned_files
        assets: list[AssetRecord] = []
        changed: list[str] = []
        unreadable: list[tuple[str, str]] = []
        hashed_before = 0
        for start in range(0, len(planned_files), HASH_SLICE):
            chunk = planned_files[start : start + HASH_SLICE]
            try:
                hashed = hash_files(
                    [staged / e.path for e in chunk],
                    algorithms,
                    workers=workers,
                    progress=_offset(progress, "hash", hashed_before, total),
                )
            except FixityError as exc:  # named with every other unreadable file once all are tried
                reasons = str(exc).splitlines()[1:]  # "  - <path>: <why>", in the order of exc.paths
                for path, line in zip(exc.paths, reasons, strict=True):
                    unreadable.append((display(Path(path).relative_to(staged).as_posix()), line[len(path) + 6 :]))
                continue
            finally:
                hashed_before += sum(e.entry.size for e in chunk)
            for index, item in enumerate(chunk, start):
                result = hashed.pop(staged / item.path)
                if result.size != item.entry.size:
                    changed.append(f"{display(item.path)} ({item.entry.size} -> {result.size} bytes)")
                    continue
                data = asset_sidecar(with_content_ids(item.props, result.records, fixity_identifier), result.records)
                target = staged / item.path
                target.with_name(sidecar_name(target.name)).write_bytes(data)
                sidecar_sizes[index] = len(data)
                assets.append(asset_record(item, result))
        raise_for_unread(unreadable, changed, ", or stage with stage='copy'")

        # 4b. manifests, deepest first, the top folder's last
        for folder, document in folder_manifests(planned_folders, planned_files, sidecar_sizes, top_folder=top_folder):
            directory = staged / folder.path if folder.path else staged
            _write_atomically(directory / manifest_name(directory.name), document)

        # 5. zip, then move into place
        zip_path: Path | None = None
        if make_zip:
            zip_opex_tree(  # replaces an older zip atomically (overwrite=True)
                staged,
                final_zip,
                compression=compression,
                top_folder=top_folder,
                progress=(lambda d, t: progress("zip", d, t)) if progress is not None else None,
            )
            zip_path = final_zip
        if os.path.lexists(final_dir):
            shutil.rmtree(final_dir)
        os.replace(staged, final_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return zip_path, final_dir, assets


def build_opex_package(
    source: str | os.PathLike[str] | SourceTree,
    output_dir: str | os.PathLike[str],
    *,
    security_tag: str | None,
    package_name: str | None = None,
    fixity: Algorithms = DEFAULT_ALGORITHM,
    metadata: MetadataSource | None = None,
    source_id: SourceIdFunc | None = None,
    source_id_namespace: str | None = None,
    validation: ValidationOptions | None = None,
    stage: StageMode = "hardlink",
    make_zip: bool = True,
    keep_staged: bool = True,
    compression: int = zipfile.ZIP_STORED,
    workers: int | None = None,
    overwrite: bool = False,
    progress: BuildProgress | None = None,
    fixity_identifier: str | None = None,
    top_folder: bool = True,
    zip_checksum: bool = True,
) -> PackageManifest:
    """Build an OPEX package from ``source`` (a local folder or any ``SourceTree``) into ``output_dir``.

    ``security_tag`` has no default on purpose: pass the tag every folder and asset gets (``"open"``,
    ``"closed"``, a custom tag) or ``None`` to require one per entity from ``metadata``; any entity left
    without a tag fails the build (``MissingSecurityTagError``) rather than silently becoming ``open``.

    ``metadata`` is a mapping keyed by relative path (``""`` = top folder; see ``load_metadata_csv``) or a
    callback ``(relative_path, is_folder) -> EntityMetadata | dict | None``. ``source_id`` overrides the
    default SourceIDs (a UUIDv5 of ``source_id_namespace`` — default the package name — and the relative
    path). ``fixity`` is one algorithm or several (``SHA-256`` default; ``SHA-1``, ``MD5``, ``SHA-512``).
    ``fixity_identifier``: also give every asset an identifier of that type, ``<algorithm>:<checksum>`` per
    algorithm, so a later run can compare content from a search hit without reading the bitstream.

    ``top_folder=False`` leaves the top folder out of the zip: its files and sub-folders sit at the zip's
    root, so Preservica places them straight into the parent folder of the ingest instead of into a new
    folder named after the source (the top folder's title, tag and metadata are then not used).

    ``keep_staged=False`` writes only the zip, straight from the source (see the module's docstring).
    ``zip_checksum=False`` leaves ``zip_sha256`` out (it reads the whole zip again; an ingest does not use it).

    Raises ``PackageValidationError`` (every problem at once; ``MissingSecurityTagError`` if a tag is
    missing) before anything is written, ``FixityError`` if a file changes meanwhile, ``MissingSourceFilesError``
    if one disappears between the scan and its staging (or zipping).
    """
    started = time.monotonic()
    if not make_zip and not keep_staged:
        raise ValueError("make_zip=False with keep_staged=False would build nothing")
    if stage not in ("hardlink", "copy"):
        raise ValueError(f"stage must be 'hardlink' or 'copy', not {stage!r}")
    algorithms = normalize_algorithms(fixity)
    tree = as_source_tree(source)
    name = package_name or tree.name
    out = Path(output_dir).resolve()
    final_dir = out / name
    final_zip = out / f"{name}.zip"
    _check_locations(tree, out, final_dir)

    # 1. everything that can be wrong, found at once
    scan = scan_source(tree, validation, top_name=name)
    folders = list(scan.folders)
    files = list(scan.files)
    planned, plan_issues = plan_entities(
        folders + files,
        package_name=name,
        security_tag=security_tag,
        resolver=MetadataResolver(metadata),
        source_id=source_id or uuid_source_ids(source_id_namespace or name),
    )
    issues = scan.errors + plan_issues
    if issues:
        if any(i.code == "missing-security-tag" for i in issues):
            raise MissingSecurityTagError(issues)
        raise PackageValidationError(issues)
    existing = [p for p in (final_dir, final_zip if make_zip else None) if p is not None and os.path.lexists(p)]
    if existing and not overwrite:
        raise PackagingError(f"{', '.join(map(str, existing))} already exist(s); pass overwrite=True to replace")
    planned_folders = [e for e in planned if e.entry.kind == "dir"]
    planned_files = [e for e in planned if e.entry.kind != "dir"]

    out.mkdir(parents=True, exist_ok=True)
    staged_path: Path | None = None
    zip_path: Path | None = None
    if not keep_staged:  # only the zip: written straight from the source, nothing staged
        assets = zip_straight(
            tree,
            planned_folders,
            planned_files,
            final_zip,
            top=name if top_folder else "",
            algorithms=algorithms,
            compression=compression,
            fixity_identifier=fixity_identifier,
            progress=progress,
        )
        zip_path = final_zip
    else:
        zip_path, staged_path, assets = _stage_and_zip(
            tree,
            planned_folders,
            planned_files,
            out,
            name,
            stage=stage,
            algorithms=algorithms,
            workers=workers,
            compression=compression,
            fixity_identifier=fixity_identifier,
            progress=progress,
            make_zip=make_zip,
            top_folder=top_folder,
        )
    zip_size = zip_path.stat().st_size if zip_path else None
    zip_sha256 = hash_file(zip_path).value("SHA-256") if zip_path and zip_checksum else None

    manifest = PackageManifest(
        package_name=name,
        package_path=str(zip_path or staged_path),
        staged_path=str(staged_path) if staged_path else None,
        zip_path=str(zip_path) if zip_path else None,
        zip_size=zip_size,
        zip_sha256=zip_sha256,
        fixity_algorithms=list(algorithms),
        assets=sorted(assets, key=lambda a: a.path),
        folders=[
            FolderRecord(f.path, f.props.source_id, f.props.title, f.props.security_tag)
            for f in sorted(planned_folders, key=lambda e: e.path)
        ],
        excluded=list(scan.excluded),
        warnings=list(scan.warnings),
        total_bytes=sum(a.size for a in assets),
    )
    log.info(
        "Built OPEX package %s: %d asset(s), %d folder(s), %d bytes, %d warning(s), %d excluded, in %.1f s",
        manifest.package_path,
        manifest.asset_count,
        len(manifest.folders),
        manifest.total_bytes,
        len(manifest.warnings),
        len(manifest.excluded),
        time.monotonic() - started,
    )
    return manifest
