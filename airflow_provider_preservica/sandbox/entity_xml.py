"""Entity API XML: rendering responses in the version's namespaces and reading request bodies.

Responses put wrapper elements in the EntityAPI namespace (default namespace) and entity payloads
in the XIP namespace (prefix ``xip``), as pyPreservica expects. Request bodies are matched by local
element names, so clients of any version (or none) are understood. Bodies with a DOCTYPE are
refused: the standard library parser would expand entities.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from xml.sax.saxutils import escape, quoteattr

from fastapi import Request

from .errors import SandboxHTTPError
from .repository import CO, IO, PATHS, SO, XIP_TAGS, Entity, Identifier, MetadataFragment
from .state import SandboxState
from .versions import api_version, entity_ns, xip_ns

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'


@dataclass(frozen=True)
class EntityContext:
    """Namespaces and URL base for one request (``/api/entity`` or ``/api/entity/v7.7``)."""

    api: str
    base: str  # absolute, e.g. http://127.0.0.1:8765/api/entity/v7.7

    @property
    def entity_ns(self) -> str:
        return entity_ns(self.api)

    @property
    def xip_ns(self) -> str:
        return xip_ns(self.api)

    def url(self, entity: Entity | str, kind: str | None = None) -> str:
        if isinstance(entity, Entity):
            return f"{self.base}/{entity.path}/{entity.ref}"
        return f"{self.base}/{PATHS[kind or SO]}/{entity}"

    def open(self, root: str) -> str:
        return f'{XML_DECLARATION}<{root} xmlns="{self.entity_ns}" xmlns:xip="{self.xip_ns}">'


def context(request: Request, state: SandboxState) -> EntityContext:
    pinned = request.path_params.get("api_version")
    base = str(request.base_url).rstrip("/") + "/api/entity"
    if pinned:
        base += f"/v{pinned}"
    return EntityContext(pinned or api_version(state.version), base)


def _el(tag: str, text: str | None) -> str:
    return f"<{tag}>{escape(text)}</{tag}>" if text else ""


def xip_entity(entity: Entity) -> str:
    tag = f"xip:{XIP_TAGS[entity.kind]}"
    return (
        f"<{tag}>"
        + _el("xip:Ref", entity.ref)
        + _el("xip:Title", entity.title)
        + _el("xip:Description", entity.description)
        + _el("xip:SecurityTag", entity.security_tag)
        + _el("xip:CustomType", entity.custom_type)
        + _el("xip:Parent", entity.parent)
        + f"</{tag}>"
    )


def entity_response(entity: Entity, ctx: EntityContext) -> str:
    url = ctx.url(entity)
    parts = [ctx.open("EntityResponse"), xip_entity(entity), "<AdditionalInformation>", _el("Self", url)]
    if entity.parent is not None:
        parts.append(_el("Parent", ctx.url(entity.parent, IO if entity.kind == CO else SO)))
    if entity.kind == SO:
        parts.append(_el("Children", f"{url}/children"))
    if entity.kind == IO:
        parts.append(_el("Representations", f"{url}/representations"))
    if entity.kind == CO:
        parts.append(_el("Generations", f"{url}/generations"))
    parts.append(_el("Identifiers", f"{url}/identifiers"))
    parts.append(_el("Links", f"{url}/links"))
    parts.append(_el("EventActions", f"{url}/event-actions"))
    parts.append("<Metadata>")
    for fragment in entity.metadata:
        parts.append(f"<Fragment schema={quoteattr(fragment.schema)}>{escape(url)}/metadata/{fragment.ref}</Fragment>")
    parts.append("</Metadata></AdditionalInformation></EntityResponse>")
    return "".join(parts)


def _paging(total: int, next_url: str | None) -> str:
    return "<Paging>" + _el("Next", next_url) + f"<TotalResults>{total}</TotalResults></Paging>"


def _entity_refs(tag: str, entities: Iterable[Entity], ctx: EntityContext) -> str:
    return "".join(
        f"<{tag} ref={quoteattr(e.ref)} title={quoteattr(e.title)} type={quoteattr(e.kind)}>"
        f"{escape(ctx.url(e))}</{tag}>"
        for e in entities
    )


def children_response(
    children: Sequence[Entity], total: int, next_url: str | None, self_url: str, ctx: EntityContext
) -> str:
    return (
        ctx.open("ChildrenResponse")
        + "<Children>"
        + _entity_refs("Child", children, ctx)
        + "</Children>"
        + _paging(total, next_url)
        + f"<AdditionalInformation>{_el('Self', self_url)}</AdditionalInformation></ChildrenResponse>"
    )


def entities_response(entities: Sequence[Entity], total: int, next_url: str | None, ctx: EntityContext) -> str:
    return (
        ctx.open("EntitiesResponse")
        + "<Entities>"
        + _entity_refs("Entity", entities, ctx)
        + "</Entities>"
        + _paging(total, next_url)
        + "</EntitiesResponse>"
    )


def xip_identifier(identifier: Identifier, entity_ref: str) -> str:
    return (
        "<xip:Identifier>"
        + _el("xip:ApiId", identifier.api_id)
        + _el("xip:Type", identifier.type)
        + _el("xip:Value", identifier.value)
        + _el("xip:Entity", entity_ref)
        + "</xip:Identifier>"
    )


def identifiers_response(entity_ref: str, identifiers: Sequence[Identifier], ctx: EntityContext) -> str:
    body = "".join(xip_identifier(i, entity_ref) for i in identifiers)
    return (
        ctx.open("IdentifiersResponse")
        + f"<Identifiers>{body}</Identifiers>"
        + _paging(len(identifiers), None)
        + "</IdentifiersResponse>"
    )


def identifier_response(entity_ref: str, identifier: Identifier, ctx: EntityContext) -> str:
    return ctx.open("IdentifiersResponse") + xip_identifier(identifier, entity_ref) + "</IdentifiersResponse>"


def metadata_response(entity: Entity, fragment: MetadataFragment, ctx: EntityContext) -> str:
    return (
        ctx.open("MetadataResponse")
        + f"<xip:MetadataContainer schemaUri={quoteattr(fragment.schema)}>"
        + _el("xip:Ref", fragment.ref)
        + _el("xip:Entity", entity.ref)
        + f"<xip:Content>{fragment.xml}</xip:Content></xip:MetadataContainer>"
        + f"<AdditionalInformation>{_el('Self', f'{ctx.url(entity)}/metadata/{fragment.ref}')}"
        + "</AdditionalInformation></MetadataResponse>"
    )


# --------------------------------------------------------------------------- request bodies
def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_body(body: bytes) -> ET.Element:
    """The root element of an XML request body, or a 400."""
    return parse_with_prefixes(body)[0]


def parse_with_prefixes(body: bytes) -> tuple[ET.Element, dict[str, str]]:
    """The root element and the prefix the document first declared for each namespace URI."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise SandboxHTTPError(400, "XML with a DOCTYPE or entity declarations is not accepted")
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start-ns", "start"))
    prefixes: dict[str, str] = {}
    root: ET.Element | None = None
    try:
        parser.feed(body)
        parser.close()
    except ET.ParseError as exc:
        raise SandboxHTTPError(400, f"request body is not well-formed XML: {exc}") from None
    events: list[tuple[str, Any]] = list(parser.read_events())  # type: ignore[arg-type]
    for event, item in events:
        if event == "start-ns":
            declaration = cast(tuple[str, str], item)
            prefixes.setdefault(declaration[1], declaration[0])
        elif root is None:
            root = cast(ET.Element, item)
    if root is None:
        raise SandboxHTTPError(400, "request body holds no XML element")
    return root, prefixes


