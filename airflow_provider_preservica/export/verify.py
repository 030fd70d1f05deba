"""Check a downloaded export: the zip is intact, and every fixity its OPEX sidecars and XIP documents declare matches.

Two levels of fixity are in a Preservica export:

- the OPEX sidecar ``x.pax.zip.opex`` (or ``x.tif.opex``) declares the fixity of the member ``x.pax.zip``
  (``x.tif``) next to it; a ``Fixity`` with a ``path`` attribute names its file relative to the sidecar's
  folder. That proves the transfer: the zip the exporter built is the zip that arrived.
- inside each PAX zip, the ``.xip`` document declares every bitstream's size and the fixities Preservica
  recorded at ingest (``Bitstream/PhysicalLocation`` + ``Filename`` name its file in the PAX). That proves
  the content: the files that left the archive are the files that went in.

Both are checked, in two reads of the content that run side by side. One reads every member of the export
(hashed when a sidecar declares its fixity; zipfile checks each member's CRC-32 as it reaches the end).
The other reads the files inside each PAX and hashes each with one algorithm its XIP declares
(``fixity.PREFERENCE``). A PAX stored without compression (as exports write them) is opened in place, through a
window on the export file: nothing is extracted to disk (a compressed one is copied to a temporary file
first), and memory stays at a few chunks whatever the size.

An export is data from elsewhere, so before the reads: member names and types are checked (absolute paths,
``..``, links, names given twice: see ``archive_members``), and a zip that declares far more content than its
own size (a zip bomb) is refused unread. Sidecars and XIP documents are capped in size and never parsed with
a DTD (``bounded_xml``); the XIP is parsed as a stream. Each finding is in ``ArchiveCheck.unsafe``.
"""

from __future__ import annotations

import io
import posixpath
import shutil
import struct
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

from airflow_provider_preservica.exceptions import FixityError, PackageFormatError
from airflow_provider_preservica.files.archive_members import size_ratio_problem, unsafe_members
from airflow_provider_preservica.files.bounded_xml import (
    MAX_SIDECAR_BYTES,
    MAX_XIP_BYTES,
    DocumentRefused,
    check_size,
    iter_records,
    read_capped,
)
from airflow_provider_preservica.files.fixity import hash_stream, known_fixities, preferred_fixity
from airflow_provider_preservica.ingest.packaging.opex import read_opex

LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then file name and extra field lengths at offset 26


OnBytes = Callable[[int], None]
MakeProgress = Callable[[int, str], OnBytes]  # (total bytes, phase) -> called with each chunk's size


class _Counter:
    """Passes byte counts on, and remembers their sum."""

    def __init__(self, forward: OnBytes) -> None:
        self.forward = forward
        self.total = 0

    def __call__(self, amount: int) -> None:
        self.total += amount
        self.forward(amount)


@dataclass
class ArchiveCheck:
    files: int = 0
    fixities_checked: int = 0
    bitstreams_checked: int = 0  # files inside PAX zips checked against their XIP fixity
    mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)  # members refused: unsafe names, links, oversized, DTDs, bombs

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.missing and not self.unsafe


