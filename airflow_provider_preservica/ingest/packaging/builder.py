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
(``_zip_straight``): nothing is staged and no sidecar or manifest is written to disk (creating 10,000 small
files is slow on a busy disk). Each content file is read once from the source, never through a link (the
file the scan saw, or ``SourceChangedError``), hashed while it is zipped, and its sidecar written into the
zip from memory right after it; the manifests follow, the top folder's last. The zip is the copy: whatever
happens to the source afterwards, the package holds the bytes its sidecars promise (``stage`` changes
nothing here). The zip is byte-for-byte the one the staged path writes for the same source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
import time
import zipfile
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from airflow_provider_preservica.exceptions import (
    FixityError,
    MissingSecurityTagError,
    MissingSourceFilesError,
    PackageValidationError,
    PackagingError,
    SourceChangedError,
)
from airflow_provider_preservica.files.fixity import (
    ALGORITHMS,
    CHUNK_SIZE,
    DEFAULT_ALGORITHM,
    Algorithms,
    FileFixity,
    FixityRecord,
    hash_file,
    hash_files,
    normalize_algorithms,
)
from airflow_provider_preservica.files.nofollow import open_file, stage_file
from airflow_provider_preservica.ingest.packaging.descriptive import (
    EntityMetadata,
    MetadataResolver,
    MetadataSource,
    check_fragments,
)
from airflow_provider_preservica.ingest.packaging.model import (
    AssetRecord,
    FolderRecord,
    PackageManifest,
    ValidationIssue,
)
from airflow_provider_preservica.ingest.packaging.opex import (
    ManifestFile,
    OpexProperties,
    asset_sidecar,
    folder_manifest,
    manifest_name,
    sidecar_name,
)
from airflow_provider_preservica.ingest.packaging.source import SourceEntry, SourceTree, as_source_tree
from airflow_provider_preservica.ingest.packaging.source_ids import SourceIdFunc, uuid_source_ids
from airflow_provider_preservica.ingest.packaging.validation import ValidationOptions, display, scan_source
from airflow_provider_preservica.ingest.packaging.zipper import ZipStream, zip_opex_tree

log = logging.getLogger(__name__)

StageMode = Literal["hardlink", "copy"]
HASH_SLICE = 1024  # files hashed (and their checksums held) at once
#: ``progress(phase, done, total)`` with phase ``"stage"``, ``"hash"`` or ``"zip"``; done/total in bytes.
BuildProgress = Callable[[str, int, int], None]


@dataclass(slots=True)
class _Entity:
    entry: SourceEntry
    props: OpexProperties

    @property
    def path(self) -> str:
        return self.entry.path


def _missing_tag(path: str, is_folder: bool) -> ValidationIssue:
    what = "folder" if is_folder else "asset"
    return ValidationIssue(
        path=path or "<source root>",
        code="missing-security-tag",
        problem=f"no security tag for this {what}: Preservica would silently apply 'open'",
        fix="pass security_tag= (e.g. 'open' or 'closed', chosen deliberately) or give one in its metadata",
    )


def _plan(
    entries: list[SourceEntry],
    *,
    package_name: str,
    security_tag: str | None,
    resolver: MetadataResolver,
    source_id: SourceIdFunc,
) -> tuple[list[_Entity], list[ValidationIssue]]:
    """Resolve title, tag, SourceID, identifiers and descriptive metadata of every entity."""
    planned: list[_Entity] = []
    issues: list[ValidationIssue] = []
    seen_ids: dict[str, str] = {}
    for entry in entries:
        is_folder = entry.kind == "dir"
        shown = display(entry.path)
        try:
            meta = resolver.lookup(entry.path, is_folder)
        except Exception as exc:  # a user callback: report it with the path, together with the rest
            issues.append(
                ValidationIssue(
                    shown, "metadata-callback", f"the metadata callback failed: {exc!r}", "fix the callback"
                )
            )
            meta = EntityMetadata()
        tag = (meta.security_tag or security_tag or "").strip()
        if not tag:
            issues.append(_missing_tag(shown, is_folder))
        sid = (meta.source_id or source_id(entry.path, is_folder) or "").strip()
        if not sid:
            issues.append(ValidationIssue(shown, "empty-source-id", "the SourceID is empty", "return a SourceID"))
        elif sid in seen_ids:
            issues.append(
                ValidationIssue(
                    shown,
                    "duplicate-source-id",
                    f"SourceID {sid!r} is also used by {seen_ids[sid] or '<source root>'!r}",
                    "SourceIDs must be unique: fix the source_id callback or the metadata",
                )
            )
        else:
            seen_ids[sid] = shown
        fragments, fragment_issues = check_fragments(shown, meta.descriptive_metadata)
        issues.extend(fragment_issues)
        for kind, value in meta.identifiers:
            if not kind.strip() or not value.strip():
                issues.append(
                    ValidationIssue(
                        shown, "bad-identifier", f"identifier {kind!r}={value!r} is blank", "give a type and a value"
                    )
                )
        default_title = package_name if not entry.path else entry.name
        props = OpexProperties(
            source_id=sid,
            title=meta.title or default_title,
            security_tag=tag,
            description=meta.description,
            identifiers=tuple(meta.identifiers),
            descriptive_metadata=tuple(fragments),
        )
        planned.append(_Entity(entry, props))
    issues.extend(resolver.unmatched())
    return planned, issues


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


