"""Seeding the sandbox repository: a deterministic generator and a JSON file loader.

Generator (``assets=N``, ``random_seed=S``): collections > series > files > assets, the same
repository for the same ``(N, S)``. Each file holds 10-40 assets, each series 5-15 files, each
collection 5-15 series. Folders carry a ``catalogue-ref`` identifier (``COL003/S02/F011``); every
asset a ``code`` (``ACC-2019-004711``) and a ``catalogue-ref`` (``COL003/S02/F011/0007``), and about
one in ten an ``isbn`` (a valid ISBN-13). Security tags: about 60 % ``open``, 25 % ``public`` and
15 % ``closed`` (one collection in ten is closed throughout). ``created`` dates fall between 2015
and 2025, a folder's before those of its contents. 100,000 assets take a few seconds.

Seed file (``file=path``): JSON, either ``{"folders": [...]}`` (a tree) or ``{"entities": [...]}`` /
a ``.jsonl`` file of flat records (the ``repository.jsonl`` form: ``type`` ``SO``/``IO``, ``parent``
ref). A tree folder may hold ``folders`` and ``assets`` lists; every entry may give ``ref``
(default: generated from the seed), ``title``, ``description``, ``security_tag`` (default
``open``), ``created`` (ISO 8601), ``source_id``, ``custom_type``, ``identifiers`` (a list of
``{"type", "value"}`` or an object ``{"type": "value" | ["v1", "v2"]}``) and ``metadata`` (a list of
``{"schema", "xml"}``). A top-level ``"parent": "<folder ref>"`` hangs the tree below an existing
folder. Example::

    {"folders": [{"title": "Estate records", "identifiers": {"catalogue-ref": "EST"},
                  "folders": [{"title": "Deeds", "assets": [
                      {"title": "Deed of sale, 1820", "security_tag": "closed",
                       "identifiers": [{"type": "code", "value": "EST-1"}]}]}]}]}
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .entities import IO, SO, Entity, Identifier, MetadataFragment, RepositoryError, check_ref, iso_timestamp
from .entity_records import read_jsonl, record_to_entity
from .xml_bodies import check_fragment_xml

if TYPE_CHECKING:
    from .repository import Repository

START_EPOCH = 1420070400  # 2015-01-01
END_EPOCH = 1767225599  # 2025-12-31

PEOPLE = (
    "Ada Lovelace", "Isambard Brunel", "Mary Seacole", "John Snow", "Octavia Hill", "Thomas Telford",
    "Elizabeth Fry", "William Morris", "Florence Nightingale", "Joseph Bazalgette", "Emmeline Pankhurst",
    "Charles Babbage", "Gertrude Jekyll", "Robert Owen", "Beatrix Potter", "Josiah Wedgwood",
)  # fmt: skip
PLACES = (
    "Bristol", "Leeds", "York", "Norwich", "Bath", "Exeter", "Durham", "Lincoln", "Chester", "Oxford",
    "Cambridge", "Canterbury", "Whitby", "Kendal", "Ludlow", "Hexham", "Truro", "Ely", "Wells", "Ripon",
)  # fmt: skip
ORGANISATIONS = (
    "Board of Works", "Harbour Commission", "Railway Company", "Literary Society", "Poor Law Union",
    "Waterworks Company", "Agricultural Society", "Parish Council", "Mechanics' Institute", "Infirmary",
)  # fmt: skip
SERIES = (
    "Correspondence", "Minutes", "Photographs", "Maps and plans", "Accounts", "Deeds", "Press cuttings",
    "Oral histories", "Reports", "Architectural drawings", "Registers", "Sound recordings",
)  # fmt: skip
ITEMS = {
    "Correspondence": ("Letter from {p} to {q}", "Telegram from {p}", "Draft reply to {p}"),
    "Minutes": ("Minutes of the {o}, {d}", "Agenda of the {o}, {d}"),
    "Photographs": ("Photograph of {l} harbour", "Portrait of {p}", "View of {l} high street"),
    "Maps and plans": ("Map of {l}", "Plan of the {o} buildings at {l}", "Survey of {l} parish"),
    "Accounts": ("Ledger of the {o}, {y}", "Cash book, {y}", "Receipt for works at {l}"),
    "Deeds": ("Conveyance of land at {l}", "Lease to {p}", "Deed of sale, {y}"),
    "Press cuttings": ("Cutting on the {o}", "Newspaper report from {l}, {d}"),
    "Oral histories": ("Interview with {p}", "Recollections of {l}"),
    "Reports": ("Annual report of the {o}, {y}", "Report on drainage at {l}"),
    "Architectural drawings": ("Elevation of the {o} hall", "Section through {l} station"),
    "Registers": ("Register of members, {y}", "Admission register, {l}"),
    "Sound recordings": ("Recording of a speech by {p}", "Field recording at {l}"),
}
DESCRIPTIONS = (
    "Digitised from the original held in the {l} search room.",
    "Concerns the affairs of the {o} and mentions {p}.",
    "Includes annotations in the hand of {p}.",
    "Part of a run of papers transferred from {l} in {y}.",
    "Fragile; handle the original only under supervision.",
    "",
)
MONTHS = ("January", "March", "May", "July", "September", "November")


class _Generator:
    def __init__(self, random_seed: int) -> None:
        self.rng = random.Random(random_seed)
        self.accession = 0

    def ref(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def words(self) -> dict[str, str]:
        rng = self.rng
        year = rng.randint(1780, 1990)
        return {
            "p": rng.choice(PEOPLE),
            "q": rng.choice(PEOPLE),
            "l": rng.choice(PLACES),
            "o": rng.choice(ORGANISATIONS),
            "y": str(year),
            "d": f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {year}",
        }

    def created(self, after: int) -> tuple[int, str]:
        epoch = self.rng.randint(after, min(after + 400 * 86400, END_EPOCH))
        return epoch, iso_timestamp(epoch)

    def isbn(self) -> str:
        digits = [9, 7, 8] + [self.rng.randint(0, 9) for _ in range(9)]
        check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
        return "".join(map(str, digits)) + str(check)

    def folder(
        self, title: str, description: str, tag: str, parent: str | None, cat: str, after: int
    ) -> tuple[Entity, int]:
        """A folder and its creation time (its contents are created later)."""
        epoch, created = self.created(after)
        entity = Entity(self.ref(), SO, title, description, tag, parent, created, created)
        entity.identifiers.append(Identifier(uuid.UUID(int=self.rng.getrandbits(128)).hex, "catalogue-ref", cat))
        return entity, epoch

    def asset(self, series: str, parent: Entity, cat: str, tag: str, after: int) -> Entity:
        rng = self.rng
        words = self.words()
        title = rng.choice(ITEMS[series]).format(**words)
        description = rng.choice(DESCRIPTIONS).format(**words)
        _, created = self.created(after)
        entity = Entity(self.ref(), IO, title, description, tag, parent.ref, created, created)
        self.accession += 1
        code = f"ACC-{created[:4]}-{self.accession:06d}"
        ids = entity.identifiers
        ids.append(Identifier(uuid.UUID(int=rng.getrandbits(128)).hex, "code", code))
        ids.append(Identifier(uuid.UUID(int=rng.getrandbits(128)).hex, "catalogue-ref", cat))
        if rng.random() < 0.1:
            ids.append(Identifier(uuid.UUID(int=rng.getrandbits(128)).hex, "isbn", self.isbn()))
        return entity


def _tag(rng: random.Random, closed_collection: bool) -> str:
    if closed_collection:
        return "closed"
    roll = rng.random()
    return "open" if roll < 0.6 else "public" if roll < 0.85 else "closed"


def generate(assets: int, random_seed: int = 42, parent: str | None = None) -> Iterator[Entity]:
    """Entities of a generated repository (parents before children), ``assets`` assets in all."""
    gen = _Generator(random_seed)
    rng = gen.rng
    made = 0
    collection_no = 0
    while made < assets:
        collection_no += 1
        words = gen.words()
        closed = rng.random() < 0.1
        col_cat = f"COL{collection_no:03d}"
        title = rng.choice(("Papers of {p}", "Records of the {o}", "{l} estate archive", "{l} {o} collection"))
        collection, col_since = gen.folder(
            title.format(**words),
            f"Archive of the {words['o']} and related families, {words['l']}.",
            "closed" if closed else "open",
            parent,
            col_cat,
            START_EPOCH,
        )
        yield collection
        for series_no in range(1, rng.randint(5, 15) + 1):
            if made >= assets:
                break
            series_kind = rng.choice(SERIES)
            series_cat = f"{col_cat}/S{series_no:02d}"
            series, series_since = gen.folder(
                series_kind,
                f"{series_kind} of the collection.",
                collection.security_tag,
                collection.ref,
                series_cat,
                col_since,
            )
            yield series
            for file_no in range(1, rng.randint(5, 15) + 1):
                if made >= assets:
                    break
                first = rng.randint(1780, 1980)
                file_cat = f"{series_cat}/F{file_no:03d}"
                title = f"{series_kind}, {first}-{first + rng.randint(0, 9)}"
                file, file_since = gen.folder(title, "", collection.security_tag, series.ref, file_cat, series_since)
                yield file
                for item_no in range(1, min(rng.randint(10, 40), assets - made) + 1):
                    yield gen.asset(series_kind, file, f"{file_cat}/{item_no:04d}", _tag(rng, closed), file_since)
                    made += 1


# --------------------------------------------------------------------------- seed files
def _identifiers(raw: Any, rng: random.Random) -> list[Identifier]:
    pairs: list[tuple[str, str]] = []
    if isinstance(raw, dict):
        for id_type, values in raw.items():
            for value in values if isinstance(values, list) else [values]:
                pairs.append((str(id_type), str(value)))
    elif isinstance(raw, list):
        for item in raw:
            if not isinstance(item, dict) or "type" not in item or "value" not in item:
                raise RepositoryError("each identifier needs a type and a value")
            pairs.append((str(item["type"]), str(item["value"])))
    elif raw is not None:
        raise RepositoryError("identifiers must be a list of {type, value} or an object")
    return [Identifier(uuid.UUID(int=rng.getrandbits(128)).hex, t, v) for t, v in pairs]


def _metadata(raw: Any, rng: random.Random) -> list[MetadataFragment]:
    out: list[MetadataFragment] = []
    for item in raw or []:
        if not isinstance(item, dict) or "schema" not in item or "xml" not in item:
            raise RepositoryError("each metadata entry needs a schema and an xml document")
        try:
            xml = check_fragment_xml(str(item["xml"]))
        except ValueError as exc:
            raise RepositoryError(str(exc)) from None
        out.append(MetadataFragment(str(uuid.UUID(int=rng.getrandbits(128), version=4)), str(item["schema"]), xml))
    return out


def _tree_entity(raw: Any, kind: str, parent: str | None, rng: random.Random) -> Entity:
    if not isinstance(raw, dict):
        raise RepositoryError("each folder and asset must be a JSON object")
    ref = check_ref(raw["ref"]) if raw.get("ref") else str(uuid.UUID(int=rng.getrandbits(128), version=4))
    created = str(raw.get("created") or iso_timestamp(time.time()))
    entity = Entity(
        ref=ref,
        kind=kind,
        title=str(raw.get("title") or ""),
        description=str(raw.get("description") or ""),
        security_tag=str(raw.get("security_tag") or "open"),
        parent=parent,
        created=created,
        modified=created,
        source_id=raw.get("source_id"),
        custom_type=raw.get("custom_type"),
    )
    entity.identifiers = _identifiers(raw.get("identifiers"), rng)
    entity.metadata = _metadata(raw.get("metadata"), rng)
    return entity


def _walk_tree(folders: Any, parent: str | None, rng: random.Random) -> Iterator[Entity]:
    if not isinstance(folders, list):
        raise RepositoryError("folders must be a list")
    for raw in folders:
        folder = _tree_entity(raw, SO, parent, rng)
        yield folder
        yield from _walk_tree(raw.get("folders", []), folder.ref, rng)
        assets = raw.get("assets", [])
        if not isinstance(assets, list):
            raise RepositoryError("assets must be a list")
        for asset in assets:
            yield _tree_entity(asset, IO, folder.ref, rng)


def load_seed_file(path: str | Path, random_seed: int = 42) -> list[Entity]:
    """The entities a seed file describes (see the module docstring for the format)."""
    path = Path(path)
    rng = random.Random(random_seed)
    if path.suffix == ".jsonl":
        return [record_to_entity(record) for record in read_jsonl(path)]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RepositoryError(f"cannot read seed file {path}: {exc}") from None
    if isinstance(doc, list):
        doc = {"entities": doc}
    if not isinstance(doc, dict):
        raise RepositoryError("a seed file holds a JSON object with folders or entities")
    out: list[Entity] = []
    if "entities" in doc:
        out.extend(record_to_entity(record) for record in doc["entities"])
    parent = check_ref(doc["parent"]) if doc.get("parent") else None
    out.extend(_walk_tree(doc.get("folders", []), parent, rng))
    return out


def seed_repository(
    repository: Repository,
    assets: int = 0,
    random_seed: int = 42,
    file: str | Path | None = None,
    replace: bool = True,
    parent: str | None = None,
) -> dict[str, Any]:
    """Fill ``repository``: clear it (``replace``), load ``file``, then generate ``assets`` assets.

    Generated collections go to the root, or below ``parent`` (an existing folder; not with
    ``replace``, which would remove it). Returns counts and seconds taken. A bad file, a ref clash
    or a missing parent raises ``RepositoryError`` and changes nothing.
    """
    if isinstance(assets, bool) or not isinstance(assets, int) or assets < 0:
        raise RepositoryError("assets must be a non-negative integer")
    if isinstance(random_seed, bool) or not isinstance(random_seed, int):
        raise RepositoryError("random_seed must be an integer")
    parent = check_ref(parent) if parent else None
    began = time.perf_counter()
    from_file = load_seed_file(file, random_seed) if file is not None else []
    generated = list(generate(assets, random_seed, parent)) if assets else []
    everything = from_file + generated
    with repository.lock:
        if replace:
            repository.check_entities(everything, alone=True)
            repository.clear()
        repository.insert_entities(everything)
        counts = repository.counts()
    repository.save()
    return {
        "success": True,
        "added": {
            "folders": sum(1 for e in everything if e.kind == SO),
            "assets": sum(1 for e in everything if e.kind == IO),
        },
        "repository": counts,
        "seconds": round(time.perf_counter() - began, 3),
    }
