"""The ``ExportAction`` body of ``POST …/{ref}/exports``: four options, their defaults and their parsing.

``IncludeContent`` ``NoContent`` leaves files and the Representation/ContentObject/Generation/Bitstream
records out (the PAX holds only the XIP). ``IncludeMetadata`` ``NoMetadata`` leaves identifiers and
descriptive metadata out (title, description and security tag stay: they are properties);
``MetadataWithEvents`` adds one synthetic ``EventAction`` (the entity's creation) per asset, since the
sandbox keeps no event history. ``IncludedGenerations``: ``LatestActive`` the last active generation of
each content object, ``AllActive`` every active one, ``All`` every one. ``IncludeParentHierarchy``
``true`` wraps the export in its ancestor folders. Values are matched without regard to case; anything
else is a 400 naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import SandboxHTTPError
from .xml_bodies import child_text, local, parse_body

OPTION_VALUES: dict[str, tuple[str, ...]] = {
    "IncludeContent": ("Content", "NoContent"),
    "IncludeMetadata": ("Metadata", "NoMetadata", "MetadataWithEvents"),
    "IncludedGenerations": ("LatestActive", "AllActive", "All"),
    "IncludeParentHierarchy": ("true", "false"),
}


@dataclass(frozen=True)
class ExportOptions:
    """The four ``ExportAction`` settings; defaults are pyPreservica's (``All`` generations)."""

    include_content: str = "Content"
    include_metadata: str = "Metadata"
    included_generations: str = "All"
    include_parent_hierarchy: bool = True

    @property
    def content(self) -> bool:
        return self.include_content == "Content"

    @property
    def metadata(self) -> bool:
        return self.include_metadata != "NoMetadata"

    @property
    def events(self) -> bool:
        return self.include_metadata == "MetadataWithEvents"

    def to_json(self) -> dict[str, Any]:
        return {
            "IncludeContent": self.include_content,
            "IncludeMetadata": self.include_metadata,
            "IncludedGenerations": self.included_generations,
            "IncludeParentHierarchy": self.include_parent_hierarchy,
        }


def _canonical(name: str, value: str) -> str:
    for allowed in OPTION_VALUES[name]:
        if value.casefold() == allowed.casefold():
            return allowed
    raise SandboxHTTPError(
        400, f"{name} must be one of {', '.join(OPTION_VALUES[name])}, not {value!r}", extra={"option": name}
    )


def parse_export_action(body: bytes) -> ExportOptions:
    """The options of an ``ExportAction`` body (any namespace); 400 for anything unknown or malformed.

    Elements left out take the defaults of ``ExportOptions``.
    """
    if not body.strip():
        raise SandboxHTTPError(400, "an export needs an ExportAction XML body")
    root = parse_body(body)
    if local(root.tag) != "ExportAction":
        raise SandboxHTTPError(400, f"expected an ExportAction, not {local(root.tag)}")
    unknown = [local(child.tag) for child in root if local(child.tag) not in OPTION_VALUES]
    if unknown:
        raise SandboxHTTPError(400, f"unknown ExportAction elements: {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name in OPTION_VALUES:
        text = child_text(root, name)
        if text is not None:
            values[name] = _canonical(name, text)
    defaults = ExportOptions()
    return ExportOptions(
        include_content=values.get("IncludeContent", defaults.include_content),
        include_metadata=values.get("IncludeMetadata", defaults.include_metadata),
        included_generations=values.get("IncludedGenerations", defaults.included_generations),
        include_parent_hierarchy=values.get(
            "IncludeParentHierarchy", "true" if defaults.include_parent_hierarchy else "false"
        )
        == "true",
    )
