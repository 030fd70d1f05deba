"""Offline packaging: validate a source tree and build OPEX packages (with fixity) for Preservica ingest.

Pure Python, no Airflow and no network: everything here can run (and be tested) anywhere.

* ``build_opex_package(source, output_dir, security_tag=...)`` -> ``PackageManifest``
* ``validate_source`` / ``scan_source`` with ``ValidationOptions`` -> ``ValidationResult``
* ``hash_file`` / ``hash_files`` (parallel, streaming) -> ``FileFixity``
* ``inspect_zip_package(path)`` -> ``ZipPackageInfo`` for a ready-made XIP or OPEX zip
* ``load_metadata_csv`` / ``EntityMetadata`` for per-asset title, description, tag, identifiers, XML
"""

from __future__ import annotations

from airflow_provider_preservica.exceptions import (
    FixityError,
    MissingSecurityTagError,
    MissingSourceFilesError,
    PackageFormatError,
    PackageValidationError,
    PackagingError,
)
from airflow_provider_preservica.files.fixity import (
    ALGORITHMS,
    CHUNK_SIZE,
    FileFixity,
    hash_file,
    hash_files,
    hash_stream,
    normalize_algorithm,
)
from airflow_provider_preservica.ingest.packaging.builder import BuildProgress, StageMode, build_opex_package
from airflow_provider_preservica.ingest.packaging.descriptive import EntityMetadata, MetadataSource, load_metadata_csv
from airflow_provider_preservica.ingest.packaging.inspection import ZipPackageInfo, inspect_zip_package
from airflow_provider_preservica.ingest.packaging.model import (
    AssetRecord,
    FixityRecord,
    FolderRecord,
    PackageManifest,
    ValidationIssue,
)
from airflow_provider_preservica.ingest.packaging.opex import OPEX_NS, OpexDocument, read_opex
from airflow_provider_preservica.ingest.packaging.source import LocalSourceTree, SourceEntry, SourceTree
from airflow_provider_preservica.ingest.packaging.source_ids import SourceIdFunc, path_source_ids, uuid_source_ids
from airflow_provider_preservica.ingest.packaging.validation import (
    ValidationOptions,
    ValidationResult,
    scan_source,
    validate_source,
)
from airflow_provider_preservica.ingest.packaging.zipper import zip_opex_tree

__all__ = [
    "ALGORITHMS",
    "CHUNK_SIZE",
    "OPEX_NS",
    "AssetRecord",
    "BuildProgress",
    "EntityMetadata",
    "FileFixity",
    "FixityError",
    "FixityRecord",
    "FolderRecord",
    "LocalSourceTree",
    "MetadataSource",
    "MissingSecurityTagError",
    "MissingSourceFilesError",
    "OpexDocument",
    "PackageFormatError",
    "PackageManifest",
    "PackageValidationError",
    "PackagingError",
    "SourceEntry",
    "SourceIdFunc",
    "SourceTree",
    "StageMode",
    "ValidationIssue",
    "ValidationOptions",
    "ValidationResult",
    "ZipPackageInfo",
    "build_opex_package",
    "hash_file",
    "hash_files",
    "hash_stream",
    "inspect_zip_package",
    "load_metadata_csv",
    "normalize_algorithm",
    "path_source_ids",
    "read_opex",
    "scan_source",
    "uuid_source_ids",
    "validate_source",
    "zip_opex_tree",
]
