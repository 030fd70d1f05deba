"""The sandbox's in-memory repository: folders, assets, content objects and their indexes.

One ``Repository`` hangs off ``SandboxState`` (``state.repository``) and is shared by every API that
reads or changes entities (Entity API, Content API search, ingest, export). It is thread-safe under
the lock it is given (the state's ``RLock``); every public method takes it.

Model (names follow XIP):

- ``Entity`` — a folder (``SO``), asset (``IO``) or content object (``CO``): ref, title, description,
  security tag, parent ref, created/modified timestamps (ISO 8601 UTC, milliseconds, ``Z``),
  SourceID, CustomType, identifiers and descriptive metadata fragments. Assets hold
  ``representations`` (``Preservation``/``Access``, each naming its content objects in order);
  content objects hold ``generations`` and their ``bitstreams``. A content object's ``parent`` is
  its asset.
- ``Bitstream`` — filename, size, fixities ``{algorithm: hex}`` and ``location``: where the bytes
  live, relative to ``blob_dir`` (or absolute), or ``None`` when no bytes are stored. Bytes never
  live in memory: ``store_blob`` streams a file into ``blob_dir`` while computing fixities.

Indexes kept right by every change: entities in insertion order (the default search order), an
ordered child set per parent (``None`` = root; folders and assets only; creation order, also after
a move), ``(type, value) -> refs``
for identifier lookups, lower-cased identifier value -> refs for search, and lower-cased title and
description on each entity. ``version`` grows with every change so search results can be cached.

Persistence: with a data directory the repository is written as JSON lines
(``repository.jsonl``: a header line, then one entity per line) on ``save()``/``close()`` and after
seeding, and read back at start. Changes made between two saves are lost if the process dies.
Without a data directory it is memory-only and bitstream bytes go to a temporary directory that
``close()`` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

SO, IO, CO = "SO", "IO", "CO"
KINDS = (SO, IO, CO)
PATHS = {SO: "structural-objects", IO: "information-objects", CO: "content-objects"}
KIND_BY_PATH = {path: kind for kind, path in PATHS.items()}
XIP_TAGS = {SO: "StructuralObject", IO: "InformationObject", CO: "ContentObject"}
REPRESENTATION_TYPES = ("Preservation", "Access")
FIXITY_ALGORITHMS = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}

REPOSITORY_FILE = "repository.jsonl"
BLOB_DIR = "blobs"
FORMAT_HEADER = {"format": "preservica-sandbox-repository", "version": 1}


class RepositoryError(ValueError):
    """Base class; ``status`` is the HTTP status an API should answer with."""

    status = 400


class EntityNotFound(RepositoryError):
    status = 404


class EntityConflict(RepositoryError):
    status = 409


def iso_timestamp(epoch: float) -> str:
    """``1700000000.5`` -> ``"2023-11-14T22:13:20.500Z"`` (the form every timestamp here takes)."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def check_ref(ref: str) -> str:
    """A canonical (lower-case, hyphenated) UUID string, or ``RepositoryError``."""
    try:
        return str(uuid.UUID(str(ref).strip()))
    except ValueError:
        raise RepositoryError(f"not a valid entity reference (UUID): {ref!r}") from None


@dataclass(slots=True)
class Identifier:
    api_id: str
    type: str
    value: str


@dataclass(slots=True)
class MetadataFragment:
    ref: str
    schema: str
    xml: str


@dataclass(slots=True)
class Bitstream:
    filename: str
    size: int
    fixities: dict[str, str] = field(default_factory=dict)
    location: str | None = None


@dataclass(slots=True)
class Generation:
    original: bool = True
    active: bool = True
    format_group: str | None = None
    effective_date: str | None = None
    formats: list[dict[str, str]] = field(default_factory=list)
    bitstreams: list[Bitstream] = field(default_factory=list)


@dataclass(slots=True)
class Representation:
    type: str
    name: str
    content_objects: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Entity:
    ref: str
    kind: str
    title: str
    description: str = ""
    security_tag: str = "open"
    parent: str | None = None
    created: str = ""
    modified: str = ""
    source_id: str | None = None
    custom_type: str | None = None
    identifiers: list[Identifier] = field(default_factory=list)
    metadata: list[MetadataFragment] = field(default_factory=list)
    representations: list[Representation] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    title_lc: str = ""
    description_lc: str = ""
    seq: int = 0  # insertion order, assigned by the repository

    def __post_init__(self) -> None:
        self.title_lc = self.title.lower()
        self.description_lc = self.description.lower()

    @property
    def path(self) -> str:
        return PATHS[self.kind]

    @property
    def content_id(self) -> str:
        """The Content API id, ``sdb:IO|<ref>``."""
        return f"sdb:{self.kind}|{self.ref}"

    def set_text(self, title: str | None = None, description: str | None = None) -> None:
        if title is not None:
            self.title, self.title_lc = title, title.lower()
        if description is not None:
            self.description, self.description_lc = description, description.lower()


