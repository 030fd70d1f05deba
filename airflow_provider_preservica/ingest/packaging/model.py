"""Plain data of the packaging layer: validation issues and the report of a built package.

Everything here is JSON-serialisable through ``to_dict()`` (it becomes an XCom value or an ingest report)
and holds no file content, only paths, sizes, identifiers and checksums.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from airflow_provider_preservica.files.fixity import FixityRecord

__all__ = ["AssetRecord", "FixityRecord", "FolderRecord", "PackageManifest", "Severity", "ValidationIssue"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ValidationIssue:
    """One problem with one path: what is wrong and how to fix it.

    ``path`` is relative to the source root, POSIX style (``""`` is the root itself).
    ``code`` is a stable machine-readable key (``illegal-character``, ``zero-byte`` ...).
    """

    path: str
    code: str
    problem: str
    fix: str
    severity: Severity = "error"

    def describe(self) -> str:
        where = self.path or "<source root>"
        return f"{where}: {self.problem} -> {self.fix}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)  # one per file: no per-instance dict
class AssetRecord:
    """One file of the package, which Preservica turns into one asset."""

    path: str
    source_id: str
    title: str
    security_tag: str
    size: int
    fixity: tuple[FixityRecord, ...]

    def fixity_value(self, algorithm: str = "SHA-256") -> str | None:
        for record in self.fixity:
            if record.algorithm == algorithm:
                return record.value
        return None


@dataclass(frozen=True, slots=True)  # one per file: no per-instance dict
class FolderRecord:
    """One folder of the package (``path`` ``""`` is the package's top folder)."""

    path: str
    source_id: str
    title: str
    security_tag: str


@dataclass
class PackageManifest:
    """What ``build_opex_package`` produced: the report that travels on to upload, verification and XCom.

    ``package_path`` is what to upload: the zip if one was written, else the staged folder.
    Asset and folder ``path`` values are relative to the source root (POSIX), so they are the same
    whatever machine built the package; ``source_id`` is what the ingest will match on.
    """

    package_name: str
    package_path: str
    staged_path: str | None
    zip_path: str | None
    zip_size: int | None
    zip_sha256: str | None
    fixity_algorithms: list[str]
    assets: list[AssetRecord] = field(default_factory=list)
    folders: list[FolderRecord] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    warnings: list[ValidationIssue] = field(default_factory=list)
    total_bytes: int = 0
    format: str = "OPEX"
    opex_version: str = "1.2"

    @property
    def asset_count(self) -> int:
        return len(self.assets)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, strings and numbers only (JSON and Airflow's XCom serialiser alike)."""
        data = asdict(self)
        for asset in data["assets"]:
            asset["fixity"] = list(asset["fixity"])
        data["asset_count"] = self.asset_count
        return data

    def to_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("indent", 2)
        kwargs.setdefault("ensure_ascii", False)
        return json.dumps(self.to_dict(), **kwargs)

    def write_json(self, path: str | Path) -> Path:
        """Write the full report (keep it next to, never inside, the package: it is not content)."""
        target = Path(path)
        target.write_text(self.to_json(), encoding="utf-8")
        return target

    def summary(self) -> dict[str, Any]:
        """A few counts and the package identity: small enough for XCom whatever the package size."""
        return {
            "package_name": self.package_name,
            "package_path": self.package_path,
            "format": self.format,
            "zip_size": self.zip_size,
            "zip_sha256": self.zip_sha256,
            "asset_count": self.asset_count,
            "folder_count": len(self.folders),
            "total_bytes": self.total_bytes,
            "excluded_count": len(self.excluded),
            "warning_count": len(self.warnings),
            "fixity_algorithms": list(self.fixity_algorithms),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PackageManifest:
        assets = [
            AssetRecord(
                path=a["path"],
                source_id=a["source_id"],
                title=a["title"],
                security_tag=a["security_tag"],
                size=int(a["size"]),
                fixity=tuple(FixityRecord(f["algorithm"], f["value"]) for f in a["fixity"]),
            )
            for a in data.get("assets", [])
        ]
        folders = [FolderRecord(**f) for f in data.get("folders", [])]
        warnings = [ValidationIssue(**w) for w in data.get("warnings", [])]
        return cls(
            package_name=data["package_name"],
            package_path=data["package_path"],
            staged_path=data.get("staged_path"),
            zip_path=data.get("zip_path"),
            zip_size=data.get("zip_size"),
            zip_sha256=data.get("zip_sha256"),
            fixity_algorithms=list(data.get("fixity_algorithms", [])),
            assets=assets,
            folders=folders,
            excluded=list(data.get("excluded", [])),
            warnings=warnings,
            total_bytes=int(data.get("total_bytes", 0)),
            format=data.get("format", "OPEX"),
            opex_version=data.get("opex_version", "1.2"),
        )