@dataclass(frozen=True)
class DeclaredBitstream:
    path: str  # inside the PAX zip: PhysicalLocation/Filename
    filename: str
    size: int | None
    fixities: dict[str, str]  # normalised algorithm -> lower-case hex


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes of ``source`` from ``start``: a stored member as a file."""

    def __init__(self, source: IO[bytes], start: int, length: int) -> None:
        super().__init__()
        self._source = source
        self._start = start
        self._length = length
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._length - self._position)
        if wanted <= 0:
            return 0
        self._source.seek(self._start + self._position)
        count = self._source.readinto(memoryview(buffer)[:wanted])  # type: ignore[attr-defined]
        self._position += count or 0
        return count or 0


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _text(element: ET.Element, name: str) -> str:
    child = _child(element, name)
    return (child.text or "").strip() if child is not None else ""


def _bitstream(element: ET.Element) -> DeclaredBitstream | None:
    if len(element) == 0:
        return None  # Generation/Bitstreams/Bitstream is a plain reference; the record has children
    filename, location, size_text = (_text(element, n) for n in ("Filename", "PhysicalLocation", "FileSize"))
    records = _child(element, "Fixities")
    records_list = list(records) if records is not None else []
    pairs = [(_text(f, "FixityAlgorithmRef"), _text(f, "FixityValue")) for f in records_list]
    fixities = known_fixities(pairs)
    path = posixpath.join(location, filename) if location else filename
    size = int(size_text) if size_text.isdigit() else None
    return DeclaredBitstream(path, filename, size, fixities)


def iter_declared_bitstreams(stream: IO[bytes], cap: int = MAX_XIP_BYTES) -> Iterator[DeclaredBitstream]:
    """The bitstreams the XIP document on ``stream`` declares, as it is parsed (one record in memory at a time).

    ``PackageFormatError`` for XML that is not well-formed; ``DocumentRefused`` for a DTD or more than ``cap`` bytes.
    """
    try:
        for element in iter_records(stream, "Bitstream", cap, "XIP document"):
            found = _bitstream(element)
            if found is not None:
                yield found
    except ET.ParseError as exc:
        raise PackageFormatError(f"an XIP document in the export is not well-formed XML ({exc})") from None


def declared_bitstreams(xip: bytes) -> list[DeclaredBitstream]:
    """The bitstreams an XIP document declares (any XIP namespace version)."""
    return list(iter_declared_bitstreams(io.BytesIO(xip), max(len(xip), 1)))


def _sidecar_fixities(
    archive: zipfile.ZipFile, names: set[str], refused: list[str]
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Member -> {algorithm: value} from every OPEX sidecar, and the members they name that are absent.

    Algorithms this provider does not compute are left out; the member's CRC still covers it. A sidecar over
    ``MAX_SIDECAR_BYTES`` or with a DTD is not parsed: it is added to ``refused``.
    """
    declared: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for sidecar in sorted(n for n in names if n.endswith(".opex")):
        try:
            document = read_opex(read_capped(archive, archive.getinfo(sidecar), MAX_SIDECAR_BYTES, "OPEX sidecar"))
        except DocumentRefused as exc:
            refused.append(f"{sidecar}: {exc}")
            continue
        except ValueError:
            continue
        folder = posixpath.dirname(sidecar)
        for record in document.fixities:
            target_path = getattr(record, "path", None)
            target = posixpath.join(folder, target_path) if target_path else sidecar[: -len(".opex")]
            if target not in names:
                missing.append(target)
                continue
            declared.setdefault(target, {}).update(known_fixities([(record.algorithm, record.value)]))
    return declared, missing


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, algorithms: list[str], on_bytes: OnBytes
) -> dict[str, str]:
    """Read a member to its end (zipfile checks its CRC-32 there), hashing it with ``algorithms``."""
    with archive.open(info) as stream:
        if algorithms:
            computed = hash_stream(cast(BinaryIO, stream), algorithms, on_bytes=on_bytes)
            return {record.algorithm: record.value for record in computed.records}
        while chunk := stream.read(1 << 20):
            on_bytes(len(chunk))
    return {}


