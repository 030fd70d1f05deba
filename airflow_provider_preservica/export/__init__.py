"""Export: check a downloaded export (the zip is intact, every fixity it declares matches) and unpack it
safely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_preservica._exports import lazy_exports

if TYPE_CHECKING:
    from airflow_provider_preservica.export.verify import (
        ArchiveCheck,
        DeclaredBitstream,
        declared_bitstreams,
        iter_declared_bitstreams,
        require_intact,
        verify_archive,
    )
    from airflow_provider_preservica.files.unpack import Unpacked, unpack_zip

__all__ = [
    "ArchiveCheck",
    "DeclaredBitstream",
    "Unpacked",
    "declared_bitstreams",
    "iter_declared_bitstreams",
    "require_intact",
    "unpack_zip",
    "verify_archive",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ArchiveCheck": ".verify",
        "DeclaredBitstream": ".verify",
        "Unpacked": "..files.unpack",
        "declared_bitstreams": ".verify",
        "iter_declared_bitstreams": ".verify",
        "require_intact": ".verify",
        "unpack_zip": "..files.unpack",
        "verify_archive": ".verify",
    },
)
