"""Entity API XML: rendering responses in the version's namespaces.

Responses put wrapper elements in the EntityAPI namespace (default namespace) and entity payloads
in the XIP namespace (prefix ``xip``), as pyPreservica expects. Links are absolute and keep the
request's prefix (``EntityContext``). Request bodies are read by ``xml_bodies``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from fastapi import Request

from .entities import CO, IO, PATHS, SO, XIP_TAGS, Entity, Identifier, MetadataFragment
from .versions import api_version, entity_ns, xip_ns
from .xml_bodies import XML_DECLARATION


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


def context(request: Request, version: str) -> EntityContext:
    """The context of one request: the version its path pins, else the server's ``version`` (``7.7.1``)."""
    pinned = request.path_params.get("api_version")
    base = str(request.base_url).rstrip("/") + "/api/entity"
    if pinned:
        base += f"/v{pinned}"
    return EntityContext(pinned or api_version(version), base)


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
