"""XML namespaces of the Entity API, which follow the server's release (reference section 1.1)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True)
class Namespaces:
    version: str
    xip: str
    entity: str

    @classmethod
    def for_version(cls, version: str) -> Namespaces:
        parts = [int(p) for p in version.split(".")[:2] if p.isdigit()] + [0, 0]
        major, minor = parts[0], parts[1]
        suffix = f"v{major}.{minor}"
        if major == 6 and minor < 2:
            suffix = "v6.0"
        return cls(
            version=version,
            xip=f"http://preservica.com/XIP/{suffix}",
            entity=f"http://preservica.com/EntityAPI/{suffix}",
        )


def local_name(tag: str) -> str:
    """``{namespace}Name`` -> ``Name``: for documents whose namespace differs by Preservica release."""
    return tag.rsplit("}", 1)[-1]


def child_text(element: ET.Element, name: str) -> str:
    """The stripped text of ``element``'s first child with local name ``name``, or ``""``."""
    for child in element:
        if local_name(child.tag) == name:
            return (child.text or "").strip()
    return ""
