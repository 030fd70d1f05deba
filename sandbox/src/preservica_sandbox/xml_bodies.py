"""Reading XML request bodies (and package documents) safely, and writing metadata fragments back out.

Documents are matched by local element names, so clients of any version (or none) are understood.
Bodies with a DOCTYPE or entity declarations are refused: the standard library parser would expand
entities. ``serialize_fragment`` writes a descriptive-metadata document with the namespace prefixes its
author chose. Malformed input raises ``SandboxHTTPError`` (400), which the API answers as it is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, cast
from xml.sax.saxutils import escape, quoteattr

from .errors import SandboxHTTPError

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'


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