# An index bucket: most identifier values belong to one entity, so a lone ref is stored as the
# string itself and only becomes an ordered dict when a second ref arrives (saves ~1 KB per asset).
RefSet = str | dict[str, None]


def _members(bucket: RefSet | None) -> list[str]:
    if bucket is None:
        return []
    return [bucket] if isinstance(bucket, str) else list(bucket)


def _add_member(index: dict[Any, RefSet], key: Any, ref: str) -> None:
    bucket = index.get(key)
    if bucket is None:
        index[key] = ref
    elif isinstance(bucket, str):
        if bucket != ref:
            index[key] = {bucket: None, ref: None}
    else:
        bucket[ref] = None


def _remove_member(index: dict[Any, RefSet], key: Any, ref: str) -> None:
    bucket = index.get(key)
    if bucket is None:
        return
    if isinstance(bucket, str):
        if bucket == ref:
            del index[key]
        return
    bucket.pop(ref, None)
    if len(bucket) == 1:
        index[key] = next(iter(bucket))
    elif not bucket:
        del index[key]


class Repository:
    """Entities and indexes of one sandbox. See the module docstring."""

    def __init__(
        self,
        lock: threading.RLock | None = None,
        clock: Callable[[], float] = time.time,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.lock = lock or threading.RLock()
        self.clock = clock
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._entities: dict[str, Entity] = {}
        self._children: dict[str | None, dict[str, None]] = {None: {}}
        self._children_lists: dict[str | None, tuple[int, list[str]]] = {}
        self._by_identifier: dict[tuple[str, str], RefSet] = {}
        self._by_identifier_value: dict[str, RefSet] = {}
        self._version = 0
        self._seq = 0
        self._saved_version = 0
        self._temp_blob_dir: Path | None = None
        if self.data_dir is not None:
            self.load()

    # ----------------------------------------------------------------- reading
    @property
    def version(self) -> int:
        """Grows with every change; equal versions mean equal content."""
        return self._version

    def __len__(self) -> int:
        return len(self._entities)

    def get(self, ref: str, kind: str | None = None) -> Entity | None:
        with self.lock:
            entity = self._entities.get(ref)
            if entity is None or (kind is not None and entity.kind != kind):
                return None
            return entity

    def require(self, ref: str, kind: str | None = None) -> Entity:
        entity = self.get(ref, kind)
        if entity is None:
            what = {SO: "folder", IO: "asset", CO: "content object"}.get(kind or "", "entity")
            raise EntityNotFound(f"no {what} with reference {ref}")
        return entity

    def entities(self, kinds: Iterable[str] = (SO, IO)) -> list[Entity]:
        """A snapshot, in insertion order, of the entities of the given kinds."""
        wanted = frozenset(kinds)
        with self.lock:
            if wanted.issuperset(KINDS):
                return list(self._entities.values())
            return [e for e in self._entities.values() if e.kind in wanted]

    def counts(self) -> dict[str, int]:
        with self.lock:
            out = dict.fromkeys(KINDS, 0)
            for entity in self._entities.values():
                out[entity.kind] += 1
            return {"folders": out[SO], "assets": out[IO], "content_objects": out[CO], "version": self._version}

    def children(self, parent: str | None) -> list[str]:
        """Refs of the folders and assets directly under ``parent`` (``None`` = root), in order.

        The list is a cached snapshot (rebuilt after a change), so paging a large folder is cheap.
        """
        with self.lock:
            if parent is not None:
                self.require(parent, SO)
            cached = self._children_lists.get(parent)
            if cached is not None and cached[0] == self._version:
                return cached[1]
            refs = list(self._children.get(parent, {}))
            self._children_lists[parent] = (self._version, refs)
            return refs

    def ancestors(self, ref: str) -> list[str]:
        """Folder refs from the root down to the direct parent of ``ref``."""
        with self.lock:
            out: list[str] = []
            current = self._entities.get(ref)
            while current is not None and current.parent is not None:
                out.append(current.parent)
                current = self._entities.get(current.parent)
            out.reverse()
            return out

    def descendants(self, folder: str) -> set[str]:
        """Refs of every folder and asset below ``folder`` (not the folder itself)."""
        with self.lock:
            out: set[str] = set()
            stack = [folder]
            while stack:
                for child in self._children.get(stack.pop(), ()):
                    out.add(child)
                    stack.append(child)
            return out

    def find_by_identifier(self, id_type: str | None, value: str) -> list[Entity]:
        """Entities with an identifier of exactly this value (and type, unless ``None``)."""
        with self.lock:
            if id_type is not None:
                refs = _members(self._by_identifier.get((id_type, value)))
            else:
                refs = [
                    r
                    for r in _members(self._by_identifier_value.get(value.lower()))
                    if any(i.value == value for i in self._entities[r].identifiers)
                ]
            return [self._entities[r] for r in refs]

    def refs_with_identifier_value(self, value_lc: str) -> set[str]:
        """Refs with an identifier whose lower-cased value equals ``value_lc`` (search support)."""
        with self.lock:
            return set(_members(self._by_identifier_value.get(value_lc)))

    # ----------------------------------------------------------------- creating
    def _now(self) -> str:
        return iso_timestamp(self.clock())

    def _touch(self) -> None:
        self._version += 1

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
            return entity

    def _insert(self, entity: Entity) -> None:
        """Register a fully built entity in every index (no checks: callers check)."""
        self._seq += 1
        entity.seq = self._seq
        self._entities[entity.ref] = entity
        if entity.kind != CO:
            self._children.setdefault(entity.parent, {})[entity.ref] = None
            if entity.kind == SO:
                self._children.setdefault(entity.ref, {})
        for identifier in entity.identifiers:
            self._index_identifier(entity.ref, identifier)
        self._touch()

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
            entity.modified = self._now()
            self._touch()
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
            now = self._now()
            for target in targets:
                self._entities[target].security_tag = tag
                self._entities[target].modified = now
            self._touch()
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
            entity.modified = self._now()
            self._touch()
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
            for target in doomed:
                removed = self._entities.pop(target, None)
                if removed is None:
                    continue
                for identifier in removed.identifiers:
                    self._unindex_identifier(target, identifier)
                self._children.pop(target, None)
                self._children_lists.pop(target, None)
                if removed.kind != CO:
                    self._children.get(removed.parent, {}).pop(target, None)
            self._touch()
            return len(doomed)

    def clear(self) -> None:
        with self.lock:
            self._entities.clear()
            self._children = {None: {}}
            self._children_lists.clear()
            self._by_identifier.clear()
            self._by_identifier_value.clear()
            self._touch()

    # ----------------------------------------------------------------- identifiers
    def _index_identifier(self, ref: str, identifier: Identifier) -> None:
        _add_member(self._by_identifier, (identifier.type, identifier.value), ref)
        _add_member(self._by_identifier_value, identifier.value.lower(), ref)

    def _unindex_identifier(self, ref: str, identifier: Identifier) -> None:
        entity = self._entities.get(ref)
        others = [i for i in entity.identifiers if i is not identifier] if entity else []
        if not any((i.type, i.value) == (identifier.type, identifier.value) for i in others):
            _remove_member(self._by_identifier, (identifier.type, identifier.value), ref)
        if not any(i.value.lower() == identifier.value.lower() for i in others):
            _remove_member(self._by_identifier_value, identifier.value.lower(), ref)

    def _attach_identifier(self, entity: Entity, identifier: Identifier) -> None:
        entity.identifiers.append(identifier)
        self._index_identifier(entity.ref, identifier)

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
            entity.modified = self._now()
            self._touch()
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
            entity.modified = self._now()
            self._touch()
            return identifier

    def delete_identifier(self, ref: str, api_id: str) -> None:
        with self.lock:
            entity = self.require(ref)
            identifier = self._find_identifier(entity, api_id)
            self._unindex_identifier(ref, identifier)
            entity.identifiers.remove(identifier)
            entity.modified = self._now()
            self._touch()

    # ----------------------------------------------------------------- metadata
    def add_metadata(self, ref: str, schema: str, xml: str, mref: str | None = None) -> MetadataFragment:
        with self.lock:
            entity = self.require(ref)
            fragment = MetadataFragment(mref or str(uuid.uuid4()), schema, xml)
            entity.metadata.append(fragment)
            entity.modified = self._now()
            self._touch()
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
            self.require(ref).modified = self._now()
            self._touch()
            return fragment

    def delete_metadata(self, ref: str, mref: str) -> None:
        with self.lock:
            fragment = self.get_metadata(ref, mref)
            entity = self.require(ref)
            entity.metadata.remove(fragment)
            entity.modified = self._now()
            self._touch()

    # ----------------------------------------------------------------- bitstream bytes
    @property
    def blob_dir(self) -> Path:
        """Where bitstream bytes live: ``<data_dir>/blobs`` or a temporary directory."""
        with self.lock:
            if self.data_dir is not None:
                path = self.data_dir / BLOB_DIR
            else:
                if self._temp_blob_dir is None or not self._temp_blob_dir.exists():
                    self._temp_blob_dir = Path(tempfile.mkdtemp(prefix="preservica-sandbox-blobs-"))
                path = self._temp_blob_dir
            path.mkdir(parents=True, exist_ok=True)
            return path

    def blob_path(self, bitstream: Bitstream) -> Path | None:
        """The file holding a bitstream's bytes, or ``None`` when no bytes are stored."""
        if bitstream.location is None:
            return None
        path = Path(bitstream.location)
        return path if path.is_absolute() else self.blob_dir / path

    def store_blob(self, source: str | os.PathLike[str] | BinaryIO, filename: str, move: bool = False) -> Bitstream:
        """Copy (or move) bytes into ``blob_dir``; returns a ``Bitstream`` with size and fixities.

        ``source`` is a path or a binary file object; it is read in chunks, never whole.
        """
        target_dir = self.blob_dir
        name = uuid.uuid4().hex
        target = target_dir / name
        hashes = {alg: hashlib.new(py) for alg, py in FIXITY_ALGORITHMS.items()}
        size = 0
        if move and isinstance(source, str | os.PathLike):
            shutil.move(os.fspath(source), target)
            with open(target, "rb") as handle:
                size = _hash_stream(handle, hashes)
        else:
            with contextlib.ExitStack() as stack:
                reader: BinaryIO = (
                    stack.enter_context(open(source, "rb")) if isinstance(source, str | os.PathLike) else source
                )
                with open(target, "wb") as out:
                    while chunk := reader.read(1 << 20):
                        out.write(chunk)
                        size += len(chunk)
                        for digest in hashes.values():
                            digest.update(chunk)
        return Bitstream(filename, size, {alg: h.hexdigest() for alg, h in hashes.items()}, name)

    # ----------------------------------------------------------------- persistence
    def to_records(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            entities = list(self._entities.values())
        for entity in entities:
            yield entity_to_record(entity)

    def load_records(self, records: Iterable[dict[str, Any]]) -> int:
        """Insert entities from records (the ``repository.jsonl`` form); see ``insert_entities``."""
        return self.insert_entities([record_to_entity(record) for record in records])

    def check_entities(self, entities: Sequence[Entity], alone: bool = False) -> None:
        """Raise ``RepositoryError`` if ``insert_entities`` would refuse ``entities``.

        ``alone`` checks them as if the repository were empty (before a replacing seed).
        """
        with self.lock:
            existing: dict[str, Entity] = {} if alone else self._entities
            kinds: dict[str, str] = {}
            for entity in entities:
                if entity.ref in existing or entity.ref in kinds:
                    raise EntityConflict(f"duplicate entity reference {entity.ref}")
                kinds[entity.ref] = entity.kind
            for entity in entities:
                if entity.parent is None:
                    if entity.kind != SO:
                        raise RepositoryError(f"{entity.ref}: only folders may sit at the root")
                    continue
                parent_kind = kinds.get(entity.parent) or getattr(existing.get(entity.parent), "kind", None)
                if parent_kind != (IO if entity.kind == CO else SO):
                    raise EntityNotFound(f"{entity.ref}: parent {entity.parent} is missing or of the wrong kind")

    def insert_entities(self, entities: Sequence[Entity]) -> int:
        """Insert fully built entities at once; a parent may come after its children in the list.

        Raises ``RepositoryError`` (and inserts nothing) for a duplicate ref or a parent that is
        neither in the list nor in the repository (folders and assets need a folder, content
        objects an asset).
        """
        with self.lock:
            self.check_entities(entities)
            for entity in entities:
                self._insert(entity)
            return len(entities)

    def seed(self, **options: Any) -> dict[str, Any]:
        """Generate and/or load a repository; see ``seed.seed_repository`` for the options."""
        from .seed import seed_repository

        return seed_repository(self, **options)

    def save(self, force: bool = False) -> bool:
        """Write ``repository.jsonl`` if there is a data directory and something changed."""
        if self.data_dir is None:
            return False
        with self.lock:
            if not force and self._version == self._saved_version:
                return False
            version = self._version
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".repository-", suffix=".tmp", dir=self.data_dir)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(FORMAT_HEADER) + "\n")
                    for record in self.to_records():
                        handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                os.replace(tmp, self.data_dir / REPOSITORY_FILE)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
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
        with self.lock:
            if self._temp_blob_dir is not None:
                shutil.rmtree(self._temp_blob_dir, ignore_errors=True)
                self._temp_blob_dir = None


