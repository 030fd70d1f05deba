"""The sandbox's repository: folders, assets and content objects, and every operation on them.

One ``Repository`` hangs off ``SandboxState`` (``state.repository``) and is shared by every API that
reads or changes entities (Entity API, Content API search, ingest, export). It is thread-safe under
the lock it is given (the state's ``RLock``); every public method takes it.

The pieces: the data model is ``entities`` (``Entity``, ``Bitstream`` ..., re-exported here), the read
side and the indexes are ``entity_index.EntityIndex`` (the base class), bitstream bytes on disk are
``blob_store.BlobStore`` (``store_blob``, ``blob_path``, ``blob_dir``), the file form is
``entity_records``, and ``seed`` fills a repository (``Repository.seed``).

Persistence: with a data directory the repository is written as JSON lines
(``repository.jsonl``: a header line, then one entity per line) on ``save()``/``close()`` and after
seeding, and read back at start. Changes made between two saves are lost if the process dies.
Without a data directory it is memory-only and bitstream bytes go to a temporary directory that
``close()`` removes.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from . import changes as ch
from .blob_store import BlobStore
from .entities import (
    CO,
    FIXITY_ALGORITHMS,
    IO,
    KIND_BY_PATH,
    KINDS,
    PATHS,
    REPRESENTATION_TYPES,
    SO,
    XIP_TAGS,
    Bitstream,
    Entity,
    EntityConflict,
    EntityNotFound,
    Generation,
    Identifier,
    MetadataFragment,
    RepositoryError,
    Representation,
    check_ref,
    iso_timestamp,
)
from .entity_index import EntityIndex
from .entity_records import REPOSITORY_FILE, entity_to_record, read_jsonl, record_to_entity, write_jsonl
from .seed import seed_repository

__all__ = [
    "CO",
    "FIXITY_ALGORITHMS",
    "IO",
    "KINDS",
    "KIND_BY_PATH",
    "PATHS",
    "REPRESENTATION_TYPES",
    "SO",
    "XIP_TAGS",
    "Bitstream",
    "Entity",
    "EntityConflict",
    "EntityNotFound",
    "Generation",
    "Identifier",
    "MetadataFragment",
    "Repository",
    "RepositoryError",
    "Representation",
    "check_ref",
    "iso_timestamp",
]


class Repository(EntityIndex):
    """Entities, indexes and bitstream bytes of one sandbox. See the module docstring."""

    def __init__(
        self,
        lock: threading.RLock | None = None,
        clock: Callable[[], float] = time.time,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(lock)
        self.clock = clock
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.blobs = BlobStore(self.data_dir, self.lock)
        self.changes = ch.ChangeLog()
        self._saved_version = 0
        if self.data_dir is not None:
            self.load()

    # ----------------------------------------------------------------- creating
    def _now(self) -> str:
        return iso_timestamp(self.clock())

    def _changed(self, event_type: str, command: str, entities: Iterable[Entity], now: str | None = None) -> str:
        """Stamp ``entities`` modified at ``now`` and log one event naming them (callers hold the lock)."""
        now = now or self._now()
        actions = []
        for entity in entities:
            entity.modified = now
            actions.append(ch.EventAction(entity.ref, entity.kind, command))
        self.changes.record(event_type, now, actions)
        self._touch()
        return now

    def insert_ingested(self, entities: Sequence[Entity]) -> int:
        """``insert_entities`` for an ingest: one ``Ingest`` event naming every new entity."""
        with self.lock:
            count = self.insert_entities(entities)
            for entity in entities:
                self.changes.revive(entity.ref)
            self.changes.record(ch.INGEST, self._now(), [ch.EventAction(e.ref, e.kind, "AddEntity") for e in entities])
            return count

    def add_folder(
        self,
        title: str,
        description: str = "",
        security_tag: str = "open",
        parent: str | None = None,
        ref: str | None = None,
        **extra: Any,
    ) -> Entity:
        return self.add_entity(SO, title, description, security_tag, parent, ref, **extra)

    def add_asset(
        self,
        title: str,
        parent: str,
        description: str = "",
        security_tag: str = "open",
        ref: str | None = None,
        **extra: Any,
    ) -> Entity:
        return self.add_entity(IO, title, description, security_tag, parent, ref, **extra)

    def add_entity(
        self,
        kind: str,
        title: str,
        description: str = "",
        security_tag: str = "open",
        parent: str | None = None,
        ref: str | None = None,
        *,
        created: str | None = None,
        source_id: str | None = None,
        custom_type: str | None = None,
        identifiers: Iterable[tuple[str, str]] = (),
    ) -> Entity:
        """Create a folder (``SO``, parent a folder or ``None``) or asset (``IO``, parent a folder).

        Content objects are made with ``add_content_object``. Raises ``EntityConflict`` for a ref
        already in use and ``EntityNotFound`` for an unknown parent.
        """
        if kind not in (SO, IO):
            raise RepositoryError(f"add_entity makes folders and assets, not {kind!r}")
        with self.lock:
            ref = check_ref(ref) if ref is not None else str(uuid.uuid4())
            if ref in self._entities:
                raise EntityConflict(f"an entity with reference {ref} already exists")
            if parent is not None:
                parent = check_ref(parent)
                self.require(parent, SO)
            elif kind == IO:
                raise RepositoryError("an asset needs a parent folder")
            now = self._now()
            entity = Entity(
                ref=ref,
                kind=kind,
                title=title,
                description=description,
                security_tag=security_tag,
                parent=parent,
                created=created or now,
                modified=now,
                source_id=source_id,
                custom_type=custom_type,
            )
            self._insert(entity)
            for id_type, value in identifiers:
                self._attach_identifier(entity, Identifier(uuid.uuid4().hex, id_type, value))
            self.changes.revive(ref)
            self._changed(ch.CREATE, "AddEntity", [entity], now)
            return entity

    def add_content_object(
        self,
        asset: str,
        title: str,
        representation: str = "Preservation",
        ref: str | None = None,
        description: str = "",
        representation_name: str | None = None,
    ) -> Entity:
        """A content object under ``asset``, appended to its first representation of that type."""
        if representation not in REPRESENTATION_TYPES:
            raise RepositoryError(f"representation type must be one of {REPRESENTATION_TYPES}")
        with self.lock:
            owner = self.require(asset, IO)
            ref = check_ref(ref) if ref is not None else str(uuid.uuid4())
            if ref in self._entities:
                raise EntityConflict(f"an entity with reference {ref} already exists")
            now = self._now()
            entity = Entity(
                ref=ref,
                kind=CO,
                title=title,
                description=description,
                security_tag=owner.security_tag,
                parent=owner.ref,
                created=now,
                modified=now,
            )
            rep = next((r for r in owner.representations if r.type == representation), None)
            if rep is None:
                rep = Representation(representation, representation_name or representation)
                owner.representations.append(rep)
            rep.content_objects.append(ref)
            self._insert(entity)
            self.changes.revive(ref)
            self._changed(ch.CREATE, "AddEntity", [entity], now)
            return entity

    def add_generation(self, content_object: str, generation: Generation) -> int:
        """Append a generation (earlier ones become inactive if it is active); returns its 1-based index."""
        with self.lock:
            entity = self.require(content_object, CO)
            if generation.active:
                for older in entity.generations:
                    older.active = False
            generation.original = not entity.generations
            entity.generations.append(generation)
            self._touch()
            return len(entity.generations)

    def add_bitstream_file(
        self,
        asset: str,
        source: str | os.PathLike[str] | BinaryIO,
        filename: str,
        representation: str = "Preservation",
        title: str | None = None,
        move: bool = False,
    ) -> Entity:
        """Store a file as a new content object of ``asset`` (one generation, one bitstream)."""
        bitstream = self.store_blob(source, filename, move=move)
        with self.lock:
            co = self.add_content_object(asset, title or filename, representation)
            self.add_generation(co.ref, Generation(bitstreams=[bitstream]))
            return co

    # ----------------------------------------------------------------- changing
    def update(
        self,
        ref: str,
        *,
        title: str | None = None,
        description: str | None = None,
        custom_type: str | None = None,
    ) -> Entity:
        with self.lock:
            entity = self.require(ref)
            entity.set_text(title, description)
            if custom_type is not None:
                entity.custom_type = custom_type or None
            self._changed(ch.MODIFIED, "UpdateEntity", [entity])
            return entity

    def set_security_tag(self, ref: str, tag: str, include_descendants: bool = False) -> int:
        """Change the tag (on request also of every folder, asset and content object below);
        returns how many entities changed."""
        with self.lock:
            entity = self.require(ref)
            targets = [entity.ref]
            if include_descendants:
                if entity.kind == SO:
                    targets.extend(self.descendants(entity.ref))
                for target in list(targets):
                    for rep in self._entities[target].representations:
                        targets.extend(r for r in rep.content_objects if r in self._entities)
            for target in targets:
                self._entities[target].security_tag = tag
            self._changed(ch.SECURITY, "ChangeSecurityTag", [self._entities[t] for t in targets])
            return len(targets)

    def check_move(self, ref: str, new_parent: str | None) -> Entity:
        """The entity ``move`` would move, or the ``RepositoryError`` it would raise.

        ``EntityNotFound`` (404) for an unknown entity or destination folder; ``RepositoryError``
        (400) for a content object, an asset sent to the root, a destination that is not a folder and
        a folder sent below itself.
        """
        with self.lock:
            entity = self.require(ref)
            if entity.kind == CO:
                raise RepositoryError(f"content object {ref} cannot be moved: move its asset instead")
            if new_parent is None:
                if entity.kind == IO:
                    raise RepositoryError(
                        f"asset {ref} cannot be moved to the root (@root@ is for folders only): name a folder"
                    )
                return entity
            destination = self._entities.get(new_parent)
            if destination is None:
                raise EntityNotFound(f"destination folder {new_parent} does not exist")
            if destination.kind != SO:
                what = "an asset" if destination.kind == IO else "a content object"
                raise RepositoryError(f"destination {new_parent} is {what}, not a folder")
            if new_parent == ref or ref in self.ancestors(new_parent):
                raise RepositoryError(
                    f"folder {ref} cannot be moved below itself: destination {new_parent} is the folder or inside it"
                )
            return entity

    def move(self, ref: str, new_parent: str | None) -> Entity:
        """Move a folder (to a folder or the root) or an asset (to a folder); refuses cycles."""
        with self.lock:
            entity = self.check_move(ref, new_parent)
            del self._children[entity.parent][ref]
            # Children are listed in creation order, wherever they came from.
            siblings = [*self._children.get(new_parent, {}), ref]
            siblings.sort(key=lambda r: self._entities[r].seq)
            self._children[new_parent] = dict.fromkeys(siblings)
            entity.parent = new_parent
            self._changed(ch.MOVED, "MoveEntity", [entity])
            return entity

    def delete(self, ref: str) -> int:
        """Remove an entity with everything below it (content objects too); returns how many."""
        with self.lock:
            entity = self.require(ref)
            doomed = [entity.ref]
            if entity.kind == SO:
                doomed.extend(self.descendants(entity.ref))
            for target in list(doomed):
                for rep in self._entities[target].representations:
                    doomed.extend(rep.content_objects)
            if entity.kind == CO and entity.parent in self._entities:
                for rep in self._entities[entity.parent].representations:
                    if ref in rep.content_objects:
                        rep.content_objects.remove(ref)
            now = self._now()
            gone = [self._entities[r] for r in doomed if r in self._entities]
            self.changes.bury(ch.Tombstone(e.ref, e.kind, e.title, now, e.seq) for e in gone)
            self._changed(ch.DELETED, "DeleteEntity", gone, now)
            self._remove(doomed)
            return len(doomed)

    # ----------------------------------------------------------------- identifiers
    def identifiers(self, ref: str) -> list[Identifier]:
        with self.lock:
            return list(self.require(ref).identifiers)

    def add_identifier(self, ref: str, id_type: str, value: str) -> Identifier:
        if not id_type or not value:
            raise RepositoryError("an identifier needs a type and a value")
        with self.lock:
            entity = self.require(ref)
            identifier = Identifier(uuid.uuid4().hex, id_type, value)
            self._attach_identifier(entity, identifier)
            self._changed(ch.IDENTIFIERS, "AddIdentifier", [entity])
            return identifier

    def _find_identifier(self, entity: Entity, api_id: str) -> Identifier:
        for identifier in entity.identifiers:
            if identifier.api_id == api_id:
                return identifier
        raise EntityNotFound(f"no identifier {api_id} on {entity.ref}")

    def update_identifier(self, ref: str, api_id: str, id_type: str, value: str) -> Identifier:
        if not id_type or not value:
            raise RepositoryError("an identifier needs a type and a value")
        with self.lock:
            entity = self.require(ref)
            identifier = self._find_identifier(entity, api_id)
            self._unindex_identifier(ref, identifier)
            identifier.type, identifier.value = id_type, value
            self._index_identifier(ref, identifier)
            self._changed(ch.IDENTIFIERS, "UpdateIdentifier", [entity])
            return identifier

    def delete_identifier(self, ref: str, api_id: str) -> None:
        with self.lock:
            entity = self.require(ref)
            identifier = self._find_identifier(entity, api_id)
            self._unindex_identifier(ref, identifier)
            entity.identifiers.remove(identifier)
            self._changed(ch.IDENTIFIERS, "DeleteIdentifier", [entity])

    # ----------------------------------------------------------------- metadata
    def add_metadata(self, ref: str, schema: str, xml: str, mref: str | None = None) -> MetadataFragment:
        with self.lock:
            entity = self.require(ref)
            fragment = MetadataFragment(mref or str(uuid.uuid4()), schema, xml)
            entity.metadata.append(fragment)
            self._changed(ch.METADATA, "AddMetadata", [entity])
            return fragment

    def get_metadata(self, ref: str, mref: str) -> MetadataFragment:
        with self.lock:
            entity = self.require(ref)
            for fragment in entity.metadata:
                if fragment.ref == mref:
                    return fragment
            raise EntityNotFound(f"no metadata fragment {mref} on {ref}")

    def replace_metadata(self, ref: str, mref: str, schema: str, xml: str) -> MetadataFragment:
        with self.lock:
            fragment = self.get_metadata(ref, mref)
            fragment.schema, fragment.xml = schema, xml
            self._changed(ch.METADATA, "UpdateMetadata", [self.require(ref)])
            return fragment

    def delete_metadata(self, ref: str, mref: str) -> None:
        with self.lock:
            fragment = self.get_metadata(ref, mref)
            entity = self.require(ref)
            entity.metadata.remove(fragment)
            self._changed(ch.METADATA, "DeleteMetadata", [entity])

    # ----------------------------------------------------------------- change feed
    def updated_since(self, since: str, until: str | None = None) -> list[ch.FeedRow]:
        """The change feed's rows between two timestamps: see ``changes.feed_rows``."""
        with self.lock:
            return ch.feed_rows(self._entities.values(), self.changes.tombstones.values(), since, until)

    def clear(self) -> None:
        with self.lock:
            super().clear()
            self.changes.clear()

    # ----------------------------------------------------------------- bitstream bytes
    @property
    def blob_dir(self) -> Path:
        """Where bitstream bytes live: ``<data_dir>/blobs`` or a temporary directory."""
        return self.blobs.directory

    def blob_path(self, bitstream: Bitstream) -> Path | None:
        """The file holding a bitstream's bytes, or ``None`` when no bytes are stored."""
        return self.blobs.path(bitstream)

    def store_blob(self, source: str | os.PathLike[str] | BinaryIO, filename: str, move: bool = False) -> Bitstream:
        """Copy (or move) bytes into ``blob_dir``; returns a ``Bitstream`` with size and fixities."""
        return self.blobs.store(source, filename, move=move)

    # ----------------------------------------------------------------- persistence
    def to_records(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            entities = list(self._entities.values())
        for entity in entities:
            yield entity_to_record(entity)

    def load_records(self, records: Iterable[dict[str, Any]]) -> int:
        """Insert entities from records (the ``repository.jsonl`` form); see ``insert_entities``."""
        return self.insert_entities([record_to_entity(record) for record in records])

    def seed(self, **options: Any) -> dict[str, Any]:
        """Generate and/or load a repository; see ``seed.seed_repository`` for the options."""
        return seed_repository(self, **options)

    def save(self, force: bool = False) -> bool:
        """Write ``repository.jsonl`` if there is a data directory and something changed."""
        if self.data_dir is None:
            return False
        with self.lock:
            if not force and self._version == self._saved_version:
                return False
            version = self._version
            write_jsonl(self.data_dir, self.to_records())
            self._saved_version = version
            return True

    def load(self) -> int:
        if self.data_dir is None:
            return 0
        path = self.data_dir / REPOSITORY_FILE
        if not path.exists():
            return 0
        count = self.load_records(read_jsonl(path))
        self._saved_version = self._version
        return count

    def close(self) -> None:
        """Save (with a data directory) and remove the temporary blob directory (without one)."""
        self.save()
        self.blobs.close()
