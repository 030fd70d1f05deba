"""The repository's indexes: every entity by ref, the children of each folder, identifier lookups.

``EntityIndex`` is the read side of ``Repository`` (its base class) and the raw bookkeeping its
operations use; it never creates or changes an entity itself. Indexes kept right by every change:
entities in insertion order (the default search order), an ordered child set per parent (``None`` =
root; folders and assets only; creation order, also after a move), ``(type, value) -> refs`` for
identifier lookups, lower-cased identifier value -> refs for search, and lower-cased title and
description on each entity. ``version`` grows with every change so search results can be cached.
Thread-safe under the lock it is given; every public method takes it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from .entities import CO, IO, KINDS, SO, Entity, EntityConflict, EntityNotFound, Identifier, RepositoryError

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


class EntityIndex:
    """Entities and their indexes. See the module docstring."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock or threading.RLock()
        self._entities: dict[str, Entity] = {}
        self._children: dict[str | None, dict[str, None]] = {None: {}}
        self._children_lists: dict[str | None, tuple[int, list[str]]] = {}
        self._by_identifier: dict[tuple[str, str], RefSet] = {}
        self._by_identifier_value: dict[str, RefSet] = {}
        self._version = 0
        self._seq = 0

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

    # ----------------------------------------------------------------- index bookkeeping (callers hold the lock)
    def _touch(self) -> None:
        self._version += 1

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

    def _remove(self, refs: Iterable[str]) -> None:
        """Drop entities from every index (no cascade, no version bump: callers decide)."""
        for target in refs:
            removed = self._entities.pop(target, None)
            if removed is None:
                continue
            for identifier in removed.identifiers:
                self._unindex_identifier(target, identifier)
            self._children.pop(target, None)
            self._children_lists.pop(target, None)
            if removed.kind != CO:
                self._children.get(removed.parent, {}).pop(target, None)

    # ----------------------------------------------------------------- bulk insert
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

    def clear(self) -> None:
        with self.lock:
            self._entities.clear()
            self._children = {None: {}}
            self._children_lists.clear()
            self._by_identifier.clear()
            self._by_identifier_value.clear()
            self._touch()
