"""The repository's data model: folders, assets, content objects and what hangs off them (names follow XIP).

Plain records and the few helpers every layer shares; no behaviour beyond keeping lower-cased texts
in step. The ``Repository`` (``repository``) owns and indexes these records.

- ``Entity`` — a folder (``SO``), asset (``IO``) or content object (``CO``): ref, title, description,
  security tag, parent ref, created/modified timestamps (ISO 8601 UTC, milliseconds, ``Z``),
  SourceID, CustomType, identifiers and descriptive metadata fragments. Assets hold
  ``representations`` (``Preservation``/``Access``, each naming its content objects in order);
  content objects hold ``generations`` and their ``bitstreams``. A content object's ``parent`` is
  its asset.
- ``Bitstream`` — filename, size, fixities ``{algorithm: hex}`` and ``location``: where the bytes
  live, relative to the blob directory (or absolute), or ``None`` when no bytes are stored
  (see ``blob_store``).
- ``RepositoryError`` and its subclasses carry the HTTP status an API answers with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

SO, IO, CO = "SO", "IO", "CO"
KINDS = (SO, IO, CO)
PATHS = {SO: "structural-objects", IO: "information-objects", CO: "content-objects"}
KIND_BY_PATH = {path: kind for kind, path in PATHS.items()}
XIP_TAGS = {SO: "StructuralObject", IO: "InformationObject", CO: "ContentObject"}
REPRESENTATION_TYPES = ("Preservation", "Access")
FIXITY_ALGORITHMS = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


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