def _hash_stream(handle: BinaryIO, hashes: dict[str, Any]) -> int:
    size = 0
    while chunk := handle.read(1 << 20):
        size += len(chunk)
        for digest in hashes.values():
            digest.update(chunk)
    return size


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Entity records of a JSON-lines file (a ``format`` header line and blank lines are skipped)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise RepositoryError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(record, dict):
                raise RepositoryError(f"{path}:{number}: expected a JSON object")
            if "format" in record and "ref" not in record:
                continue
            yield record


def entity_to_record(entity: Entity) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ref": entity.ref,
        "type": entity.kind,
        "title": entity.title,
        "description": entity.description,
        "security_tag": entity.security_tag,
        "parent": entity.parent,
        "created": entity.created,
        "modified": entity.modified,
    }
    if entity.source_id is not None:
        record["source_id"] = entity.source_id
    if entity.custom_type is not None:
        record["custom_type"] = entity.custom_type
    if entity.identifiers:
        record["identifiers"] = [{"api_id": i.api_id, "type": i.type, "value": i.value} for i in entity.identifiers]
    if entity.metadata:
        record["metadata"] = [{"ref": m.ref, "schema": m.schema, "xml": m.xml} for m in entity.metadata]
    if entity.representations:
        record["representations"] = [
            {"type": r.type, "name": r.name, "content_objects": list(r.content_objects)} for r in entity.representations
        ]
    if entity.generations:
        record["generations"] = [
            {
                "original": g.original,
                "active": g.active,
                "format_group": g.format_group,
                "effective_date": g.effective_date,
                "formats": g.formats,
                "bitstreams": [
                    {"filename": b.filename, "size": b.size, "fixities": b.fixities, "location": b.location}
                    for b in g.bitstreams
                ],
            }
            for g in entity.generations
        ]
    return record


