"""OPEX packages: a zip (or an OPEX container of the source bucket) of folders, files and ``.opex`` sidecars.

Rules: a directory is a folder (manifest ``<dir>/<dir>.opex``: SourceID, title, description, security
tag, identifiers, descriptive metadata; a manifest's ``Files``/``Folders`` must all be present — a listed
child that is missing is an error); a file is an asset with one content object, one generation and one
bitstream (sidecar ``<file>.opex``: the same properties plus ``Fixities``, each checked against the bytes
— a mismatch fails that asset, nothing of it is stored); a directory ending ``.pax`` or with a sibling
``<dir>.opex`` is a PAX asset folder (``Representation_<Type>/[<co>/]<file>``, fixities with ``path``);
``<x>.pax.zip`` is a zipped PAX. A zip with no ``.opex`` at all is a plain folder tree, ingested as OPEX
without sidecars. Names with ``?`` or non-ASCII characters are skipped without a message, as Preservica
does. Incremental matching: a folder whose SourceID (or, without one, title) matches a folder under the
same parent is reused (Info ``monitor.info.directory.skip``); an asset whose SourceID (or, without one,
title) matches an asset under the same parent is skipped with a Warning (``monitor.warning.file.skip``).
The SourceID is kept on the entity and as an identifier of type ``SourceID``.
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass

from .entities import CO, IO, SO, Bitstream, Entity, Generation, RepositoryError, Representation
from .ingest_processing import AssetFailed, PackageProcessor, basename
from .packages import OPEX_SUFFIX, OpexDocument, PackageError, PackageTree, ZipTree, parse_opex, silently_skipped


@dataclass
class _Item:
    kind: str  # folder | asset | pax | paxzip | missing
    path: str
    doc: OpexDocument | None = None
    sidecar: str | None = None


class OpexProcessor(PackageProcessor):
    """Processes an OPEX package (see the module docstring)."""

    def _plan_opex(self, tree: PackageTree, root_manifest: str | None) -> tuple[list[_Item], dict[str, OpexDocument]]:
        docs: dict[str, OpexDocument] = {}
        problems: list[str] = []
        for path in sorted(tree.files):
            if path.lower().endswith(OPEX_SUFFIX) and not silently_skipped(basename(path)):
                try:
                    docs[path] = parse_opex(tree.read(path), path)
                except PackageError as exc:
                    problems.append(str(exc))
        if problems:
            raise PackageError("; ".join(problems))
        items: list[_Item] = []

        def manifest_of(directory: str) -> str | None:
            if not directory:
                return root_manifest
            return f"{directory}/{basename(directory)}{OPEX_SUFFIX}"

        def walk(directory: str) -> None:
            subdirs, files = tree.children(directory)
            manifest = manifest_of(directory)
            present: set[str] = set()
            for sub in subdirs:
                name = basename(sub)
                if silently_skipped(name):
                    continue
                present.add(name)
                sidecar = sub + OPEX_SUFFIX
                if name.lower().endswith(".pax") or sidecar in tree.files:
                    items.append(_Item("pax", sub, docs.get(sidecar), sidecar if sidecar in tree.files else None))
                    present.add(name + OPEX_SUFFIX)
                    continue
                sub_manifest = manifest_of(sub)
                items.append(_Item("folder", sub, docs.get(sub_manifest or ""), sub_manifest))
                walk(sub)
            for path in files:
                name = basename(path)
                if silently_skipped(name):
                    continue
                present.add(name)
                if name.lower().endswith(OPEX_SUFFIX):
                    if path == manifest or path[: -len(OPEX_SUFFIX)] in tree.files:
                        continue
                    if path[: -len(OPEX_SUFFIX)] in tree.dirs:
                        continue
                    self.message(
                        "Warning",
                        "monitor.warning.opex.orphan",
                        f"{path}: OPEX metadata for nothing in the package; ignored",
                        path,
                    )
                    continue
                sidecar = path + OPEX_SUFFIX
                kind = "paxzip" if name.lower().endswith(".pax.zip") else "asset"
                items.append(_Item(kind, path, docs.get(sidecar), sidecar if sidecar in tree.files else None))
            doc = docs.get(manifest or "")
            if doc is not None and (doc.manifest_files is not None or doc.manifest_folders is not None):
                listed = [e.name for e in doc.manifest_files or []] + list(doc.manifest_folders or [])
                for name in listed:
                    if name and name not in present:
                        child = f"{directory}/{name}" if directory else name
                        items.append(_Item("missing", child, None, manifest))

        walk("")
        return items, docs

    def process(self, tree: PackageTree) -> None:
        job = self.job
        self._check_names(tree)
        root_manifest = None
        if job.kind == "opex-incremental" and job.container:
            candidate = basename(job.container) + OPEX_SUFFIX
            root_manifest = candidate if candidate in tree.files else None
        items, docs = self._plan_opex(tree, root_manifest)
        if job.kind == "upload" or job.parent:
            root_parent: str | None = self._parent_folder(job.parent, "the OPEX package")
        else:
            root_parent = None  # the incremental workflow may create top-level folders at the root
        folder_refs: dict[str, str | None] = {"": root_parent}
        self._pace(len(items))
        for item in items:
            parent_dir = posixpath.dirname(item.path)
            if parent_dir not in folder_refs:  # its folder failed: nothing below it can be placed
                self.failed += 1
                self.message(
                    "Error",
                    "monitor.error.parent.failed",
                    f"{item.path}: not ingested because its folder failed",
                    item.path,
                )
            elif item.kind == "folder":
                ref = self._opex_folder(item, folder_refs[parent_dir])
                if ref is not None:
                    folder_refs[item.path] = ref
            elif item.kind == "missing":
                self.failed += 1
                self.message(
                    "Error",
                    "monitor.error.manifest.missing",
                    f"{item.path}: listed in the manifest {item.sidecar} but not in the package",
                    item.path,
                )
            else:
                self._opex_asset(tree, item, folder_refs[parent_dir], docs)
            self.item_done()

    def _opex_folder(self, item: _Item, parent: str | None) -> str | None:
        doc = item.doc
        title = (doc.title if doc and doc.title else None) or basename(item.path)
        source_id = doc.source_id if doc else None
        matched = self._match(SO, parent, source_id, title)
        if matched is not None:
            ref, how = matched
            existing = self.repo.get(ref)
            self.message(
                "Info",
                "monitor.info.directory.skip",
                f"Matched directory {item.path} to existing SO {ref} via {how}",
                item.path,
                {"matchText": how},
                entity=existing,
                source_id=source_id,
            )
            return ref
        folder = self._entity(SO, title, parent, doc)
        try:
            self._insert([folder])
        except RepositoryError as exc:
            self.failed += 1
            self.message("Error", "monitor.error.directory.failed", f"{item.path}: {exc}", item.path)
            return None
        self.message(
            "Info",
            "monitor.info.directory.created",
            f"Created folder {folder.ref} for directory {item.path}",
            item.path,
            entity=folder,
        )
        return folder.ref

    def _skip_existing(self, item: _Item, parent: str, title: str, source_id: str | None) -> bool:
        matched = self._match(IO, parent, source_id, title)
        if matched is None:
            return False
        ref, how = matched
        self.skipped += 1
        self.message(
            "Warning",
            "monitor.warning.file.skip",
            f"Matched file {item.path} to existing IO {ref} via {how}; not ingested again",
            item.path,
            {"matchText": how},
            entity=self.repo.get(ref),
            source_id=source_id,
        )
        return True

    def _opex_asset(self, tree: PackageTree, item: _Item, parent: str | None, docs: dict[str, OpexDocument]) -> None:
        if parent is None:
            self.failed += 1
            self.message(
                "Error", "monitor.error.asset.parent", f"{item.path}: an asset cannot sit at the root", item.path
            )
            return
        doc = item.doc
        name = basename(item.path)
        default_title = name
        for suffix in (".pax.zip", ".pax"):
            if item.kind != "asset" and name.lower().endswith(suffix):
                default_title = name[: -len(suffix)]
                break
        title = (doc.title if doc and doc.title else None) or default_title
        source_id = doc.source_id if doc else None
        if self._skip_existing(item, parent, title, source_id):
            return
        if self._injected_failure(item.path):
            return
        manifest = docs.get(posixpath.dirname(item.path) + "/" + basename(posixpath.dirname(item.path)) + OPEX_SUFFIX)
        if manifest is not None and manifest.manifest_files:
            for entry in manifest.manifest_files:
                if entry.name == name and entry.size is not None and item.kind == "asset":
                    actual = tree.files.get(item.path)
                    if actual != entry.size:
                        self.failed += 1
                        self.message(
                            "Error",
                            "monitor.error.manifest.size",
                            f"{item.path}: the manifest says {entry.size} bytes, the package has {actual}",
                            item.path,
                        )
                        return
        asset = self._entity(IO, title, parent, doc)
        try:
            if item.kind == "asset":
                entities = self._single_file_asset(tree, item, asset, doc)
            elif item.kind == "pax":
                entities = self._pax_asset(tree, item.path, asset, doc)
            else:
                entities = self._zipped_pax_asset(tree, item.path, asset, doc)
        except AssetFailed as failure:
            self.failed += 1
            self.message("Error", failure.code, failure.text, item.path, failure.params)
            return
        try:
            self._insert(entities)
        except RepositoryError as exc:
            self._discard([b for e in entities for g in e.generations for b in g.bitstreams])
            self.failed += 1
            self.message("Error", "monitor.error.asset.failed", f"{item.path}: {exc}", item.path)
            return
        self.ingested += 1
        self.message(
            "Info",
            "monitor.info.successful.ingest.with.opex",
            f"Successfully ingested {item.path} as asset {asset.ref}",
            item.path,
            entity=asset,
        )

    def _content_object(self, asset: Entity, title: str, bitstreams: list[Bitstream]) -> Entity:
        now = self.now()
        return Entity(
            ref=str(uuid.uuid4()),
            kind=CO,
            title=title,
            security_tag=asset.security_tag,
            parent=asset.ref,
            created=now,
            modified=now,
            generations=[Generation(original=True, active=True, effective_date=now, bitstreams=bitstreams)],
        )

    def _checked_blob(self, tree: PackageTree, path: str, expected: list[tuple[str, str]], shown: str) -> Bitstream:
        bitstream = self._store(tree, path)
        problem = self._verify(bitstream, expected, shown)
        if problem is not None:
            self._discard([bitstream])
            raise AssetFailed("monitor.error.fixity.mismatch", problem, {"path": shown})
        return bitstream

    def _single_file_asset(
        self, tree: PackageTree, item: _Item, asset: Entity, doc: OpexDocument | None
    ) -> list[Entity]:
        name = basename(item.path)
        expected = [(f.algorithm, f.value) for f in (doc.fixities if doc else []) if not f.path or f.path == name]
        bitstream = self._checked_blob(tree, item.path, expected, item.path)
        content = self._content_object(asset, name, [bitstream])
        asset.representations.append(Representation("Preservation", "Preservation", [content.ref]))
        return [asset, content]

    def _pax_asset(self, tree: PackageTree, base: str, asset: Entity, doc: OpexDocument | None) -> list[Entity]:
        """A PAX: ``Representation_<Type>[_n]/`` folders of content-object folders (or bare files)."""
        fixities = doc.fixities if doc else []
        contents: list[Entity] = []
        stored: list[Bitstream] = []
        subdirs, _ = tree.children(base)
        try:
            for rep_dir in subdirs:
                rep_name = basename(rep_dir)
                if not rep_name.startswith("Representation_"):
                    continue
                rep_type = (
                    "Access" if rep_name[len("Representation_") :].lower().startswith("access") else "Preservation"
                )
                rep = Representation(rep_type, rep_name[len("Representation_") :] or rep_type)
                co_dirs, co_files = tree.children(rep_dir)
                groups: list[tuple[str, list[str]]] = [(basename(p), [p]) for p in co_files]
                for co_dir in co_dirs:
                    groups.append((basename(co_dir), tree.children(co_dir)[1]))
                for co_title, paths in groups:
                    bitstreams: list[Bitstream] = []
                    for path in paths:
                        relative = path[len(base) + 1 :] if base else path
                        expected = [
                            (f.algorithm, f.value)
                            for f in fixities
                            if f.path and f.path.replace("\\", "/").lstrip("/") == relative
                        ]
                        bitstream = self._checked_blob(tree, path, expected, path)
                        stored.append(bitstream)
                        bitstreams.append(bitstream)
                    if bitstreams:
                        content = self._content_object(asset, co_title, bitstreams)
                        rep.content_objects.append(content.ref)
                        contents.append(content)
                if rep.content_objects:
                    asset.representations.append(rep)
        except AssetFailed:
            self._discard(stored)
            raise
        if not contents:
            raise AssetFailed(
                "monitor.error.pax.empty", f"{base}: a PAX needs Representation_<Type> folders with files", None
            )
        return [asset, *contents]

    def _zipped_pax_asset(self, tree: PackageTree, path: str, asset: Entity, doc: OpexDocument | None) -> list[Entity]:
        target = self.store.new_path(".pax.zip")
        self._cleanup.append(target)
        with tree.open(path) as source, open(target, "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        name = basename(path)
        expected = [(f.algorithm, f.value) for f in (doc.fixities if doc else []) if not f.path or f.path == name]
        if expected:
            with open(target, "rb") as handle:
                bitstream = self.repo.store_blob(handle, name)
            self._discard([bitstream])
            problem = self._verify(bitstream, expected, path)
            if problem is not None:
                raise AssetFailed("monitor.error.fixity.mismatch", problem, {"path": path})
        try:
            inner = ZipTree(target)
        except PackageError as exc:
            raise AssetFailed("monitor.error.pax.invalid", f"{path}: {exc}", None) from None
        self._trees.append(inner)
        return self._pax_asset(inner, "", asset, None)
