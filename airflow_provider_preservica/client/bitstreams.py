"""Bitstream downloads: an asset's original files, each checked against the size and fixity Preservica holds.

The access copy (``hook.download_asset``) is what a reading room needs; a second preservation copy or a
migration needs the preservation masters themselves, byte for byte, with proof. :func:`download_bitstream`
streams one bitstream with the resumable :func:`~airflow_provider_preservica.client.export.download_to` and
then compares the file with the bitstream's ``FileSize`` and declared fixity (SHA-256 from the download
itself; otherwise SHA-512, SHA-1 or MD5, computed from the file). A file that does not match is
deleted, never left under its name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from airflow_provider_preservica.client.entities import Bitstream
from airflow_provider_preservica.client.export import Download, download_to
from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import BitstreamMismatchError, PreservicaError
from airflow_provider_preservica.files.fixity import hash_file, known_fixities, preferred_fixity


@dataclass(frozen=True)
class BitstreamDownload:
    """One checked bitstream on disk (small enough for an XCom)."""

    filename: str  # as Preservica names it
    path: str
    bytes: int
    sha256: str
    checked: str  # the fixity compared ("SHA-256", "MD5"...), or "size only"


def safe_filename(name: str) -> str:
    """``name`` as a plain file name: the last part of any path the server sent, never ``..`` or empty."""
    last = PureWindowsPath(PurePosixPath(name).name).name.strip()
    if last in ("", ".", ".."):
        raise PreservicaError(f"Preservica names a bitstream {name!r}, which cannot be a file name here")
    return last


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``stem-2.suffix``, ``stem-3.suffix``... when already in ``used`` (case-insensitively)."""
    candidate, number = name, 1
    stem, suffix = Path(name).stem, Path(name).suffix
    while candidate.lower() in used:
        number += 1
        candidate = f"{stem}-{number}{suffix}"
    used.add(candidate.lower())
    return candidate


def download_bitstream(
    client: PreservicaClient, bitstream: Bitstream, destination: str | os.PathLike[str]
) -> tuple[Download, str]:
    """Download ``bitstream`` to ``destination`` and check it; returns the download and the fixity checked.

    The second value names what was compared (``"SHA-256"``, ``"MD5"``...), or ``"size only"`` when
    Preservica declares no fixity this provider can compute.
    """
    if not bitstream.content_url:
        raise PreservicaError(f"Preservica gave no content link for bitstream {bitstream.filename!r}")
    download = download_to(client, bitstream.content_url, destination)
    path = Path(download.path)
    try:
        if bitstream.size and download.bytes != bitstream.size:
            raise BitstreamMismatchError(
                f"{bitstream.filename}: Preservica declares {bitstream.size:,} bytes, the download has "
                f"{download.bytes:,}; the file was deleted"
            )
        declared = preferred_fixity(known_fixities(bitstream.fixities.items()))
        if declared is None:
            return download, "size only"
        algorithm, expected = declared
        actual = download.sha256 if algorithm == "SHA-256" else hash_file(path, algorithm).value(algorithm)
        if actual != expected:
            raise BitstreamMismatchError(
                f"{bitstream.filename}: {algorithm} fixity mismatch: Preservica declares {expected}, the download "
                f"has {actual}; the file was deleted"
            )
        return download, algorithm
    except BaseException:
        path.unlink(missing_ok=True)
        raise