def child_text(element: ET.Element, name: str) -> str | None:
    """Text of the first direct child with local name ``name`` (``""`` if empty, ``None`` if absent)."""
    for child in element:
        if local(child.tag) == name:
            return (child.text or "").strip()
    return None


def child(element: ET.Element, name: str) -> ET.Element | None:
    for item in element:
        if local(item.tag) == name:
            return item
    return None


def _split(name: str) -> tuple[str, str]:
    return (name[1:].split("}", 1)[0], name.split("}", 1)[1]) if name.startswith("{") else ("", name)


def serialize_fragment(element: ET.Element, prefixes: dict[str, str] | None = None) -> str:
    """A metadata document as text, with the namespace prefixes its author chose where known.

    Every namespace the document uses is declared on its root element.
    """
    used_elements = {_split(e.tag)[0] for e in element.iter()}
    used_attributes = {_split(a)[0] for e in element.iter() for a in e.attrib} - {""}
    unqualified = "" in used_elements
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    for uri in sorted(used_elements | used_attributes):
        if not uri:
            continue
        prefix = (prefixes or {}).get(uri, "")
        if (prefix == "" and (unqualified or uri in used_attributes)) or prefix in taken:
            prefix = next(f"ns{n}" for n in range(len(taken) + 1) if f"ns{n}" not in taken)
        chosen[uri] = prefix
        taken.add(prefix)

    def qname(name: str) -> str:
        uri, local_name = _split(name)
        prefix = chosen.get(uri, "")
        return f"{prefix}:{local_name}" if prefix else local_name

    out: list[str] = []

    def emit(node: ET.Element, root: bool) -> None:
        tag = qname(node.tag)
        out.append(f"<{tag}")
        if root:
            for uri, prefix in chosen.items():
                out.append(f" xmlns:{prefix}={quoteattr(uri)}" if prefix else f" xmlns={quoteattr(uri)}")
        for name, value in node.attrib.items():
            out.append(f" {qname(name)}={quoteattr(value)}")
        if node.text is None and len(node) == 0:
            out.append("/>")
        else:
            out.append(">" + escape(node.text or ""))
            for item in node:
                emit(item, False)
                out.append(escape(item.tail or ""))
            out.append(f"</{tag}>")

    emit(element, True)
    return "".join(out)


