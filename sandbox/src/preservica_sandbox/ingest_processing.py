"""What every package processor shares: opening the package, pacing, building and storing entities.

``open_package(job, store)`` gives the job's file tree: the uploaded zip, or the objects under the OPEX
container of the source bucket (``opex/<container>``; the incremental workflow). A ``PackageProcessor``
(``ingest_opex.OpexProcessor``, ``ingest_xip.XipProcessor``) turns one tree into entities:

- the package is checked as a whole first (no ``: < > | " * \\`` in names, a parent folder that
  exists; ``PackageError`` ends the job ``FAILED`` with nothing created), then each folder and asset is
  processed in turn, the remaining 80 % of ``ingest_seconds`` spread over them (``item_done``);
- a bitstream is stored (``blob_store``) and its fixities checked against what the package declares;
  an item that fails raises ``AssetFailed`` and nothing of it stays;
- incremental matching: an index per parent folder of the children's SourceIDs and titles;
- the end state (``run``): ``COMPLETED`` when no item failed; ``FAILED`` when items failed and none was
  ingested or skipped; ``FINISHED_MIXED_OUTCOME`` otherwise. Entities are in the repository (and so in
  search) before the state says so.
"""

from __future__ import annotations

import contextlib
import posixpath
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import progress as P
from .entities import CO, SO, Bitstream, Entity, Identifier, MetadataFragment, RepositoryError, check_ref, iso_timestamp
from .ingest_jobs import OPEX_CONTAINER_PARAMETER, PENDING_SHARE, IngestJob, source_bucket
from .packages import ILLEGAL_NAME_CHARACTERS, FileTree, OpexDocument, PackageError, PackageTree, ZipTree, fixity_name

if TYPE_CHECKING:
    from .ingest_reporting import JobReporter
    from .repository import Repository
    from .s3_store import ObjectStore

SOURCE_ID_TYPE = "SourceID"


class AssetFailed(Exception):
    """One folder or asset of a package cannot be ingested; ``code``/``text``/``params`` become its monitor message."""

    def __init__(self, code: str, text: str, params: dict[str, Any] | None) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.params = params


def basename(path: str) -> str:
    return posixpath.basename(path)


def open_package(job: IngestJob, store: ObjectStore) -> PackageTree:
    """The file tree of the job's package: the uploaded zip, or the objects of its OPEX container."""
    if job.kind == "upload":
        assert job.source is not None
        return ZipTree(job.source.open())
    if not job.container:
        raise PackageError(f"the workflow needs the parameter {OPEX_CONTAINER_PARAMETER} (e.g. opex/<container>)")
    bucket = source_bucket(job.tenant)
    prefix = job.container + "/"
    objects = store.objects(bucket, prefix)
    if not objects:
        raise PackageError(f"nothing under s3://{bucket}/{prefix}: the OPEX container is empty or missing")
    by_path = {o.key[len(prefix) :]: o for o in objects}
    job.size = sum(o.size for o in objects)
    return FileTree({name: (o.size, None) for name, o in by_path.items()}, opener=lambda p: by_path[p].open())