def _text(record: dict[str, Any], key: str, default: str = "") -> str:
    value = record.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RepositoryError(f"{key} must be a string, not {type(value).__name__}")
    return value


def record_to_entity(record: dict[str, Any]) -> Entity:
    """An ``Entity`` from a record; missing ``ref`` gets a random UUID, missing ``created`` now."""
    if not isinstance(record, dict):
        raise RepositoryError("each entity record must be a JSON object")
    kind = str(record.get("type", "")).upper()
    if kind not in KINDS:
        raise RepositoryError(f"entity type must be one of {KINDS}, not {record.get('type')!r}")
    ref = check_ref(record["ref"]) if record.get("ref") else str(uuid.uuid4())
    parent = check_ref(record["parent"]) if record.get("parent") else None
    now = iso_timestamp(time.time())
    try:
        entity = Entity(
            ref=ref,
            kind=kind,
            title=_text(record, "title"),
            description=_text(record, "description"),
            security_tag=_text(record, "security_tag", "open") or "open",
            parent=parent,
            created=_text(record, "created") or now,
            modified=_text(record, "modified") or _text(record, "created") or now,
            source_id=record.get("source_id"),
            custom_type=record.get("custom_type"),
            identifiers=[
                Identifier(str(i.get("api_id") or uuid.uuid4().hex), str(i["type"]), str(i["value"]))
                for i in record.get("identifiers", [])
            ],
            metadata=[
                MetadataFragment(str(m.get("ref") or uuid.uuid4()), str(m["schema"]), str(m["xml"]))
                for m in record.get("metadata", [])
            ],
            representations=[
                Representation(str(r["type"]), str(r.get("name") or r["type"]), [str(c) for c in r["content_objects"]])
                for r in record.get("representations", [])
            ],
            generations=[
                Generation(
                    original=bool(g.get("original", True)),
                    active=bool(g.get("active", True)),
                    format_group=g.get("format_group"),
                    effective_date=g.get("effective_date"),
                    formats=list(g.get("formats", [])),
                    bitstreams=[
                        Bitstream(str(b["filename"]), int(b["size"]), dict(b.get("fixities", {})), b.get("location"))
                        for b in g.get("bitstreams", [])
                    ],
                )
                for g in record.get("generations", [])
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RepositoryError(f"bad entity record {ref}: {exc!r}") from None
    return entity