def _open_pax(export: IO[bytes], archive: zipfile.ZipFile, info: zipfile.ZipInfo, scratch: Path) -> IO[bytes]:
    """A seekable file for the PAX member: a window on the export when stored, else a temporary copy.

    zipfile's own stream of a compressed member seeks backwards by decompressing again from its start, once
    per file inside: a many-file PAX would be read over and over. One copy to an anonymous temporary file in
    ``scratch`` (the export's folder, which has room for the export) is read once.
    """
    if info.compress_type != zipfile.ZIP_STORED:
        copy = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115 (returned open; the caller closes it)
        with archive.open(info) as member:
            shutil.copyfileobj(member, copy, 1 << 20)
        copy.seek(0)
        return copy
    export.seek(info.header_offset)
    signature, name_length, extra_length = LOCAL_HEADER.unpack(export.read(LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise PackageFormatError(f"member {info.filename!r} has no local header where the directory says")
    start = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
    return io.BufferedReader(_Window(export, start, info.compress_size), buffer_size=1 << 20)


def _check_bitstream(
    pax: zipfile.ZipFile, info: zipfile.ZipInfo, bitstream: DeclaredBitstream, label: str, check: ArchiveCheck,
    on_bytes: OnBytes,
) -> None:  # fmt: skip
    """One file of a PAX against its XIP record: size, CRC-32, and the preferred declared fixity."""
    if bitstream.size is not None and info.file_size != bitstream.size:
        check.mismatches.append(f"{label}: {info.file_size:,} bytes != declared {bitstream.size:,}")
        return
    declared = preferred_fixity(bitstream.fixities)
    try:
        computed = _read_member(pax, info, [declared[0]] if declared else [], on_bytes)
    except zipfile.BadZipFile:
        check.mismatches.append(f"{label}: fails its CRC-32")
        return
    if declared is None:
        return  # size and CRC only: the XIP declares no fixity this provider computes
    algorithm, value = declared
    check.fixities_checked += 1
    check.bitstreams_checked += 1
    if computed[algorithm] != value:
        check.mismatches.append(f"{label}: {algorithm} {computed[algorithm]} != declared {value}")


def _check_pax(pax_name: str, stream: IO[bytes], check: ArchiveCheck, on_bytes: OnBytes) -> None:
    """Every bitstream the PAX's XIP declares: present, of the declared size, with the declared fixity."""
    try:
        pax = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise PackageFormatError(f"{pax_name} in the export is not a readable zip: {exc}") from None
    with pax:
        infos = pax.infolist()
        bomb = size_ratio_problem(_stream_size(stream), sum(i.file_size for i in infos), what=pax_name)
        if bomb:
            check.unsafe.append(bomb)
            return
        members = {info.filename: info for info in infos}
        by_name: dict[str, list[zipfile.ZipInfo]] = {}
        for member in members.values():
            by_name.setdefault(posixpath.basename(member.filename), []).append(member)
        for xip_name in sorted(n for n in members if n.endswith(".xip")):
            try:
                _check_xip(pax, pax_name, members[xip_name], members, by_name, check, on_bytes)
            except DocumentRefused as exc:
                check.unsafe.append(f"{pax_name}/{xip_name}: {exc}")


def _stream_size(stream: IO[bytes]) -> int:
    """The size of a seekable stream (a PAX member opened in place, or its temporary copy)."""
    position = stream.tell()
    size = stream.seek(0, io.SEEK_END)
    stream.seek(position)
    return size


def _check_xip(
    pax: zipfile.ZipFile, pax_name: str, xip: zipfile.ZipInfo, members: dict[str, zipfile.ZipInfo],
    by_name: dict[str, list[zipfile.ZipInfo]], check: ArchiveCheck, on_bytes: OnBytes,
) -> None:  # fmt: skip
    """Every bitstream one XIP declares, checked as its record is parsed."""
    check_size(xip, MAX_XIP_BYTES, "XIP document")
    checked: dict[str, DeclaredBitstream] = {}  # each file is read once, however often it is declared
    with pax.open(xip) as stream:
        for bitstream in iter_declared_bitstreams(cast(IO[bytes], stream)):
            same_name = by_name.get(bitstream.filename, [])
            # Another exporter's folder layout: the one file of that name is the one declared.
            info = members.get(bitstream.path) or (same_name[0] if len(same_name) == 1 else None)
            label = f"{pax_name}/{bitstream.path}"
            earlier = checked.get(info.filename) if info is not None else None
            if info is None:
                check.missing.append(f"{label} (declared in {xip.filename})")
            elif earlier is not None:
                if (earlier.size, earlier.fixities) != (bitstream.size, bitstream.fixities):
                    check.mismatches.append(f"{label}: declared again in {xip.filename}, with another size or fixity")
            else:
                checked[info.filename] = bitstream
                _check_bitstream(pax, info, bitstream, label, check, on_bytes)


def _content_members(archive: zipfile.ZipFile) -> Iterator[zipfile.ZipInfo]:
    # In the order they are stored, so reading them all is one forward pass over the file.
    yield from sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.header_offset)


def _check_members(archive: zipfile.ZipFile, export_name: str, check: ArchiveCheck, on_bytes: OnBytes) -> None:
    """Read every member once: its CRC-32, and the fixities the OPEX sidecars declare for it."""
    declared, check.missing = _sidecar_fixities(archive, set(archive.namelist()), check.unsafe)
    for info in _content_members(archive):
        wanted = declared.get(info.filename, {})
        try:
            computed = _read_member(archive, info, sorted(wanted), on_bytes)
        except zipfile.BadZipFile:
            raise PackageFormatError(
                f"export {export_name} is damaged: member {info.filename!r} fails its CRC"
            ) from None
        for algorithm, value in wanted.items():
            check.fixities_checked += 1
            if computed[algorithm] != value:
                check.mismatches.append(f"{info.filename}: {algorithm} {computed[algorithm]} != declared {value}")


def _ignore(_: int) -> None:
    return None


def _check_member_pass(path: Path, check: ArchiveCheck, progress: MakeProgress) -> None:
    """First read: every member of the export (CRC-32, sidecar fixities)."""
    with open(path, "rb") as export, zipfile.ZipFile(export) as archive:
        names = archive.namelist()
        check.files = sum(1 for n in names if not n.endswith("/") and not n.endswith(".opex"))
        on_bytes = progress(sum(i.file_size for i in _content_members(archive)), "CRCs and transfer fixities")
        _check_members(archive, path.name, check, on_bytes)


def _check_pax_pass(path: Path, check: ArchiveCheck, progress: MakeProgress) -> None:
    """Second read: the files inside every PAX zip (XIP fixities). Its own file handle: it runs beside the first."""
    with open(path, "rb") as export, zipfile.ZipFile(export) as archive:
        paxes = [i for i in _content_members(archive) if i.filename.endswith(".pax.zip")]
        on_bytes = progress(sum(i.file_size for i in paxes), "file fixities (XIP)")
        for info in paxes:
            counted = _Counter(on_bytes)
            with _open_pax(export, archive, info, path.parent) as pax:
                _check_pax(info.filename, pax, check, counted)
            on_bytes(max(info.file_size - counted.total, 0))


def verify_archive(path: str | Path, make_progress: MakeProgress | None = None) -> ArchiveCheck:
    """Raise ``PackageFormatError`` for a damaged zip; report (not raise) fixity problems and unsafe members.

    The two reads run at the same time on two threads (hashlib and zlib release the GIL on large chunks), so
    on two or more cores verification takes about as long as one read. ``make_progress(total, phase)``
    returns the callback told of every chunk read (it must be thread-safe): once for the export's members
    (``total`` = their bytes), once for the files inside the PAX zips (``total`` = the PAX zips' bytes; the
    part of each PAX that is not a checked file is counted when that PAX is done).
    """
    path = Path(path)
    progress = make_progress or (lambda total, phase: _ignore)
    members, files = ArchiveCheck(), ArchiveCheck()
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
        unsafe = unsafe_members(infos)
        bomb = size_ratio_problem(path.stat().st_size, sum(i.file_size for i in infos), what=f"export {path.name}")
        if bomb:
            return ArchiveCheck(files=len(infos), unsafe=[bomb, *unsafe])  # not worth a read: refused as it is
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify") as pool:
            first = pool.submit(_check_member_pass, path, members, progress)
            second = pool.submit(_check_pax_pass, path, files, progress)
            first.result()  # a damaged export is reported as such, even when the second read also failed
            second.result()
    except zipfile.BadZipFile as exc:
        raise PackageFormatError(f"export {path.name} is not a readable zip: {exc}") from None
    return ArchiveCheck(
        files=members.files,
        fixities_checked=members.fixities_checked + files.fixities_checked,
        bitstreams_checked=files.bitstreams_checked,
        mismatches=members.mismatches + files.mismatches,
        missing=members.missing + files.missing,
        unsafe=unsafe + members.unsafe + files.unsafe,
    )


def require_intact(path: str | Path, make_progress: MakeProgress | None = None) -> ArchiveCheck:
    """:func:`verify_archive`, raising :class:`FixityError` with the first problems when anything is wrong."""
    check = verify_archive(path, make_progress)
    if not check.ok:
        problems = check.unsafe + check.mismatches + [f"{m}: declared but absent" for m in check.missing]
        raise FixityError(f"export {Path(path).name} fails verification: " + "; ".join(problems[:10]))
    return check
