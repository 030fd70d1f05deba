"""The Content API's search index over the repository: fields, query parsing, matching, sorting.

Semantics (the sandbox's choices where Preservica documents none):

- Only folders (``SO``) and assets (``IO``) are indexed; content objects are not.
- Free text ``q``: empty, ``%`` or ``*`` match everything; ``id:<ref>`` matches that entity;
  otherwise the text is split on white space and every term (with ``%``/``*`` stripped from its
  ends) must occur, case-insensitively, as a substring of the title, the description or an
  identifier value.
- ``fields[]``: an empty ``values`` list restricts nothing (the field is only returned); a value
  ``*`` or ``%`` also restricts nothing; several values are OR-ed; ``"operator": "NOT"`` keeps the
  entities that match none of the values; filters on different fields are AND-ed. Per field:
  ``xip.title``/``xip.description`` case-insensitive substring (``*``/``%`` at the ends ignored);
  ``xip.reference``, ``xip.document_type``, ``xip.security_descriptor``, ``xip.parent_ref``
  case-insensitive equality; ``xip.parent_hierarchy`` entities anywhere below the folder (an
  unknown folder matches nothing); ``xip.identifier`` case-insensitive equality with an identifier's
  value, or with ``"<type> <value>"``; ``xip.created`` an ISO prefix (``2021``, ``2021-03-04``) or
  an inclusive range ``[2021-01-01 TO 2021-06-30]`` (``*`` for an open end; a date-only upper
  bound includes that whole day); ``xip.full_text`` (no text is extracted) matches only wildcards.
- Order: without ``sort``, insertion order (creation order, stable under paging). With ``sort``,
  by each requested field in turn (case-insensitive; missing values last in either direction),
  ties broken by reference ascending.
- Returned metadata: a field without a value for an entity is left out of that entity's row.
  Multi-valued fields (``xip.identifier`` as ``"<type> <value>"`` strings, ``xip.parent_hierarchy``
  as folder refs from the root down) are JSON lists.
- Unknown field names (filters, sort, metadata) and malformed ``q`` raise ``SearchError`` (400).
- Index lag (``index_lag_searches``, default 0): Preservica's search index catches up with an ingest
  some time after it; here a folder or asset created after the setting was made is left out of the
  first ``n`` searches that would return it (counted, not timed, so tests stay off the clock).
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .entities import IO, SO, Entity
from .repository import Repository
from .versions import api_version, xip_ns

WILDCARDS = frozenset({"*", "%"})
CACHE_SIZE = 16
NARROW_LIMIT = 1000  # candidates below which a hierarchy filter walks parents instead of listing descendants

Value = str | list[str] | None


class SearchError(ValueError):
    """A query the client got wrong; the message says what (answer 400)."""


@dataclass(frozen=True)
class IndexedField:
    name: str
    display: str
    match: str  # text | keyword | parent | hierarchy | identifier | date | none
    value: Callable[[Entity, Repository], Value]
    multi: bool = False

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def index(self) -> str:
        return self.name.split(".", 1)[1]


def _hierarchy(entity: Entity, repo: Repository) -> Value:
    return repo.ancestors(entity.ref) or None


def _identifiers(entity: Entity, repo: Repository) -> Value:
    return [f"{i.type} {i.value}" for i in entity.identifiers] or None


FIELDS: dict[str, IndexedField] = {
    f.name: f
    for f in (
        IndexedField("xip.reference", "Reference", "keyword", lambda e, r: e.ref),
        IndexedField("xip.title", "Title", "text", lambda e, r: e.title),
        IndexedField("xip.description", "Description", "text", lambda e, r: e.description or None),
        IndexedField("xip.document_type", "Document type", "keyword", lambda e, r: e.kind),
        IndexedField("xip.parent_ref", "Parent reference", "parent", lambda e, r: e.parent),
        IndexedField("xip.parent_hierarchy", "Parent hierarchy", "hierarchy", _hierarchy, multi=True),
        IndexedField("xip.security_descriptor", "Security tag", "keyword", lambda e, r: e.security_tag),
        IndexedField("xip.identifier", "Identifier", "identifier", _identifiers, multi=True),
        IndexedField("xip.created", "Created", "date", lambda e, r: e.created),
        IndexedField("xip.full_text", "Full text", "none", lambda e, r: None),
    )
}
SHORT_NAMES = frozenset(f.short_name for f in FIELDS.values())


def indexed_fields(version: str) -> list[dict[str, Any]]:
    """The ``/api/content/indexed-fields`` value list."""
    uri = xip_ns(api_version(version))
    return [
        {
            "shortName": f.short_name,
            "index": f.index,
            "uri": uri,
            "displayName": f.display,
            "multiValued": f.multi,
            "sortable": f.match != "none",
        }
        for f in FIELDS.values()
    ]


# --------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class FieldFilter:
    name: str
    values: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True)
class SortSpec:
    fields: tuple[str, ...]
    descending: bool = False


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    filters: tuple[FieldFilter, ...] = ()
    sort: tuple[SortSpec, ...] = ()
    within: str | None = None

    @property
    def requested_fields(self) -> list[str]:
        """Field names in ``fields`` (the defaults for ``metadata`` when none is given)."""
        return [f.name for f in self.filters]


def _known(name: Any, where: str) -> str:
    if not isinstance(name, str) or name not in FIELDS:
        raise SearchError(f"unknown field {name!r} in {where}; see /api/content/indexed-fields")
    return name


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list) and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        return tuple(str(v) for v in value)
    raise SearchError(f"{where} must be a string or a list of strings")


def _parse_filter(raw: Any, position: int) -> FieldFilter:
    where = f"q.fields[{position}]"
    if not isinstance(raw, dict):
        raise SearchError(f"{where} must be an object with name and values")
    name = _known(raw.get("name"), where)
    operator = raw.get("operator")
    if operator is not None and (not isinstance(operator, str) or operator.upper() not in ("NOT", "IS", "")):
        raise SearchError(f"{where}.operator must be NOT (or absent), not {operator!r}")
    negate = isinstance(operator, str) and operator.upper() == "NOT"
    return FieldFilter(name, _strings(raw.get("values"), f"{where}.values"), negate)


def _parse_sort(raw: Any, position: int) -> SortSpec:
    where = f"q.sort[{position}]"
    if not isinstance(raw, dict):
        raise SearchError(f"{where} must be an object with sortFields and sortOrder")
    fields = _strings(raw.get("sortFields"), f"{where}.sortFields")
    if not fields:
        raise SearchError(f"{where}.sortFields must name at least one field")
    for name in fields:
        _known(name, f"{where}.sortFields")
    order = raw.get("sortOrder", "asc")
    if not isinstance(order, str) or order.lower() not in ("asc", "desc"):
        raise SearchError(f"{where}.sortOrder must be asc or desc, not {order!r}")
    return SortSpec(fields, order.lower() == "desc")


def parse_query(raw: str | None, within: str | None = None) -> SearchQuery:
    """The ``q`` parameter (a JSON string) as a ``SearchQuery``; ``SearchError`` if malformed."""
    if raw is None or not raw.strip():
        return SearchQuery(within=within)
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise SearchError(f'q is not valid JSON ({exc}); expected e.g. {{"q": "%"}}') from None
    if not isinstance(doc, dict):
        raise SearchError('q must be a JSON object such as {"q": "%", "fields": []}')
    text = doc.get("q", "")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise SearchError("q.q must be a string")
    fields = doc.get("fields")
    sort = doc.get("sort")
    fields = [] if fields is None else fields
    sort = [] if sort is None else sort
    if not isinstance(fields, list):
        raise SearchError("q.fields must be a list")
    if not isinstance(sort, list):
        raise SearchError("q.sort must be a list")
    return SearchQuery(
        text=text.strip(),
        filters=tuple(_parse_filter(f, i) for i, f in enumerate(fields)),
        sort=tuple(_parse_sort(s, i) for i, s in enumerate(sort)),
        within=within,
    )


def parse_metadata(values: Iterable[str]) -> list[str]:
    """``metadata`` params (comma lists and/or repeated keys) as known field names, deduplicated.

    A bare short name (``xip``) stands for every field of that schema.
    """
    out: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if not name:
                continue
            if name in SHORT_NAMES:
                out.update(dict.fromkeys(f for f in FIELDS if f.startswith(name + ".")))
                continue
            out[_known(name, "metadata")] = None
    return list(out)


# --------------------------------------------------------------------------- matching
Predicate = Callable[[Entity], bool]


_RANGE = re.compile(r"^\[\s*(\S+)\s+TO\s+(\S+)\s*\]$", re.IGNORECASE)


def _date_matcher(value: str) -> Predicate:
    text = value.strip()
    match = _RANGE.match(text)
    if match is None:
        return lambda entity: entity.created.startswith(text)
    low, high = match.group(1), match.group(2)

    def in_range(entity: Entity) -> bool:
        created = entity.created
        if low not in WILDCARDS and created < low:
            return False
        return high in WILDCARDS or created[: len(high)] <= high

    return in_range


def _any_value(values: Sequence[str]) -> bool:
    return any(v.strip() in WILDCARDS for v in values)


def _identifier_refs(values: Sequence[str], repo: Repository) -> set[str]:
    """Refs of the entities with an identifier of one of ``values`` (``"<value>"`` or ``"<type> <value>"``)."""
    refs: set[str] = set()
    for value in (v.strip().lower() for v in values if v.strip()):
        refs |= repo.refs_with_identifier_value(value)
        id_type, _, id_value = value.partition(" ")
        if id_value:
            for ref in repo.refs_with_identifier_value(id_value.strip()):
                entity = repo.get(ref)
                if entity and any(
                    i.type.lower() == id_type and i.value.lower() == id_value.strip() for i in entity.identifiers
                ):
                    refs.add(ref)
    return refs


def _narrowed(query: SearchQuery, repo: Repository) -> set[str] | None:
    """The refs a positive identifier filter allows (an index lookup), or ``None`` to scan every entity.

    Preservica's search is an index: a query by identifier costs the same whatever the repository holds. The
    emulator scans, so a query naming identifiers starts from the entities that carry them instead.
    """
    allowed: set[str] | None = None
    for flt in query.filters:
        values = [v for v in flt.values if v.strip()]
        if flt.negate or FIELDS[flt.name].match != "identifier" or not values or _any_value(values):
            continue
        refs = _identifier_refs(values, repo)
        allowed = refs if allowed is None else allowed & refs
    return allowed


def _field_predicate(flt: FieldFilter, repo: Repository, few: bool = False) -> Predicate | None:
    """A predicate for one filter's positive form, or ``None`` when it restricts nothing.

    ``few``: the candidates are a handful (``_narrowed``), so a hierarchy filter walks each one's parents
    rather than listing everything below the folder.
    """
    values = [v for v in flt.values if v.strip()]
    if not values or _any_value(values):
        return None
    spec = FIELDS[flt.name]
    lowered = [v.strip().lower() for v in values]
    if spec.match == "text":
        needles = [v.strip("*%") for v in lowered]
        if any(not n for n in needles):
            return None
        attr = "title_lc" if flt.name == "xip.title" else "description_lc"
        return lambda e: any(n in getattr(e, attr) for n in needles)
    if spec.match == "keyword":
        wanted = frozenset(lowered)
        if flt.name == "xip.reference":
            return lambda e: e.ref in wanted
        if flt.name == "xip.document_type":
            return lambda e: e.kind.lower() in wanted
        return lambda e: e.security_tag.lower() in wanted
    if spec.match == "parent":
        parents = frozenset(lowered)
        return lambda e: e.parent is not None and e.parent in parents
    if spec.match == "hierarchy" and few:
        folders = frozenset(lowered)
        return lambda e: any(a.lower() in folders for a in repo.ancestors(e.ref))
    if spec.match == "hierarchy":
        below: set[str] = set()
        for folder in lowered:
            if repo.get(folder, SO) is not None:
                below |= repo.descendants(folder)
        return lambda e: e.ref in below
    if spec.match == "identifier":
        refs = _identifier_refs(values, repo)
        return lambda e: e.ref in refs
    if spec.match == "date":
        matchers = [_date_matcher(v) for v in values]
        return lambda e: any(m(e) for m in matchers)
    return lambda e: False  # "none": nothing but wildcards matches


def _text_predicate(text: str) -> Predicate | None:
    if text in WILDCARDS or not text:
        return None
    if text.lower().startswith("id:"):
        ref = text[3:].strip().lower()
        return lambda e: e.ref == ref
    terms = [t.strip("*%").lower() for t in text.split()]
    terms = [t for t in terms if t]
    if not terms:
        return None

    def matches(entity: Entity) -> bool:
        for term in terms:
            if term in entity.title_lc or term in entity.description_lc:
                continue
            if any(term in i.value.lower() for i in entity.identifiers):
                continue
            return False
        return True

    return matches


def _sort_key(name: str, repo: Repository, descending: bool) -> Callable[[Entity], tuple[int, str]]:
    spec = FIELDS[name]
    missing_rank = 0 if descending else 1  # missing values last in both directions

    def key(entity: Entity) -> tuple[int, str]:
        value = spec.value(entity, repo)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None or value == "":
            return (missing_rank, "")
        return (1 - missing_rank, value.lower())

    return key


class SearchEngine:
    """Runs queries against one repository; results are cached per repository version."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self._cache: OrderedDict[tuple[SearchQuery, int], list[Entity]] = OrderedDict()
        self._lock = threading.Lock()
        self.index_lag = 0
        self._lag_after_seq = 0  # entities with a higher ``seq`` lag (created after the setting)
        self._unindexed: dict[str, int] = {}  # ref -> searches it is still left out of

    def set_index_lag(self, searches: int) -> None:
        """Leave entities created from now on out of the first ``searches`` searches that match them."""
        with self.repository.lock:
            latest = max((e.seq for e in self.repository.entities((SO, IO))), default=0)
        with self._lock:
            self.index_lag = searches
            self._lag_after_seq = latest
            self._unindexed.clear()

    def _lagging(self, hits: list[Entity]) -> list[Entity]:
        """``hits`` less what the index has not caught up with yet (and one search closer to it)."""
        if not self.index_lag:
            return hits
        kept = []
        with self._lock:
            for entity in hits:
                if entity.seq > self._lag_after_seq:
                    left = self._unindexed.setdefault(entity.ref, self.index_lag)
                    if left > 0:
                        self._unindexed[entity.ref] = left - 1
                        continue
                kept.append(entity)
        return kept

    def search(self, query: SearchQuery) -> list[Entity]:
        """Every hit the index holds yet, in the query's order (maybe a cached list: do not change it)."""
        return self._lagging(self._search(query))

    def _search(self, query: SearchQuery) -> list[Entity]:
        repo = self.repository
        with repo.lock:
            version = repo.version
            key = (query, version)
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
                    return cached
            allowed = _narrowed(query, repo)
            if allowed is None:
                candidates = repo.entities((SO, IO))
            else:  # in insertion order, as a scan finds them
                found = (repo.get(ref) for ref in allowed)
                candidates = sorted((e for e in found if e is not None and e.kind in (SO, IO)), key=lambda e: e.seq)
            few = allowed is not None and len(allowed) <= NARROW_LIMIT
            predicates: list[tuple[Predicate, bool]] = []
            if query.within is not None:
                below = repo.descendants(query.within)
                predicates.append((lambda e: e.ref in below, False))
            text = _text_predicate(query.text)
            if text is not None:
                predicates.append((text, False))
            for flt in query.filters:
                predicate = _field_predicate(flt, repo, few)
                if predicate is not None:
                    predicates.append((predicate, flt.negate))
        # The scan runs outside the lock on a snapshot; the result is cached for ``version``.
        hits = [e for e in candidates if all(p(e) != negate for p, negate in predicates)]
        if query.sort:
            with repo.lock:
                hits.sort(key=lambda e: e.ref)
                for spec in reversed(query.sort):
                    for name in reversed(spec.fields):
                        hits.sort(key=_sort_key(name, repo, spec.descending), reverse=spec.descending)
        with self._lock:
            self._cache[key] = hits
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return hits

    def page(self, query: SearchQuery, start: int, maximum: int) -> tuple[int, list[Entity]]:
        """``(totalHits, hits[start:start+maximum])``; ``maximum == -1`` means all from ``start``."""
        hits = self.search(query)
        end = len(hits) if maximum < 0 else start + maximum
        return len(hits), hits[start:end]

    def rows(self, entities: Sequence[Entity], fields: Sequence[str]) -> list[list[dict[str, Any]]]:
        """Metadata rows aligned with ``entities``: ``[{"name", "value"}, ...]`` per entity."""
        specs = [FIELDS[name] for name in fields]
        repo = self.repository
        out: list[list[dict[str, Any]]] = []
        with repo.lock:
            for entity in entities:
                row = []
                for spec in specs:
                    value = spec.value(entity, repo)
                    if value is not None:
                        row.append({"name": spec.name, "value": value})
                out.append(row)
        return out


_ENGINES: weakref.WeakKeyDictionary[Repository, SearchEngine] = weakref.WeakKeyDictionary()
_ENGINES_LOCK = threading.Lock()


def engine_for(repository: Repository) -> SearchEngine:
    """The one ``SearchEngine`` of a repository (created on first use)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(repository)
        if engine is None:
            engine = _ENGINES[repository] = SearchEngine(repository)
        return engine
