"""What identifies a file of a delivery in Preservica, and which of them Preservica already holds.

The rule: a file is its **target folder** (``parent_ref``), its delivery's **SourceID namespace** and its
**relative path**. The SourceID is a UUIDv5 of namespace and path (``packaging.source_ids``), so it does
not change between runs; it only means "this file is already in Preservica" for an asset *below the
target folder* whose stored content has the file's fixity. Below the target, the same SourceID with other
content is a **conflict** (another delivery with the same folder name, or a file changed since): it is
never skipped silently. The same SourceID outside the target is another delivery's file and is ignored.

Client work grows with pages, not files: one Content API search per 100 SourceIDs (filtered to assets
below the target) returns each hit's identifiers, and every asset this provider ingests carries its
content checksum as an identifier (``SourceFixity``: ``<algorithm>:<hex>``), so the comparison needs no
further request. Only an asset ingested without that identifier (by an older release or another tool)
costs a read of its bitstreams. Preservica's search index can lag an ingest by a few seconds; the
ingest's target claim (``ingest.claims``) keeps concurrent runs of one target apart meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from airflow_provider_preservica.client.entities import EntityService
from airflow_provider_preservica.client.search import SearchPager, SearchQuery

SOURCE_ID = "SourceID"
FIXITY_IDENTIFIER = "SourceFixity"
IDENTIFIER_FIELD = "xip.identifier"
LOOKUP_CHUNK = 100


@dataclass(frozen=True)
class Conflict:
    """A file whose SourceID an asset below the target already carries, with other content."""

    path: str
    source_id: str
    ref: str
    reason: str

    def describe(self) -> str:
        held = f"SourceID {self.source_id} is already held by asset {self.ref} below the target"
        return f"{self.path}: {held}, {self.reason}"


@dataclass
class Presence:
    present: dict[str, str] = field(default_factory=dict)  # SourceID -> ref of the asset with the same content
    conflicts: list[Conflict] = field(default_factory=list)


def _identifiers(value: object) -> list[tuple[str, str]]:
    """``xip.identifier`` of a hit (``"<type> <value>"``, one or a list) as (type, value) pairs."""
    items = value if isinstance(value, list) else [value] if value else []
    pairs = []
    for item in items:
        kind, _, text = str(item).partition(" ")
        pairs.append((kind, text.strip()))
    return pairs


def assets_below(
    entities: EntityService, parent_ref: str, source_ids: Iterable[str], *, workers: int = 1
) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
    """``{SourceID: [(asset ref, its identifiers), ...]}`` for the assets below ``parent_ref`` carrying them.

    One search per ``LOOKUP_CHUNK`` SourceIDs; ``workers`` of them at once on the one client and token (the
    pages are independent; over a slow link the round trips overlap, as the fixity reads do).
    """
    wanted = list(dict.fromkeys(source_ids))

    def lookup(chunk: list[str]) -> list[tuple[str, str, list[tuple[str, str]]]]:
        query = SearchQuery(
            filters={"xip.document_type": "IO", "xip.parent_hierarchy": parent_ref, IDENTIFIER_FIELD: chunk},
            fields=[IDENTIFIER_FIELD],
        )
        chunk_ids = set(chunk)
        hits = []
        for hit in SearchPager(entities.client, query, page_size=LOOKUP_CHUNK):
            identifiers = _identifiers(hit.value(IDENTIFIER_FIELD))
            for kind, value in identifiers:
                if kind == SOURCE_ID and value in chunk_ids:
                    hits.append((value, hit.reference, identifiers))
        return hits

    chunks = [wanted[start : start + LOOKUP_CHUNK] for start in range(0, len(wanted), LOOKUP_CHUNK)]
    found: dict[str, list[tuple[str, list[tuple[str, str]]]]] = defaultdict(list)
    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(min(workers, len(chunks)), thread_name_prefix="preservica-lookup") as executor:
            results = list(executor.map(lookup, chunks))
    else:
        results = [lookup(chunk) for chunk in chunks]
    for hits in results:
        for source_id, ref, identifiers in hits:
            found[source_id].append((ref, identifiers))
    return dict(found)


def assets_below_by_reading(
    entities: EntityService, parent_ref: str, source_ids: Iterable[str], max_depth: int = 64
) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
    """As :func:`assets_below`, read from the Entity API instead of the search index: per SourceID.

    For the few assets the search index has not caught up with after an ingest (reference §6.1:
    ``entities/by-identifier``, then each asset's ``Parent`` up to ``parent_ref``; folders are read once).
    """
    below: dict[str, bool] = {parent_ref: True}

    def is_below(ref: str | None) -> bool:
        chain: list[str] = []
        while ref and ref not in below and len(chain) < max_depth:
            chain.append(ref)
            ref = entities.get(ref, "SO").parent_ref
        answer = bool(ref) and below.get(str(ref), False)
        below.update(dict.fromkeys(chain, answer))
        return answer

    found: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}
    for source_id in dict.fromkeys(source_ids):
        for entity in entities.find_by_identifier(SOURCE_ID, source_id):
            if entity.entity_type == "IO" and is_below(entities.get(entity.ref, "IO").parent_ref):
                found.setdefault(source_id, []).append((entity.ref, []))
    return found


def fixity_from_identifiers(identifiers: list[tuple[str, str]], algorithm: str) -> str | None:
    """The checksum in ``algorithm`` of a ``SourceFixity`` identifier (``<algorithm>:<hex>``), or ``None``."""
    wanted = algorithm.replace("-", "").upper()
    for kind, value in identifiers:
        name, _, checksum = value.partition(":")
        if kind == FIXITY_IDENTIFIER and name.replace("-", "").upper() == wanted and checksum:
            return checksum.lower()
    return None


def _stored_fixity(
    entities: EntityService, ref: str, identifiers: list[tuple[str, str]], filename: str, algorithm: str
) -> str | None:
    """The asset's checksum in ``algorithm``: from its ``SourceFixity`` identifier, else from its bitstream."""
    sent = fixity_from_identifiers(identifiers, algorithm)
    if sent is not None:
        return sent
    bitstreams = entities.bitstreams(ref)
    named = [b for b in bitstreams if b.filename == filename] or (bitstreams if len(bitstreams) == 1 else [])
    return named[0].fixity(algorithm) if named else None


def find_present(
    entities: EntityService,
    parent_ref: str,
    files: Mapping[str, str],
    checksums: Callable[[list[str]], Mapping[str, str]],
    algorithm: str,
    *,
    read_lagging: bool = False,
    workers: int = 1,
) -> Presence:
    """Which of ``files`` (``{SourceID: relative path}``) Preservica holds below ``parent_ref``, same content.

    ``checksums(paths)`` hashes local files on demand: only files whose SourceID was found are hashed here.
    ``read_lagging``: SourceIDs the search index does not show are read from the Entity API, one by one (for
    files just ingested, which the index may not list yet; before an ingest the index is enough).
    ``workers``: searches at once (:func:`assets_below`).
    """
    hits = assets_below(entities, parent_ref, files, workers=workers)
    if read_lagging:
        unseen = [source_id for source_id in files if source_id not in hits]
        hits.update(assets_below_by_reading(entities, parent_ref, unseen))
    local = checksums([files[sid] for sid in hits]) if hits else {}
    presence = Presence()
    for source_id, candidates in hits.items():
        path = files[source_id]
        expected = local[path].lower()
        filename = path.rsplit("/", 1)[-1]
        stored = [(ref, _stored_fixity(entities, ref, ids, filename, algorithm)) for ref, ids in candidates]
        same = [ref for ref, value in stored if value == expected]
        if same:
            presence.present[source_id] = same[0]
            continue
        ref, value = stored[0]
        reason = (
            f"with other content ({algorithm} {value} in Preservica, {expected} here)"
            if value
            else f"and Preservica holds no {algorithm} fixity for it to compare"
        )
        presence.conflicts.append(Conflict(path, source_id, ref, reason))
    return presence