def _with_content_ids(props: OpexProperties, records: tuple[FixityRecord, ...], kind: str | None) -> OpexProperties:
    """``props`` plus an identifier ``<algorithm>:<checksum>`` per algorithm (``fixity_identifier``), if asked."""
    if not kind:
        return props
    content_ids = tuple((kind, f"{r.algorithm}:{r.value}") for r in records)
    return dataclasses.replace(props, identifiers=props.identifiers + content_ids)


def _asset(item: _Entity, result: FileFixity) -> AssetRecord:
    props = item.props
    return AssetRecord(item.path, props.source_id, props.title, props.security_tag, result.size, result.records)


def _manifests(
    planned_folders: list[_Entity], planned_files: list[_Entity], sidecar_sizes: array[int], *, top_folder: bool
) -> Iterator[tuple[_Entity, bytes]]:
    """Every folder's manifest, deepest first, the top folder's last (none for it without ``top_folder``)."""
    children_files: dict[str, list[int]] = defaultdict(list)  # positions in planned_files
    children_dirs: dict[str, list[str]] = defaultdict(list)
    for index, item in enumerate(planned_files):
        children_files[item.entry.parent].append(index)
    for folder in planned_folders:
        if folder.path:
            children_dirs[folder.entry.parent].append(folder.entry.name)
    for folder in sorted(planned_folders, key=lambda e: (-e.entry.depth, e.path)):
        if not folder.path and not top_folder:
            continue  # no top folder in the package: its manifest would describe nothing
        manifest_files: list[ManifestFile] = []
        for index in sorted(children_files.pop(folder.path, []), key=lambda i: planned_files[i].entry.name):
            entry = planned_files[index].entry
            manifest_files.append(ManifestFile(entry.name, "content", entry.size))
            manifest_files.append(ManifestFile(sidecar_name(entry.name), "metadata", sidecar_sizes[index]))
        yield folder, folder_manifest(folder.props, manifest_files, sorted(children_dirs[folder.path]))


def _open_source(tree: SourceTree, entry: SourceEntry) -> BinaryIO:
    """A source file for reading, never through a link: the file the scan saw, or ``SourceChangedError``."""
    root = tree.local_path("")
    if root is not None:
        return open_file(root, entry.path, identity=entry.identity)
    return tree.open(entry.path)


def _vanished_or(tree: SourceTree, path: str) -> MissingSourceFilesError | None:
    """``MissingSourceFilesError`` if the file at ``path`` is gone (deleted or moved since the scan); ``None`` if
    something is there (a link or another file: the ``SourceChangedError`` caught says which)."""
    local = tree.local_path(path)
    if local is None or os.path.lexists(local):
        return None
    return MissingSourceFilesError([display(path)])


def _zip_straight(
    tree: SourceTree,
    planned_folders: list[_Entity],
    planned_files: list[_Entity],
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
                data = asset_sidecar(_with_content_ids(item.props, result.records, fixity_identifier), result.records)
                archive.data(sidecar_name(prefix + item.path), data)
                sidecar_sizes[index] = len(data)
                assets.append(_asset(item, result))
                continue
            try:
                source = _open_source(tree, item.entry)
            except (FileNotFoundError, SourceChangedError):
                gone = _vanished_or(tree, item.path)
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
        _raise_for(unreadable, changed, "")
        for folder, document in _manifests(planned_folders, planned_files, sidecar_sizes, top_folder=bool(top)):
            directory = prefix + folder.path if folder.path else top
            archive.data(f"{directory}/{manifest_name(directory.rsplit('/', 1)[-1])}", document)
    return assets


def _raise_for(unreadable: list[tuple[str, str]], changed: list[str], advice: str) -> None:
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


def _stage_and_zip(
    tree: SourceTree,
    planned_folders: list[_Entity],
    planned_files: list[_Entity],
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
                gone = _vanished_or(tree, item.path)
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
                data = asset_sidecar(_with_content_ids(item.props, result.records, fixity_identifier), result.records)
                target = staged / item.path
                target.with_name(sidecar_name(target.name)).write_bytes(data)
                sidecar_sizes[index] = len(data)
                assets.append(_asset(item, result))
        _raise_for(unreadable, changed, ", or stage with stage='copy'")

        # 4b. manifests, deepest first, the top folder's last
        for folder, document in _manifests(planned_folders, planned_files, sidecar_sizes, top_folder=top_folder):
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
    planned, plan_issues = _plan(
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
        assets = _zip_straight(
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
