"""XIP v6 packages: a zip with a ``metadata.xml`` (XIP) describing folders, assets and content objects.

Rules: ``InformationObject``/``StructuralObject``/``ContentObject`` refs are kept; an entity's ``Parent``
is used when it names a folder of the package or of the repository, otherwise the upload's
``structuralobjectreference``; bitstreams are found at ``content/<PhysicalLocation>/<Filename>`` and
their ``FileSize`` and ``Fixities`` checked. An asset whose ref already exists fails. The upload's parent
(``x-amz-meta-structuralobjectreference``) is required unless every top-level entity of the package
names its parent.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from .entities import (
    CO,
    IO,
    SO,
    Bitstream,
    Entity,
    Generation,
    Identifier,
    MetadataFragment,
    RepositoryError,
    Representation,
    check_ref,
)
from .ingest_processing import AssetFailed, PackageProcessor, basename
from .packages import PackageError, PackageTree, XipPackage, parse_xip

if TYPE_CHECKING:
    from .ingest_jobs import IngestJob
    from .ingest_reporting import JobReporter
    from .repository import Repository
    from .s3_store import ObjectStore


class XipProcessor(PackageProcessor):
    """Processes the XIP documents of a package (see the module docstring)."""

    def __init__(
        self,
        job: IngestJob,
        repository: Repository,
        reporter: JobReporter,
        store: ObjectStore,
        ingest_seconds: float,
        documents: list[str],
    ) -> None:
        super().__init__(job, repository, reporter, store, ingest_seconds)
        self.documents = documents

    def process(self, tree: PackageTree) -> None:
        self._check_names(tree)
        packages = [parse_xip(tree.read(path), path) for path in self.documents]
        package_folders = {f.ref for p in packages for f in p.folders}
        header_parent = self.job.parent
        header_checked: str | None = None

        def resolve(declared: str | None, what: str) -> str:
            nonlocal header_checked
            if declared:
                if declared in package_folders:
                    return declared
                try:
                    canonical = check_ref(declared)
                except RepositoryError:
                    canonical = ""
                if canonical and self.repo.get(canonical, SO) is not None:
                    return canonical
                if not header_parent:
                    raise PackageError(f"{what}: parent folder {declared} does not exist")
            if header_checked is None:
                header_checked = self._parent_folder(header_parent, what)
            return header_checked

        plan: list[tuple[XipPackage, str, str, str]] = []  # (package, kind, ref, parent)
        for package in packages:
            for folder in package.folders:
                plan.append((package, SO, folder.ref, resolve(folder.parent, f"folder {folder.ref}")))
            for asset in package.assets:
                plan.append((package, IO, asset.ref, resolve(asset.parent, f"asset {asset.ref}")))
        self._pace(len(plan))
        done_folders: set[str] = set()
        for package, kind, ref, parent in plan:
            if parent in package_folders and parent not in done_folders:
                self.failed += 1
                self.message("Error", "monitor.error.parent.failed", f"{ref}: its parent folder {parent} failed", ref)
            elif kind == SO:
                if self._xip_folder(package, ref, parent):
                    done_folders.add(ref)
            else:
                self._xip_asset(tree, package, ref, parent)
            self.item_done()

    def _xip_folder(self, package: XipPackage, ref: str, parent: str) -> bool:
        source = next(f for f in package.folders if f.ref == ref)
        try:
            folder = self._entity(
                SO,
                source.title,
                parent,
                ref=check_ref(ref),
                description=source.description,
                security_tag=source.security_tag,
                custom_type=source.custom_type,
            )
            self._add_xip_descriptive(package, folder)
            self._insert([folder])
        except RepositoryError as exc:
            self.failed += 1
            self.message("Error", "monitor.error.directory.failed", f"folder {ref}: {exc}", ref)
            return False
        self.message("Info", "monitor.info.directory.created", f"Created folder {folder.ref}", ref, entity=folder)
        return True

    def _add_xip_descriptive(self, package: XipPackage, entity: Entity) -> None:
        for owner, id_type, value in package.identifiers:
            if owner == entity.ref:
                entity.identifiers.append(Identifier(uuid.uuid4().hex, id_type, value))
        for owner, schema, xml in package.metadata:
            if owner == entity.ref:
                entity.metadata.append(MetadataFragment(str(uuid.uuid4()), schema, xml))

    def _xip_asset(self, tree: PackageTree, package: XipPackage, ref: str, parent: str) -> None:
        source = next(a for a in package.assets if a.ref == ref)
        path = package.base if package.base and basename(package.base) == ref else f"{package.base}/{ref}".lstrip("/")
        if self._injected_failure(path):
            return
        stored: list[Bitstream] = []
        try:
            try:
                canonical = check_ref(ref)
            except RepositoryError as exc:
                raise AssetFailed("monitor.error.asset.failed", f"asset {ref}: {exc}", None) from None
            if self.repo.get(canonical) is not None:
                raise AssetFailed(
                    "monitor.error.asset.exists", f"asset {ref}: an entity with this reference already exists", None
                )
            asset = self._entity(
                IO,
                source.title,
                parent,
                ref=canonical,
                description=source.description,
                security_tag=source.security_tag,
                custom_type=source.custom_type,
            )
            self._add_xip_descriptive(package, asset)
            contents: list[Entity] = []
            for xrep in package.representations:
                if xrep.asset != ref:
                    continue
                rep_type = "Access" if xrep.type.lower() == "access" else "Preservation"
                rep = Representation(rep_type, xrep.name)
                for co_ref in xrep.content_objects:
                    content = self._xip_content_object(tree, package, co_ref, asset, stored)
                    rep.content_objects.append(content.ref)
                    contents.append(content)
                asset.representations.append(rep)
            self._insert([asset, *contents])
        except AssetFailed as failure:
            self._discard(stored)
            self.failed += 1
            self.message("Error", failure.code, failure.text, path, failure.params)
            return
        except RepositoryError as exc:
            self._discard(stored)
            self.failed += 1
            self.message("Error", "monitor.error.asset.failed", f"asset {ref}: {exc}", path)
            return
        self.ingested += 1
        self.message(
            "Info", "monitor.info.successful.ingest", f"Successfully ingested asset {asset.ref}", path, entity=asset
        )

    def _xip_content_object(
        self, tree: PackageTree, package: XipPackage, co_ref: str, asset: Entity, stored: list[Bitstream]
    ) -> Entity:
        source = package.content_objects.get(co_ref)
        if source is None:
            raise AssetFailed("monitor.error.xip.invalid", f"content object {co_ref} is not described", None)
        try:
            canonical = check_ref(co_ref)
        except RepositoryError as exc:
            raise AssetFailed("monitor.error.xip.invalid", f"content object {co_ref}: {exc}", None) from None
        if self.repo.get(canonical) is not None:
            raise AssetFailed("monitor.error.asset.exists", f"content object {co_ref} already exists", None)
        generations: list[Generation] = []
        for xgen in package.generations:
            if xgen.content_object != co_ref:
                continue
            bitstreams: list[Bitstream] = []
            for reference in xgen.bitstreams:
                described = package.bitstream_for(reference)
                if described is None:
                    raise AssetFailed("monitor.error.xip.invalid", f"bitstream {reference} is not described", None)
                location = package.content_path(described, tree)
                if location is None:
                    raise AssetFailed(
                        "monitor.error.bitstream.missing", f"bitstream {reference} is not in the package", None
                    )
                bitstream = self._store(tree, location)
                stored.append(bitstream)
                if described.size is not None and described.size != bitstream.size:
                    raise AssetFailed(
                        "monitor.error.bitstream.size",
                        f"{location}: FileSize says {described.size} bytes, the package has {bitstream.size}",
                        {"path": location},
                    )
                problem = self._verify(bitstream, described.fixities, location)
                if problem is not None:
                    raise AssetFailed("monitor.error.fixity.mismatch", problem, {"path": location})
                bitstreams.append(bitstream)
            generations.append(
                Generation(
                    original=xgen.original,
                    active=xgen.active,
                    effective_date=xgen.effective_date,
                    bitstreams=bitstreams,
                )
            )
        now = self.now()
        content = Entity(
            ref=canonical,
            kind=CO,
            title=source.title,
            description=source.description,
            security_tag=source.security_tag or asset.security_tag,
            parent=asset.ref,
            created=now,
            modified=now,
            custom_type=source.custom_type,
            generations=generations,
        )
        self._add_xip_descriptive(package, content)
        return content
