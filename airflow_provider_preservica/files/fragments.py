"""Descriptive metadata fragments from elsewhere: no DTDs, a size cap, file references kept in one folder.

A corrections sheet, an ingest metadata CSV and the XML files they name are written by people and systems
outside the pipeline, so they are read as untrusted input:

- **No DTD.** A ``<!DOCTYPE ...>`` is refused as soon as the parser meets it, before its internal subset
  (entity declarations) is read: entities can expand a few bytes into gigabytes ("billion laughs") or name
  files and URLs (``<!ENTITY x SYSTEM "file:///etc/passwd">``, XXE), and a descriptive record needs none.
  Character references (``&#233;``) and the five predefined entities (``&amp;`` ...) stay allowed.
- **A size cap** (``DEFAULT_MAX_FRAGMENT_BYTES``, configurable) on every fragment; a file is read at most
  one byte past the cap, so an oversized (or endless) file is never read whole.
- **File references stay inside a root folder** (the sheet's folder unless the user names another):
  absolute paths, ``..`` and symlinks that lead out of it are refused.

Refusals are ``UnsafeInputError`` (a ``PreservicaConfigError``): ``problem`` and ``fix``, the message is both.
"""

from __future__ import annotations

import os
import posixpath
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_preservica.exceptions import UnsafeInputError

DEFAULT_MAX_FRAGMENT_BYTES = 4 * 1024 * 1024  # a long EAD is a few hundred KB; 4 MiB leaves room


class _NoDoctype(ET.TreeBuilder):
    """Builds the tree like ``ET.fromstring``; the parser calls ``doctype`` at the start of a DOCTYPE."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        where = f' SYSTEM "{system}"' if system else ""
        raise UnsafeInputError(
            f"it has a DTD (<!DOCTYPE {name}{where} ...>): DTDs and entity declarations are refused, since "
            "entities can read files or expand without bound",
            "remove the <!DOCTYPE ...> and write the characters themselves (or character references such as "
            "&#233;) instead of entities",
        )


def parse_xml(data: str | bytes) -> ET.Element:
    """The root element of ``data``, refusing any DTD (``UnsafeInputError``).

    Malformed XML raises ``ET.ParseError`` as ``ET.fromstring`` does, so callers keep their own wording.
    """
    parser = ET.XMLParser(target=_NoDoctype())
    parser.feed(data)
    return parser.close()


def _size_text(limit: int) -> str:
    return f"{limit / 1048576:g} MiB" if limit >= 1048576 else f"{limit:,} bytes"


def _too_big(what: str, limit: int) -> UnsafeInputError:
    return UnsafeInputError(
        f"{what} is larger than {_size_text(limit)}, the limit for one metadata fragment",
        "split it, or raise max_fragment_bytes if a fragment this large is intended",
    )


def check_size(data: str | bytes, limit: int, what: str = "the metadata fragment") -> None:
    """Refuse a fragment held in memory (an inline cell, a fragment given in code) larger than ``limit`` bytes."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))
    if size > limit:
        raise _too_big(what, limit)


def read_capped(target: Any, limit: int, what: str) -> bytes:
    """Read ``target`` (a ``Path`` or an ``ObjectStoragePath``), at most ``limit`` bytes, never the rest.

    A local path is opened without following a symlink in its last component (``O_NOFOLLOW``): callers
    resolve it first, so a link there means it was swapped in after the containment check. ``O_NONBLOCK``
    keeps a FIFO planted under that name from hanging the task (it reads as empty, so not XML).
    """
    # An ObjectStoragePath is a ``Path`` subclass on some universal-pathlib releases (Airflow 3.1): only a
    # plain local path (no ``protocol``) is opened by name here.
    if isinstance(target, Path) and getattr(target, "protocol", None) is None:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(target, flags)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
    else:
        with target.open("rb") as handle:
            data = handle.read(limit + 1)
    if len(data) > limit:
        raise _too_big(what, limit)
    return bytes(data)


def _outside(name: str, root: str) -> UnsafeInputError:
    return UnsafeInputError(
        f"metadata file {name!r} is outside {root} (absolute paths, '..' and symlinks may not lead out of it)",
        "move the file into that folder, or let the task read files below another folder with metadata_root=",
    )


def contained_file(name: str, base: Path, root: Path) -> Path:
    """``name`` (relative to the folder ``base``, or absolute) with symlinks resolved; it must lie below ``root``."""
    path = Path(name).expanduser()
    resolved = (path if path.is_absolute() else base / path).resolve()
    root_resolved = root.expanduser().resolve()
    if not resolved.is_relative_to(root_resolved):
        raise _outside(name, str(root_resolved))
    return resolved


def _normal_url(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc, posixpath.normpath("/" + parts.path.lstrip("/"))


def contained_url(name: str, base_url: str, root_url: str) -> str:
    """The object-storage URL of ``name`` (a URL, or a key relative to the folder ``base_url``), below ``root_url``.

    ``..`` is resolved before the check (and the URL returned has none); ``file://`` URLs are local paths,
    so their symlinks are resolved too.
    """
    if "://" in name:
        url = name
    elif name.startswith("/"):
        raise _outside(name, root_url)
    else:
        url = base_url.rstrip("/") + "/" + name
    scheme, netloc, path = _normal_url(url)
    root_scheme, root_netloc, root_path = _normal_url(root_url)
    inside = path == root_path or path.startswith(root_path.rstrip("/") + "/")
    if (scheme, netloc) != (root_scheme, root_netloc) or not inside:
        raise _outside(name, root_url)
    if scheme == "file":
        try:
            path = str(contained_file(path, Path("/"), Path(root_path)))
        except UnsafeInputError:
            raise _outside(name, root_url) from None
    return f"{scheme}://{netloc}{path}"
