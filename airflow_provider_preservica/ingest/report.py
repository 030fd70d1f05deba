"""The ingest report: what was sent, what Preservica made of it, in words a person can read."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from airflow_provider_preservica.files.report_csv import ReportWriter
from airflow_provider_preservica.ingest.sent import SentFiles

log = logging.getLogger(__name__)
XCOM_LIST_LIMIT = 20
# What grows with the delivery: carried across a deferral in a file beside the package, not in the XCom
# (and ``sent``, which waits on disk meanwhile: ``ingest.sent``).
PER_FILE_FIELDS = (
    "skipped_existing",
    "created_refs",
    "conflicts",
    "missing_files",
    "errors",
    "warnings",
)
INLINE_STATE_LIMIT = 4096  # bytes of per-file state still carried in the XCom itself
SPILL_PREFIX = "preservica-ingest-state-"


@dataclass
class IngestReport:
    batch_id: str
    parent_ref: str
    progress_token: str | None = None
    upload_key: str | None = None
    state: str = "NOT_SUBMITTED"
    package: str | None = None
    package_kept: bool = False  # the package is still at ``package`` (keep_package=True, or a ready-made zip)
    package_bytes: int = 0
    assets_sent: int = 0
    skipped_existing: dict[str, str] = field(default_factory=dict)  # SourceID -> existing ref
    created_refs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    adopted: bool = False
    upload_seconds: float | None = None
    # SourceID -> (file name, algorithm, hex) of every asset sent, in a private SQLite file, not in memory
    sent: SentFiles = field(default_factory=SentFiles, repr=False, compare=False)
    verified: int = 0
    conflicts: list[str] = field(default_factory=list)  # same SourceID below the target, other content
    claim_key: str | None = None  # the SourceID namespace this ingest claimed its target with
    missing_files: list[str] = field(default_factory=list)  # scanned, then gone before packaging (allowed)
    # The per-file state of a deferred ingest could not be read back (resumed on another worker): the
    # runner rebuilds it from the source and takes the created assets from the Process Monitor.
    per_file_lost: bool = False
    per_file_state: dict[str, Any] | None = None  # where ``to_state`` spilled it: path, sha256
    # One entry per package of the delivery (several when it is split, ``ingest.split``): index, key,
    # progress_token, assets, bytes, state and created (once known). ``progress_token``/``upload_key`` above
    # are the first package's.
    packages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def progress_tokens(self) -> list[str]:
        tokens = [str(p["progress_token"]) for p in self.packages if p.get("progress_token")]
        return tokens or ([self.progress_token] if self.progress_token else [])

    def add_package(
        self, index: int, key: str, progress_token: str, assets: int, size: int, seconds: float | None
    ) -> None:
        """One more package in Preservica's hands (the first one's token and key are the report's own)."""
        self.packages.append(
            {"index": index, "key": key, "progress_token": progress_token, "assets": assets, "bytes": size}
        )
        self.packages.sort(key=lambda p: int(p["index"]))
        self.progress_token, self.upload_key = self.packages[0]["progress_token"], self.packages[0]["key"]
        if seconds is not None:
            self.upload_seconds = round((self.upload_seconds or 0) + seconds, 3)
            self.state = "SUBMITTED"

    def to_xcom(self) -> dict[str, Any]:
        """Small whatever the batch size: counts, the token, and at most a few refs and messages."""
        data = self._plain()
        data.pop("claim_key")
        data.pop("per_file_lost")
        data.pop("per_file_state")
        data["skipped_existing"] = len(self.skipped_existing)
        # The assets this delivery's files are in, whether this run created them or found them: a re-run with
        # nothing new still hands usable refs downstream.
        data["existing_refs"] = sorted(self.skipped_existing.values())[:XCOM_LIST_LIMIT]
        data["refs_truncated"] = max(len(self.created_refs), len(self.skipped_existing)) > XCOM_LIST_LIMIT
        data["conflicts"] = self.conflicts[:XCOM_LIST_LIMIT]
        data["created_refs"] = self.created_refs[:XCOM_LIST_LIMIT]
        data["created_count"] = len(self.created_refs)
        data["errors"] = self.errors[:XCOM_LIST_LIMIT]
        data["warnings"] = self.warnings[:XCOM_LIST_LIMIT]
        data["missing_files"] = self.missing_files[:XCOM_LIST_LIMIT]
        data["missing_count"] = len(self.missing_files)
        data["packages"] = self.packages[:XCOM_LIST_LIMIT]
        data["package_count"] = len(self.packages)
        data["progress_tokens"] = self.progress_tokens[:XCOM_LIST_LIMIT]
        return data

    def _plain(self) -> dict[str, Any]:
        """Every field but ``sent``, lists and dicts copied (``asdict`` would deep-copy ``sent`` too)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sent"}
        return {k: (type(v)(v) if isinstance(v, (list, dict)) else v) for k, v in data.items()}

    def _state_lines(self) -> Iterator[str]:
        """The per-file state as JSON Lines: the ``PER_FILE_FIELDS``, then a row per file sent."""
        yield json.dumps({name: getattr(self, name) for name in PER_FILE_FIELDS}, sort_keys=True) + "\n"
        for row in self.sent.rows():
            yield json.dumps(list(row)) + "\n"

    def to_state(self, spill_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The report, JSON-serialisable, to carry it across a deferral; the same size whatever the delivery.

        Per-file state (``PER_FILE_FIELDS`` and ``sent``) of more than ``INLINE_STATE_LIMIT`` bytes goes to a
        file in ``spill_dir`` (JSON Lines, written as a stream, readable by this account only; the XCom names
        it and its SHA-256), with the first few messages kept inline. ``from_state`` reads it back;
        :meth:`discard_spill` removes it.
        """
        data = self._plain()
        size = 0
        for line in self._state_lines():
            size += len(line.encode())
            if size > INLINE_STATE_LIMIT:
                break
        if spill_dir is None or size <= INLINE_STATE_LIMIT:
            data["sent"] = self.sent.to_json()
            return data
        name = f"{SPILL_PREFIX}{hashlib.sha256(self.batch_id.encode()).hexdigest()[:16]}-{uuid.uuid4().hex[:8]}.json"
        path = Path(spill_dir) / name
        digest = hashlib.sha256()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            for line in self._state_lines():
                digest.update(line.encode())
                handle.write(line)
        self.per_file_state = {"path": str(path), "sha256": digest.hexdigest()}
        data["per_file_state"] = self.per_file_state
        for name in PER_FILE_FIELDS:
            value = data[name]
            data[name] = value[:XCOM_LIST_LIMIT] if name in ("errors", "warnings") else type(value)()
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> IngestReport:
        data = dict(data)
        # ``sent``; ``expected_fixity`` and ``sent_source_ids`` in a state an earlier release wrote
        sent = data.pop("sent", None) or data.pop("expected_fixity", None) or []
        data.pop("expected_fixity", None)
        data.pop("sent_source_ids", None)
        report = cls(**data, sent=SentFiles.from_json(sent))
        spilled = report.per_file_state
        if not spilled:
            return report
        path = Path(str(spilled.get("path")))
        try:
            digest = hashlib.sha256()
            with path.open("rb") as handle:  # checked whole before any line is trusted
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != spilled.get("sha256"):
                raise ValueError("changed since it was written")
            with path.open(encoding="utf-8") as handle:
                per_file = json.loads(handle.readline())
                report.sent.replace_all(tuple(json.loads(line)) for line in handle)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "The per-file state of this ingest (%s) cannot be read here (%s); rebuilding it from the source",
                spilled.get("path"),
                exc,
            )
            report.per_file_lost = True
            return report
        for name in PER_FILE_FIELDS:
            if name in per_file:
                setattr(report, name, per_file[name])
        return report

    def discard_spill(self) -> None:
        """Remove the file ``to_state`` spilled, once the outcome is known."""
        if self.per_file_state:
            Path(str(self.per_file_state.get("path"))).unlink(missing_ok=True)
            self.per_file_state = None

    def summary(self) -> str:
        adopted = " (adopted from an earlier try)" if self.adopted else ""
        if len(self.packages) > 1:
            adopted = f" and {len(self.packages) - 1} more (one per package){adopted}"
        lines = [
            f"Preservica ingest of batch {self.batch_id}: {self.state}",
            f"  parent folder   : {self.parent_ref}",
            f"  progress token  : {self.progress_token or '-'}{adopted}",
            f"  package         : {self.package or '-'} ({self.package_bytes / 1048576:.1f} MiB, "
            f"{self.assets_sent} assets){self._package_whereabouts()}",
            f"  created         : {len(self.created_refs)} assets",
            f"  already present : {len(self.skipped_existing)} assets skipped (same SourceID and content below "
            "the target)",
            f"  verified        : {self.verified} assets have the fixity the manifest promised",
        ]
        if len(self.packages) > 1:
            lines += [
                f"  package {p['index']:<8}: {p.get('state') or '-'}, {p.get('assets', 0)} assets, "
                f"{p.get('bytes', 0) / 1048576:.1f} MiB, progress token {p.get('progress_token') or '-'}, key "
                f"{p.get('key') or '-'}" + (f", {p['created']} created" if p.get("created") is not None else "")
                for p in self.packages[:XCOM_LIST_LIMIT]
            ]
        for label, refs in (
            ("created refs", self.created_refs),
            ("present refs", list(self.skipped_existing.values())),
        ):
            if refs:
                more = f" and {len(refs) - XCOM_LIST_LIMIT} more" if len(refs) > XCOM_LIST_LIMIT else ""
                lines.append(f"  {label:<16}: {', '.join(sorted(refs)[:XCOM_LIST_LIMIT])}{more}")
        lines += [f"  missing         : {p} (gone before packaging; allow_missing_files)" for p in self.missing_files]
        lines += [f"  warning         : {w}" for w in self.warnings[:XCOM_LIST_LIMIT]]
        lines += [f"  conflict        : {c}" for c in self.conflicts[:XCOM_LIST_LIMIT]]
        lines += [f"  error           : {e}" for e in self.errors[:XCOM_LIST_LIMIT]]
        return "\n".join(lines)

    def _package_whereabouts(self) -> str:
        if not self.package or self.state == "NOTHING_TO_INGEST":
            return ""
        return ", kept" if self.package_kept else ", removed after upload"

    def skipped_csv(self) -> str:
        buffer = io.StringIO()
        writer = ReportWriter(buffer, lineterminator="\n")  # for a spreadsheet: formulas neutralised
        writer.writerow(["source_id", "existing_ref"])
        writer.writerows(sorted(self.skipped_existing.items()))
        return buffer.getvalue()
