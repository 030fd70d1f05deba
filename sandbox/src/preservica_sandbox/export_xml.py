"""The XML inside an export: OPEX sidecars of folders and assets, and each asset's XIP.

Folder sidecars (``<folder-ref>.opex``): ``Transfer/SourceID``, ``Manifest`` (``Files`` with size,
``Folders``), ``Properties`` (Title, Description, SecurityDescriptor, Identifiers),
``DescriptiveMetadata``. Asset sidecars (``<asset-ref>.pax.zip.opex``): ``Transfer/SourceID`` = the asset
ref and ``Transfer/Fixities/Fixity[@type="SHA-256"][@value]`` of the ``.pax.zip`` itself, ``Properties``,
``DescriptiveMetadata``. The XIP (``<asset-ref>.xip``, in the server version's namespace):
InformationObject, Representation, ContentObject, Generation, Bitstream — with ``PhysicalLocation`` and
every stored ``Fixity`` — then Identifier and Metadata, then EventAction (``MetadataWithEvents``).
"""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape, quoteattr

from .export_options import ExportOptions
from .export_snapshot import ContentObjectSnap, GenerationSnap, NodeSnap, RepresentationSnap
from .placeholders import PLACEHOLDER_NAMESPACE
from .xml_bodies import XML_DECLARATION

OPEX_NS = "http://www.openpreservationexchange.org/opex/v1.2"


def _el(tag: str, text: str | None) -> str:
    return f"<{tag}>{escape(text)}</{tag}>" if text else ""


def _opex_properties(node: NodeSnap) -> str:
    parts = ["<opex:Properties>", _el("opex:Title", node.title), _el("opex:Description", node.description)]
    parts.append(_el("opex:SecurityDescriptor", node.security_tag))
    if node.identifiers:
        parts.append("<opex:Identifiers>")
        for _api, id_type, value in node.identifiers:
            parts.append(f"<opex:Identifier type={quoteattr(id_type)}>{escape(value)}</opex:Identifier>")
        parts.append("</opex:Identifiers>")
    parts.append("</opex:Properties>")
    if node.metadata:
        parts.append("<opex:DescriptiveMetadata>" + "".join(xml for _r, _s, xml in node.metadata))
        parts.append("</opex:DescriptiveMetadata>")
    return "".join(parts)


def _opex_open() -> str:
    return f"{XML_DECLARATION}<opex:OPEXMetadata xmlns:opex={quoteattr(OPEX_NS)}>"


def asset_sidecar(node: NodeSnap, pax_sha256: str) -> str:
    return (
        _opex_open()
        + "<opex:Transfer>"
        + _el("opex:SourceID", node.ref)
        + f'<opex:Fixities><opex:Fixity type="SHA-256" value="{pax_sha256}"/></opex:Fixities>'
        + "</opex:Transfer>"
        + _opex_properties(node)
        + "</opex:OPEXMetadata>"
    )


def folder_sidecar(node: NodeSnap, files: list[tuple[str, str, int | None]], folders: list[str]) -> str:
    """``files``: (name, ``content``|``metadata``, size or None); ``folders``: directory names."""
    manifest = ["<opex:Manifest>"]
    if files:
        manifest.append("<opex:Files>")
        for name, file_type, size in files:
            size_attr = f' size="{size}"' if size is not None else ""
            manifest.append(f'<opex:File type="{file_type}"{size_attr}>{escape(name)}</opex:File>')
        manifest.append("</opex:Files>")
    if folders:
        manifest.append("<opex:Folders>" + "".join(_el("opex:Folder", f) for f in folders) + "</opex:Folders>")
    manifest.append("</opex:Manifest>")
    return (
        _opex_open()
        + "<opex:Transfer>"
        + _el("opex:SourceID", node.ref)
        + "".join(manifest)
        + "</opex:Transfer>"
        + _opex_properties(node)
        + "</opex:OPEXMetadata>"
    )


def generation_path(rep: RepresentationSnap, co: ContentObjectSnap, generation: GenerationSnap) -> str:
    return f"{rep.directory}/{co.ref}/Generation_{generation.index}"


