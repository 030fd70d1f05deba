"""Hostile exports: a real export zip rewritten with one crafted member, for the ``hostile_export`` fault and tests.

An export zip is data from elsewhere to its client. These variants are what a broken or malicious server (or a
tampered transfer) could hand over; ``write_hostile_export(variant, export, target, size)`` copies every member
of ``export`` (stored) and adds one:

- ``sidecar_bomb``: an OPEX sidecar that inflates to ``size`` bytes (an XML document of blanks), its sizes
  honest: a few hundred KiB that declare gigabytes;
- ``zip_bomb``: a plain member that inflates to ``size`` bytes, declared honestly;
- ``lying_size``: a member whose directory entry declares 1 KiB while its data inflates to ``size`` bytes;
- ``traversal``: a member named ``../escaped.txt``; ``absolute``: one named ``/tmp/preservica-absolute.txt``;
- ``symlink``: a member that is a symbolic link to ``../../..``.

The zip is written by hand (``write_raw_zip``): ``zipfile`` cannot write data that is already compressed, nor
a directory entry that lies. Inflating blanks is cheap to build: deflate resets its history at every full
flush, so one compressed MiB of blanks is repeated ``size / MiB`` times.
"""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
VARIANTS = ("sidecar_bomb", "zip_bomb", "lying_size", "traversal", "absolute", "symlink")
SIDECAR_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<opex:OPEXMetadata xmlns:opex="http://www.openpreservationexchange.org/opex/v1.2">'
SIDECAR_TAIL = b"</opex:OPEXMetadata>\n"
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_FILE_MODE = (stat.S_IFREG | 0o644) << 16
_LINK_MODE = (stat.S_IFLNK | 0o777) << 16


@dataclass(frozen=True)
class RawMember:
    """One member as it goes into the zip: already compressed ``data`` and the sizes and CRC to declare."""

    name: str
    data: bytes
    method: int  # zipfile.ZIP_STORED or zipfile.ZIP_DEFLATED
    crc: int
    size: int  # declared uncompressed size
    mode: int = _FILE_MODE


def stored(name: str, data: bytes, mode: int = _FILE_MODE) -> RawMember:
    return RawMember(name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data), mode)


def deflated_blanks(name: str, size: int, head: bytes = b"", tail: bytes = b"") -> RawMember:
    """``head``, then blanks, then ``tail``: ``size`` bytes in all, deflated to about a thousandth of that."""
    blanks = max(size - len(head) - len(tail), 0)
    whole, rest = divmod(blanks, MiB)
    block = b" " * MiB
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    last = compressor.compress(block[:rest] + tail) + compressor.flush()
    crc = zlib.crc32(head)
    for _ in range(whole):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(block[:rest] + tail, crc)
    return RawMember(name, first + segment * whole + last, zipfile.ZIP_DEFLATED, crc, len(head) + blanks + len(tail))


def write_raw_zip(members: list[RawMember], target: Path) -> None:
    """A plain zip (no ZIP64: every size under 4 GiB) of ``members``, exactly as declared."""
    central = bytearray()
    with open(target, "wb") as out:
        for member in members:
            offset = out.tell()
            name = member.name.encode()
            sizes = (member.crc, len(member.data), member.size, len(name))
            out.write(_LOCAL.pack(0x04034B50, 20, 0, member.method, 0, 0x21, *sizes, 0))
            out.write(name)
            out.write(member.data)
            central += _CENTRAL.pack(
                0x02014B50, 0x0314, 20, 0, member.method, 0, 0x21, *sizes, 0, 0, 0, 0, member.mode, offset
            )
            central += name
        start = out.tell()
        out.write(central)
        out.write(_END.pack(0x06054B50, 0, 0, len(members), len(members), len(central), start, 0))


def _copied(export: Path) -> list[RawMember]:
    with zipfile.ZipFile(export) as archive:
        return [
            stored(info.filename, archive.read(info), info.external_attr or _FILE_MODE) for info in archive.infolist()
        ]


def hostile_member(variant: str, members: list[RawMember], size: int) -> RawMember:
    """The member ``variant`` adds to an export whose members are ``members``."""
    folder = next((m.name.rsplit("/", 1)[0] + "/" for m in members if "/" in m.name), "")
    if variant == "sidecar_bomb":
        return deflated_blanks(f"{folder}bomb.pax.zip.opex", size, SIDECAR_HEAD, SIDECAR_TAIL)
    if variant == "zip_bomb":
        return deflated_blanks(f"{folder}bomb.bin", size)
    if variant == "lying_size":
        honest = deflated_blanks(f"{folder}lying.bin", size)
        return RawMember(honest.name, honest.data, honest.method, honest.crc, 1024)
    if variant == "traversal":
        return stored(f"{folder}../../escaped.txt", b"written outside the folder\n")
    if variant == "absolute":
        return stored("/tmp/preservica-absolute.txt", b"written anywhere\n")
    if variant == "symlink":
        return stored(f"{folder}link", b"../../..", _LINK_MODE)
    raise ValueError(f"variant must be one of {list(VARIANTS)}")


def write_hostile_export(variant: str, export: Path, target: Path, size: int = 256 * MiB) -> None:
    """``export`` with the ``variant`` member added, written to ``target``."""
    members = _copied(export) if export.exists() else []
    write_raw_zip([*members, hostile_member(variant, members, size)], target)