class PackageProcessor:
    """Processes one job's package into the repository; subclasses know the format (``process``)."""

    def __init__(
        self,
        job: IngestJob,
        repository: Repository,
        reporter: JobReporter,
        store: ObjectStore,
        ingest_seconds: float,
    ) -> None:
        self.job = job
        self.repo = repository
        self.reporter = reporter
        self.store = store
        self.ingest_seconds = ingest_seconds
        self.clock = reporter.clock
        self.ingested = 0
        self.failed = 0
        self.skipped = 0
        self.processed = 0
        self.total = 0
        self.step = 0.0
        self._cleanup: list[Path] = []
        self._trees: list[PackageTree] = []
        self._children_index: dict[str | None, dict[tuple[str, str, str], str]] = {}
        self._fault_pending = job.fault is not None and job.fault.outcome == P.MIXED

    def process(self, tree: PackageTree) -> None:
        raise NotImplementedError

    def run(self, tree: PackageTree) -> str:
        """Process ``tree`` (closed afterwards, with every tree and temporary file opened meanwhile); the end status."""
        self._trees.append(tree)
        try:
            self.process(tree)
        finally:
            for opened in self._trees:
                opened.close()
            for path in self._cleanup:
                with contextlib.suppress(OSError):
                    path.unlink()
        if self._fault_pending is False and self.job.fault is not None and self.job.fault.outcome == P.MIXED:
            return P.MIXED
        if self.failed == 0:
            return P.COMPLETED
        if self.ingested == 0 and self.skipped == 0:
            return P.FAILED
        return P.MIXED

    # ----------------------------------------------------------------- helpers
    def message(self, *args: Any, **kwargs: Any) -> None:
        self.reporter.message(self.job, *args, **kwargs)

    def item_done(self) -> None:
        self.processed += 1
        self.reporter.count(self.job, self.processed, self.total)
        self.job.wait(self.step)

    def now(self) -> str:
        return iso_timestamp(self.clock())

    def _pace(self, items: int) -> None:
        self.total = items
        self.step = self.ingest_seconds * (1 - PENDING_SHARE) / max(1, items)
        self.reporter.count(self.job, 0, items)

    def _check_names(self, tree: PackageTree) -> None:
        bad = sorted(
            path
            for path in [*tree.files, *tree.dirs]
            if path and any(c in ILLEGAL_NAME_CHARACTERS for c in basename(path))
        )
        if bad:
            shown = ", ".join(bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
            raise PackageError(
                f"illegal characters ({' '.join(sorted(ILLEGAL_NAME_CHARACTERS))}) in {len(bad)} name(s): {shown}"
            )

    def _parent_folder(self, ref: str | None, what: str) -> str:
        if not ref:
            raise PackageError(
                f"no parent folder for {what}: upload with the metadata x-amz-meta-structuralobjectreference"
            )
        try:
            canonical = check_ref(ref)
        except RepositoryError:
            raise PackageError(f"parent folder {ref!r} is not a valid reference") from None
        if self.repo.get(canonical, SO) is None:
            raise PackageError(f"parent folder {canonical} does not exist")
        return canonical

    # ----------------------------------------------------------------- matching existing entities
    def _index(self, parent: str | None) -> dict[tuple[str, str, str], str]:
        """(kind, "sid"|"title", value) -> ref of the children of ``parent`` (built once per folder)."""
        index = self._children_index.get(parent)
        if index is None:
            index = {}
            with self.repo.lock:
                refs = self.repo.children(parent) if parent is None or self.repo.get(parent, SO) else []
                for ref in refs:
                    entity = self.repo.get(ref)
                    if entity is None:
                        continue
                    if entity.source_id:
                        index.setdefault((entity.kind, "sid", entity.source_id), ref)
                    index.setdefault((entity.kind, "title", entity.title), ref)
            self._children_index[parent] = index
        return index

    def _match(self, kind: str, parent: str | None, source_id: str | None, title: str) -> tuple[str, str] | None:
        index = self._index(parent)
        if source_id:
            ref = index.get((kind, "sid", source_id))
            return (ref, f"Source ID {source_id}") if ref else None
        ref = index.get((kind, "title", title))
        return (ref, f"Title {title}") if ref else None

    def _remember(self, entity: Entity) -> None:
        index = self._index(entity.parent)
        if entity.source_id:
            index.setdefault((entity.kind, "sid", entity.source_id), entity.ref)
        index.setdefault((entity.kind, "title", entity.title), entity.ref)

    # ----------------------------------------------------------------- building entities
    def _entity(
        self,
        kind: str,
        title: str,
        parent: str | None,
        doc: OpexDocument | None = None,
        ref: str | None = None,
        description: str = "",
        security_tag: str = "open",
        custom_type: str | None = None,
    ) -> Entity:
        now = self.now()
        source_id = doc.source_id if doc else None
        entity = Entity(
            ref=ref or str(uuid.uuid4()),
            kind=kind,
            title=title,
            description=(doc.description if doc and doc.description else description),
            security_tag=(doc.security_tag if doc and doc.security_tag else security_tag),
            parent=parent,
            created=now,
            modified=now,
            source_id=source_id,
            custom_type=custom_type,
        )
        if doc is not None:
            if source_id:
                entity.identifiers.append(Identifier(uuid.uuid4().hex, SOURCE_ID_TYPE, source_id))
            entity.identifiers.extend(Identifier(uuid.uuid4().hex, t, v) for t, v in doc.identifiers)
            entity.metadata.extend(MetadataFragment(str(uuid.uuid4()), s, x) for s, x in doc.fragments)
        return entity

    def _store(self, tree: PackageTree, path: str) -> Bitstream:
        with tree.open(path) as handle:
            return self.repo.store_blob(handle, basename(path))

    def _discard(self, bitstreams: list[Bitstream]) -> None:
        for bitstream in bitstreams:
            location = self.repo.blob_path(bitstream)
            if location is not None:
                with contextlib.suppress(OSError):
                    location.unlink()

    def _verify(self, bitstream: Bitstream, expected: list[tuple[str, str]], path: str) -> str | None:
        """The first fixity mismatch as a message, or ``None``; unknown algorithms are warned about."""
        for algorithm, value in expected:
            name = fixity_name(algorithm)
            if name is None:
                self.message(
                    "Warning",
                    "monitor.warning.fixity.unsupported",
                    f"{path}: fixity algorithm {algorithm!r} is not supported; not checked",
                    path,
                    {"algorithm": algorithm},
                )
                continue
            actual = bitstream.fixities.get(name, "")
            if actual.lower() != value.strip().lower():
                return f"{path}: {algorithm} fixity mismatch: the package says {value}, the content has {actual}"
        return None

    def _insert(self, entities: list[Entity]) -> None:
        self.repo.insert_ingested(entities)
        for entity in entities:
            if entity.kind != CO:
                self._remember(entity)
        with self.reporter.lock:
            self.job.created_refs.extend(e.ref for e in entities if e.kind != CO)

    def _injected_failure(self, path: str) -> bool:
        if not self._fault_pending:
            return False
        self._fault_pending = False
        fault = self.job.fault
        text = (fault.message if fault and fault.message else "sandbox fault: asset failed") + f" ({path})"
        self.message("Error", "monitor.error.asset.failed", text, path)
        self.failed += 1
        return True