def asset_xip(node: NodeSnap, options: ExportOptions, xip_ns: str) -> str:
    parts = [f"{XML_DECLARATION}<XIP xmlns={quoteattr(xip_ns)}>", "<InformationObject>", _el("Ref", node.ref)]
    parts += [_el("Title", node.title), _el("Description", node.description), _el("SecurityTag", node.security_tag)]
    parts += [_el("CustomType", node.custom_type), _el("Parent", node.parent), "</InformationObject>"]
    for rep in node.representations:
        parts += ["<Representation>", _el("InformationObject", node.ref), _el("Name", rep.name), _el("Type", rep.type)]
        parts.append("<ContentObjects>" + "".join(_el("ContentObject", co.ref) for co in rep.content_objects))
        parts.append("</ContentObjects></Representation>")
    for rep in node.representations:
        for co in rep.content_objects:
            parts += ["<ContentObject>", _el("Ref", co.ref), _el("Title", co.title), _el("Description", co.description)]
            parts += [_el("SecurityTag", co.security_tag), _el("CustomType", co.custom_type), _el("Parent", node.ref)]
            parts.append("</ContentObject>")
    for rep in node.representations:
        for co in rep.content_objects:
            for generation in co.generations:
                location = generation_path(rep, co, generation)
                parts.append(
                    f'<Generation original="{str(generation.original).lower()}" '
                    f'active="{str(generation.active).lower()}">'
                )
                parts += [_el("ContentObject", co.ref), _el("Label", f"Generation_{generation.index}")]
                parts += [_el("FormatGroup", generation.format_group), _el("EffectiveDate", generation.effective_date)]
                parts.append(
                    "<Bitstreams>"
                    + "".join(_el("Bitstream", f"{location}/{b.filename}") for b in generation.bitstreams)
                    + "</Bitstreams>"
                )
                if generation.formats:
                    parts.append("<Formats>")
                    for fmt in generation.formats:
                        values = dict(fmt)
                        valid = values.pop("valid", values.pop("Valid", "true"))
                        parts.append(f"<Format valid={quoteattr(str(valid).lower())}>")
                        for key in ("PUID", "Priority", "IdentificationMethod", "FormatName", "FormatVersion"):
                            value = values.get(key)
                            parts.append(_el(key, None if value is None else str(value)))
                        parts.append("</Format>")
                    parts.append("</Formats>")
                parts.append("</Generation>")
    for rep in node.representations:
        for co in rep.content_objects:
            for generation in co.generations:
                location = generation_path(rep, co, generation)
                for blob in generation.bitstreams:
                    parts += ["<Bitstream>", _el("Filename", blob.filename), f"<FileSize>{blob.size}</FileSize>"]
                    parts += [_el("PhysicalLocation", location), "<Fixities>"]
                    for algorithm, value in blob.fixities:
                        parts.append(
                            f"<Fixity>{_el('FixityAlgorithmRef', algorithm)}{_el('FixityValue', value)}</Fixity>"
                        )
                    parts.append("</Fixities></Bitstream>")
    for api_id, id_type, value in node.identifiers:
        parts += ["<Identifier>", _el("ApiId", api_id), _el("Type", id_type), _el("Value", value)]
        parts += [_el("Entity", node.ref), "</Identifier>"]
    for mref, schema, xml in node.metadata:
        parts.append(f"<Metadata schemaUri={quoteattr(schema)}>{_el('Ref', mref)}{_el('Entity', node.ref)}")
        parts.append(f"<Content>{xml}</Content></Metadata>")
    if options.events:
        event_ref = str(uuid.uuid5(PLACEHOLDER_NAMESPACE, f"event:{node.ref}"))
        parts.append('<EventAction commandType="AddInformationObject">')
        parts += ['<Event type="Ingest">', _el("Ref", event_ref), _el("Date", node.created), _el("User", "sandbox")]
        parts += ["</Event>", _el("Date", node.created), _el("Entity", node.ref), "</EventAction>"]
    parts.append("</XIP>")
    return "".join(parts)