def check_fragment_xml(text: str) -> str:
    """Re-serialised metadata XML (drops any XML declaration); ``ValueError`` if malformed."""
    try:
        root, prefixes = parse_with_prefixes(text.encode("utf-8"))
    except SandboxHTTPError as exc:
        raise ValueError(f"metadata XML is not usable: {exc.message}") from None
    return serialize_fragment(root, prefixes)


def parse_metadata_body(body: bytes) -> tuple[str, str, str | None, str | None]:
    """``(schema, xml, entity_ref, fragment_ref)`` of a ``MetadataContainer`` body."""
    root, prefixes = parse_with_prefixes(body)
    if local(root.tag) != "MetadataContainer":
        raise SandboxHTTPError(400, f"expected a MetadataContainer, not {local(root.tag)}")
    content = child(root, "Content")
    documents = list(content) if content is not None else []
    if len(documents) != 1:
        raise SandboxHTTPError(400, "MetadataContainer/Content must hold exactly one XML document")
    document = documents[0]
    schema = root.get("schemaUri") or (document.tag[1:].split("}", 1)[0] if document.tag.startswith("{") else "")
    if not schema:
        raise SandboxHTTPError(400, "metadata needs a schemaUri attribute or a namespaced document")
    return schema, serialize_fragment(document, prefixes), child_text(root, "Entity"), child_text(root, "Ref")


def parse_identifier_body(body: bytes) -> tuple[str, str, str | None]:
    """``(type, value, entity_ref)`` of an ``Identifier`` body."""
    root = parse_body(body)
    if local(root.tag) != "Identifier":
        raise SandboxHTTPError(400, f"expected an Identifier, not {local(root.tag)}")
    id_type, value = child_text(root, "Type"), child_text(root, "Value")
    if not id_type or not value:
        raise SandboxHTTPError(400, "an Identifier needs Type and Value")
    return id_type, value, child_text(root, "Entity")
