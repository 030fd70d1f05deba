"""XML documents read from a zip from elsewhere: capped in size, never with a DTD, and parsed as a stream.

An export's ``.opex`` sidecars and the ``.xip`` inside each PAX are data from elsewhere. A member that declares
(or turns out to hold) more than its cap is not read at all: ``DocumentRefused`` says so, and verification
reports it as a failure instead of loading gigabytes. A document with a ``<!DOCTYPE`` is refused at that
point, before any entity declaration is read (no entity expansion). XIP documents are parsed incrementally and
only the records asked for are built (``iter_records``): memory stays at one record, whatever the document's
size.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from airflow_provider_preservica.exceptions import DocumentRefused, UnsafeInputError
from airflow_provider_preservica.files.fragments import parse_xml

CHUNK = 1 << 16
#: Larger than any OPEX sidecar Preservica writes (descriptive metadata included), far below a memory problem.
MAX_SIDECAR_BYTES = 64 * 1024 * 1024
#: An XIP with events can be large; it is streamed, so the cap bounds the time (and the findings) it can cost.
MAX_XIP_BYTES = 128 * 1024 * 1024


def _refuse_doctype(name: str, *_: Any) -> None:
    raise DocumentRefused(f"declares a DTD (<!DOCTYPE {name}>): refused, entities are never expanded")


class _Records:
    """A parser target that builds only the elements named ``local`` (with their children) and drops the rest."""

    def __init__(self, local: str) -> None:
        self.local = local
        self.builder: ET.TreeBuilder | None = None
        self.depth = 0
        self.done: list[ET.Element] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.builder is None:
            if tag.rsplit("}", 1)[-1] != self.local:
                return
            self.builder = ET.TreeBuilder()
        self.depth += 1
        self.builder.start(tag, attrib)

    def end(self, tag: str) -> None:
        if self.builder is None:
            return
        self.builder.end(tag)
        self.depth -= 1
        if self.depth == 0:
            self.done.append(self.builder.close())
            self.builder = None

    def data(self, text: str) -> None:
        if self.builder is not None:
            self.builder.data(text)

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        _refuse_doctype(name)

    def close(self) -> None:
        return None


def check_size(info: zipfile.ZipInfo, cap: int, what: str) -> None:
    if info.file_size > cap:
        raise DocumentRefused(
            f"declares {info.file_size:,} bytes, more than the {cap / 1048576:g} MiB an {what} may have: not read"
        )


def _chunks(stream: IO[bytes], cap: int, what: str) -> Iterator[bytes]:
    read = 0
    while chunk := stream.read(CHUNK):
        read += len(chunk)
        if read > cap:
            raise DocumentRefused(f"holds more than the {cap / 1048576:g} MiB an {what} may have: not read further")
        yield chunk


def read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, what: str) -> bytes:
    """The member's bytes, if it declares and holds at most ``cap`` of them (``DocumentRefused`` otherwise)."""
    check_size(info, cap, what)
    with archive.open(info) as stream:
        return b"".join(_chunks(stream, cap, what))


def parse(data: bytes) -> ET.Element:
    """``ET.fromstring`` without DTDs (``DocumentRefused``); ``ET.ParseError`` for XML that is not well-formed."""
    try:
        return parse_xml(data)  # the one DTD-refusing parser, shared with metadata fragments
    except UnsafeInputError as exc:
        raise DocumentRefused(exc.problem) from None


def iter_records(stream: IO[bytes], local: str, cap: int, what: str) -> Iterator[ET.Element]:
    """Every element named ``local`` (any namespace) in the document on ``stream``, as it is parsed.

    ``ET.ParseError`` for XML that is not well-formed, ``DocumentRefused`` for a DTD or more than ``cap`` bytes.
    """
    target = _Records(local)
    parser = ET.XMLParser(target=target)
    for chunk in _chunks(stream, cap, what):
        parser.feed(chunk)
        yield from target.done
        target.done.clear()
    parser.close()
    yield from target.done
