"""Entity API (XML): look entities up, walk children, manage identifiers, folders and metadata."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from airflow_provider_preservica.client.namespaces import Namespaces, child_text, local_name
from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import KIND_NAMES as KIND_NAMES  # re-exported: its old home
from airflow_provider_preservica.exceptions import (
    EntityNotFoundError,
    EntityTypeMismatchError,
    PreservicaConfigError,
    PreservicaHTTPError,
)
from airflow_provider_preservica.files.fragments import parse_xml

EntityType = Literal["SO", "IO", "CO"]
PATHS: dict[str, str] = {"SO": "structural-objects", "IO": "information-objects", "CO": "content-objects"}
TAGS: dict[str, str] = {"SO": "StructuralObject", "IO": "InformationObject", "CO": "ContentObject"}
KINDS_BY_TAG: dict[str, str] = {tag: kind for kind, tag in TAGS.items()}
XML_HEADERS = {"Content-Type": "application/xml;charset=UTF-8"}
TEXT_HEADERS = {"Content-Type": "text/plain"}
ROOT_PARENT = "@root@"


@dataclass(frozen=True)
class FragmentLink:
    """A descriptive metadata fragment of an entity: its schema (namespace URI) and the URL that reads it."""

    schema: str
    url: str


@dataclass(frozen=True)
class Entity:
    ref: str
    entity_type: str
    title: str = ""
    description: str = ""
    security_tag: str = ""
    parent_ref: str | None = None
    fragments: tuple[FragmentLink, ...] = ()


@dataclass(frozen=True)
class Bitstream:
    filename: str
    size: int
    fixities: dict[str, str]  # algorithm as Preservica names it (``SHA256``, ``SHA-256``...) -> hex
    content_url: str = ""  # where its bytes are: ``.../generations/{g}/bitstreams/{b}/content``

    def fixity(self, algorithm: str) -> str | None:
        wanted = algorithm.replace("-", "").upper()
        for name, value in self.fixities.items():
            if name.replace("-", "").upper() == wanted:
                return value.lower()
        return None


@dataclass(frozen=True)
class Identifier:
    api_id: str
    type: str
    value: str


class EntityService:
    """Entity calls for one server; XML namespaces follow the server's version."""

    def __init__(self, client: PreservicaClient) -> None:
        self.client = client

    @cached_property
    def ns(self) -> Namespaces:
        return Namespaces.for_version(self.client.server_version())

    # -- reads -----------------------------------------------------------------------------
    def _entity_from(self, root: ET.Element) -> Entity:
        for element in root.iter():
            kind = KINDS_BY_TAG.get(local_name(element.tag))
            if kind is not None and element.find(f"{{{self.ns.xip}}}Ref") is not None:
                return Entity(
                    ref=child_text(element, "Ref"),
                    entity_type=kind,
                    title=child_text(element, "Title"),
                    description=child_text(element, "Description"),
                    security_tag=child_text(element, "SecurityTag"),
                    parent_ref=child_text(element, "Parent") or None,
                    fragments=tuple(
                        FragmentLink(f.get("schema", ""), (f.text or "").strip())
                        for f in root.iter(f"{{{self.ns.entity}}}Fragment")
                    ),
                )
        raise PreservicaHTTPError(200, "GET", "entity", "no entity in the response")

    def get(self, ref: str, entity_type: EntityType | None = None) -> Entity:
        """The entity ``ref``; without a type, assets then folders are tried."""
        kinds: list[str] = [entity_type] if entity_type else ["IO", "SO"]
        for kind in kinds:
            if kind not in PATHS:
                raise PreservicaConfigError(f"entity type must be one of SO, IO, CO, not {kind!r}")
            try:
                return self._entity_from(self.client.get_xml(f"/api/entity/{PATHS[kind]}/{ref}"))
            except PreservicaHTTPError as exc:
                if exc.status != 404:
                    raise
        if entity_type in ("SO", "IO"):
            other = "IO" if entity_type == "SO" else "SO"
            try:
                self.client.get_xml(f"/api/entity/{PATHS[other]}/{ref}")
            except PreservicaHTTPError as exc:
                if exc.status != 404:
                    raise
            else:
                raise EntityTypeMismatchError(ref, entity_type, other)
        described = f"{entity_type} " if entity_type else ""
        raise EntityNotFoundError(f"no {described}entity with reference {ref!r} on {self.client.base_url}")

    def children(self, folder_ref: str | None = None, page_size: int = 100) -> Iterator[Entity]:
        """Direct children of a folder (or of the root), following ``Paging/Next``."""
        url: str | None = (
            f"/api/entity/structural-objects/{folder_ref}/children" if folder_ref else "/api/entity/root/children"
        )
        params: dict[str, str] | None = {"start": "0", "max": str(page_size)}
        while url:
            try:
                root = self.client.get_xml(url, params=params)
            except PreservicaHTTPError as exc:
                if exc.status == 404 and folder_ref:
                    raise EntityNotFoundError(f"no folder with reference {folder_ref!r}") from None
                raise
            for child in root.iter(f"{{{self.ns.entity}}}Child"):
                yield Entity(
                    ref=child.get("ref", ""),
                    entity_type=child.get("type", ""),
                    title=child.get("title", ""),
                    parent_ref=folder_ref,
                )
            next_link = root.find(f".//{{{self.ns.entity}}}Paging/{{{self.ns.entity}}}Next")
            url = (next_link.text or "").strip() if next_link is not None else None
            params = None  # the Next URL carries its own start/max

    def bitstreams(self, asset_ref: str, representation_type: str = "Preservation") -> list[Bitstream]:
        """Every bitstream of the asset's representations of that type, walking the structure API."""
        found: list[Bitstream] = []
        root = self.client.get_xml(f"/api/entity/information-objects/{asset_ref}/representations")
        for representation in root.iter(f"{{{self.ns.entity}}}Representation"):
            if representation.get("type") != representation_type or not representation.text:
                continue
            detail = self.client.get_xml(representation.text.strip())
            for co in detail.iter(f"{{{self.ns.xip}}}ContentObject"):
                if not co.text or len(co):
                    continue
                generations = self.client.get_xml(f"/api/entity/content-objects/{co.text.strip()}/generations")
                for generation in generations.iter(f"{{{self.ns.entity}}}Generation"):
                    generation_xml = self.client.get_xml((generation.text or "").strip())
                    for link in generation_xml.iter(f"{{{self.ns.entity}}}Bitstream"):
                        found.append(self._bitstream((link.text or "").strip()))
        return found

    def original_bitstream(
        self, asset_ref: str, filename: str, representation_type: str = "Preservation"
    ) -> Bitstream | None:
        """The bitstream ``filename`` of the asset's original generation: two GETs for a one-file asset.

        The shortest documented path to a bitstream's fixity (reference §6.3 "Structure responses": a
        representation is ``…/representations/{Type}/{n}``, a generation ``…/generations/{n}``, a bitstream
        ``…/bitstreams/{n}``, all numbered from 1): representation 1 names the content object, and the first
        bitstream of its first (original) generation is the file an ingest of one file per asset sent. Any
        other shape (several content objects, another file first, a missing link) takes the full walk of
        :meth:`bitstreams`; ``None`` when no bitstream has that name.
        """
        try:
            detail = self.client.get_xml(
                f"/api/entity/information-objects/{asset_ref}/representations/{representation_type}/1"
            )
            objects = [
                co.text.strip() for co in detail.iter(f"{{{self.ns.xip}}}ContentObject") if co.text and not len(co)
            ]
            if len(objects) == 1:
                first = self._bitstream(f"/api/entity/content-objects/{objects[0]}/generations/1/bitstreams/1")
                if first.filename == filename:
                    return first
        except PreservicaHTTPError as exc:
            if exc.status != 404:
                raise
        named = [b for b in self.bitstreams(asset_ref, representation_type) if b.filename == filename]
        return named[0] if named else None

    def _bitstream(self, url: str) -> Bitstream:
        root = self.client.get_xml(url)
        element = root.find(f".//{{{self.ns.xip}}}Bitstream")
        if element is None:
            raise PreservicaHTTPError(200, "GET", url, "no Bitstream in the response")
        fixities = {
            child_text(f, "FixityAlgorithmRef"): child_text(f, "FixityValue")
            for f in element.iter(f"{{{self.ns.xip}}}Fixity")
        }
        size_text = child_text(element, "FileSize")
        content = root.find(f".//{{{self.ns.entity}}}AdditionalInformation/{{{self.ns.entity}}}Content")
        content_url = (content.text or "").strip() if content is not None else ""
        filename = child_text(element, "Filename")
        return Bitstream(filename, int(size_text or 0), fixities, content_url or f"{url}/content")

    def find_by_identifier(self, identifier_type: str, value: str) -> list[Entity]:
        root = self.client.get_xml(
            "/api/entity/entities/by-identifier", params={"type": identifier_type, "value": value}
        )
        return [
            Entity(ref=e.get("ref", ""), entity_type=e.get("type", ""), title=e.get("title", ""))
            for e in root.iter(f"{{{self.ns.entity}}}Entity")
        ]

    def identifiers(self, ref: str, entity_type: EntityType) -> list[Identifier]:
        root = self.client.get_xml(f"/api/entity/{PATHS[entity_type]}/{ref}/identifiers")
        return [
            Identifier(child_text(i, "ApiId"), child_text(i, "Type"), child_text(i, "Value"))
            for i in root.iter(f"{{{self.ns.xip}}}Identifier")
        ]

    # -- writes ----------------------------------------------------------------------------
    def _xml(self, element: ET.Element) -> bytes:
        return ET.tostring(element, encoding="utf-8", xml_declaration=True)

    def add_identifier(self, ref: str, entity_type: EntityType, identifier_type: str, value: str) -> str:
        body = ET.Element(f"{{{self.ns.xip}}}Identifier")
        ET.SubElement(body, f"{{{self.ns.xip}}}Type").text = identifier_type
        ET.SubElement(body, f"{{{self.ns.xip}}}Value").text = value
        ET.SubElement(body, f"{{{self.ns.xip}}}Entity").text = ref
        response = self.client.request(
            "POST", f"/api/entity/{PATHS[entity_type]}/{ref}/identifiers", data=self._xml(body), headers=XML_HEADERS
        )
        root = ET.fromstring(response.content)
        return next((el.text or "" for el in root.iter() if local_name(el.tag) == "ApiId"), "")

    def set_identifier(self, ref: str, entity_type: EntityType, identifier_type: str, value: str) -> None:
        """Make ``identifier_type`` have exactly ``value`` on the entity (add, update or leave)."""
        existing = [i for i in self.identifiers(ref, entity_type) if i.type == identifier_type]
        if any(i.value == value for i in existing) and len(existing) == 1:
            return
        for identifier in existing:
            self.delete_identifier(ref, entity_type, identifier.api_id)
        self.add_identifier(ref, entity_type, identifier_type, value)

    def create_folder(
        self, title: str, parent_ref: str | None, security_tag: str, description: str = "", ref: str | None = None
    ) -> Entity:
        body = ET.Element(f"{{{self.ns.xip}}}StructuralObject")
        ET.SubElement(body, f"{{{self.ns.xip}}}Ref").text = ref or str(uuid.uuid4())
        ET.SubElement(body, f"{{{self.ns.xip}}}Title").text = title
        ET.SubElement(body, f"{{{self.ns.xip}}}Description").text = description
        ET.SubElement(body, f"{{{self.ns.xip}}}SecurityTag").text = security_tag
        if parent_ref:
            ET.SubElement(body, f"{{{self.ns.xip}}}Parent").text = parent_ref
        response = self.client.request(
            "POST", "/api/entity/structural-objects", data=self._xml(body), headers=XML_HEADERS
        )
        return self._entity_from(ET.fromstring(response.content))

    def find_folder(self, identifier_type: str, identifier_value: str) -> Entity | None:
        """The one folder carrying that identifier, or None; several are an error (which one is meant?)."""
        matches = [e for e in self.find_by_identifier(identifier_type, identifier_value) if e.entity_type == "SO"]
        if len(matches) > 1:
            refs = ", ".join(m.ref for m in matches)
            raise PreservicaConfigError(
                f"several folders carry identifier {identifier_type}={identifier_value!r} ({refs}); "
                "remove the duplicates so the pipeline knows which one to use"
            )
        return self.get(matches[0].ref, "SO") if matches else None

    def ensure_folder(
        self,
        identifier_type: str,
        identifier_value: str,
        *,
        title: str,
        parent_ref: str | None,
        security_tag: str,
        description: str = "",
    ) -> tuple[Entity, bool]:
        """The folder carrying that identifier, created (and tagged) if missing. Returns (folder, created)."""
        found = self.find_folder(identifier_type, identifier_value)
        if found is not None:
            return found, False
        folder = self.create_folder(title, parent_ref, security_tag, description)
        self.add_identifier(folder.ref, "SO", identifier_type, identifier_value)
        return folder, True

    def _metadata_container(self, ref: str, fragment: str, mref: str | None = None) -> bytes:
        content_root = parse_fragment(fragment)
        schema = content_root.tag[1:].split("}", 1)[0]
        container = ET.Element(f"{{{self.ns.xip}}}MetadataContainer", {"schemaUri": schema})
        if mref:
            ET.SubElement(container, f"{{{self.ns.xip}}}Ref").text = mref
        ET.SubElement(container, f"{{{self.ns.xip}}}Entity").text = ref
        ET.SubElement(container, f"{{{self.ns.xip}}}Content").append(content_root)
        return self._xml(container)

    def add_metadata(self, ref: str, entity_type: EntityType, fragment: str) -> None:
        """Attach a descriptive metadata fragment (an XML document with a namespace)."""
        self.client.request(
            "POST",
            f"/api/entity/{PATHS[entity_type]}/{ref}/metadata",
            data=self._metadata_container(ref, fragment),
            headers=XML_HEADERS,
        )

    def replace_metadata(self, ref: str, fragment_url: str, fragment: str) -> None:
        """Replace the fragment at ``fragment_url`` (from :attr:`Entity.fragments`) by ``fragment``."""
        mref = fragment_url.rstrip("/").rsplit("/", 1)[-1]
        self.client.request(
            "PUT", fragment_url, data=self._metadata_container(ref, fragment, mref), headers=XML_HEADERS
        )

    def delete_metadata(self, fragment_url: str) -> None:
        self.client.request("DELETE", fragment_url, expected=(200, 204))

    def metadata_document(self, fragment_url: str) -> str:
        """The XML document of one fragment (what is inside its ``MetadataContainer/Content``)."""
        root = self.client.get_xml(fragment_url)
        content = root.find(f".//{{{self.ns.xip}}}Content")
        if content is None or len(content) == 0:
            raise PreservicaHTTPError(200, "GET", fragment_url, "no MetadataContainer/Content in the response")
        return ET.tostring(content[0], encoding="unicode")

    def update_text(self, entity: Entity, title: str | None = None, description: str | None = None) -> Entity:
        """Set the title and/or description (Preservica changes only those two with this call)."""
        body = ET.Element(f"{{{self.ns.xip}}}{TAGS[entity.entity_type]}")
        ET.SubElement(body, f"{{{self.ns.xip}}}Ref").text = entity.ref
        ET.SubElement(body, f"{{{self.ns.xip}}}Title").text = entity.title if title is None else title
        description = entity.description if description is None else description
        ET.SubElement(body, f"{{{self.ns.xip}}}Description").text = description
        ET.SubElement(body, f"{{{self.ns.xip}}}SecurityTag").text = entity.security_tag
        if entity.parent_ref:
            ET.SubElement(body, f"{{{self.ns.xip}}}Parent").text = entity.parent_ref
        response = self.client.request(
            "PUT", f"/api/entity/{PATHS[entity.entity_type]}/{entity.ref}", data=self._xml(body), headers=XML_HEADERS
        )
        return self._entity_from(ET.fromstring(response.content))

    def _start_action(self, path: str, body: str, params: dict[str, str] | None = None) -> str:
        response = self.client.request(
            "PUT", path, data=body.encode("utf-8"), headers=TEXT_HEADERS, params=params, expected=(200, 202)
        )
        token = response.text.strip().strip('"')
        if not token:
            raise PreservicaHTTPError(response.status_code, "PUT", path, "no progress token in the response")
        return token

    def start_security_tag(
        self, ref: str, entity_type: EntityType, tag: str, *, include_descendants: bool = False
    ) -> str:
        """Ask for a new security tag; Preservica applies it in the background. Returns the progress token."""
        return self._start_action(
            f"/api/entity/{PATHS[entity_type]}/{ref}/security-descriptor",
            tag,
            {"includeDescendants": "true" if include_descendants else "false"},
        )

    def start_move(self, ref: str, entity_type: EntityType, parent_ref: str | None) -> str:
        """Ask to move the entity under ``parent_ref`` (``None``: a folder to the root). Returns the progress token."""
        return self._start_action(f"/api/entity/{PATHS[entity_type]}/{ref}/parent-ref", parent_ref or ROOT_PARENT)

    def security_tags(self) -> list[str]:
        """The security tags this account may use (``GET /api/security/tags``)."""
        root = self.client.get_xml("/api/security/tags")
        return [e.get("name", "") for e in root.iter() if local_name(e.tag) == "Tag" and e.get("name")]

    def update_identifier(
        self, ref: str, entity_type: EntityType, api_id: str, identifier_type: str, value: str
    ) -> None:
        body = ET.Element(f"{{{self.ns.xip}}}Identifier")
        ET.SubElement(body, f"{{{self.ns.xip}}}Type").text = identifier_type
        ET.SubElement(body, f"{{{self.ns.xip}}}Value").text = value
        ET.SubElement(body, f"{{{self.ns.xip}}}Entity").text = ref
        self.client.request(
            "PUT",
            f"/api/entity/{PATHS[entity_type]}/{ref}/identifiers/{api_id}",
            data=self._xml(body),
            headers=XML_HEADERS,
            expected=(200, 204),
        )

    def delete_identifier(self, ref: str, entity_type: EntityType, api_id: str) -> None:
        self.client.request(
            "DELETE", f"/api/entity/{PATHS[entity_type]}/{ref}/identifiers/{api_id}", expected=(200, 204)
        )


def parse_fragment(fragment: str) -> ET.Element:
    """The root element of a descriptive metadata fragment; it must be well-formed, namespaced, without DTD."""
    try:
        root = parse_xml(fragment)
    except ET.ParseError as exc:
        raise PreservicaConfigError(f"metadata fragment is not well-formed XML: {exc}") from None
    except PreservicaConfigError as exc:
        raise PreservicaConfigError(f"metadata fragment refused: {exc}") from None
    if not root.tag.startswith("{"):
        raise PreservicaConfigError(
            f'metadata fragment <{root.tag}> needs a namespace on its root element (xmlns="..."): '
            "Preservica files fragments by schema"
        )
    return root
