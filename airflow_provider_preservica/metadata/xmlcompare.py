"""Is the fragment already there? Equality of XML documents as Preservica hands them back.

A server re-serialises what it stores: namespace prefixes change (``dc:`` becomes ``ns0:``), attributes are
reordered, indentation comes and goes. Two documents are the same here when their element trees are:
the same qualified names, attributes and text, with white space at the ends of text ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

Shape = tuple[str, tuple[tuple[str, str], ...], str, tuple["Shape", ...]]


def _shape(element: ET.Element) -> Shape:
    text = (element.text or "").strip()
    children = tuple(_shape(child) for child in element if isinstance(child.tag, str))
    # Text between child elements (mixed content) is part of the document too.
    tails = " ".join((child.tail or "").strip() for child in element if (child.tail or "").strip())
    return (str(element.tag), tuple(sorted(element.attrib.items())), f"{text}\x00{tails}", children)


def same_xml(a: str, b: str) -> bool:
    """True when both documents hold the same elements, attributes and text (prefixes and layout aside)."""
    try:
        return _shape(ET.fromstring(a)) == _shape(ET.fromstring(b))
    except ET.ParseError:
        return a.strip() == b.strip()


def root_schema(document: str) -> str:
    """The namespace URI of the document's root element (``""`` when it has none)."""
    tag = ET.fromstring(document).tag
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
