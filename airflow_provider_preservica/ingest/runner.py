"""The steps of one ingest, independent of Airflow: prepare the package, upload it, read the outcome."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from airflow_provider_preservica.client.entities import EntityService
from airflow_provider_preservica.client.monitor import IngestMessages
from airflow_provider_preservica.client.progress import Progress
from airflow_provider_preservica.client.upload import PackageUploader
from airflow_provider_preservica.exceptions import IngestConflictError, PreservicaConfigError
from airflow_provider_preservica.ingest.existing import WithoutFiles
from airflow_provider_preservica.ingest.identity import (
    FIXITY_IDENTIFIER,
    assets_below,
    assets_below_by_reading,
    find_present,
)
from airflow_provider_preservica.ingest.layout import FolderLayout, check_folder_layout
from airflow_provider_preservica.ingest.packaging import (
    LocalSourceTree,
    MissingSecurityTagError,
    PackageValidationError,
    ValidationIssue,
    build_opex_package,
    hash_files,
    inspect_zip_package,
    scan_source,
    uuid_source_ids,
)
from airflow_provider_preservica.ingest.packaging.source import SourceEntry, SourceTree
from airflow_provider_preservica.ingest.report import IngestReport
from airflow_provider_preservica.ingest.sending import BuiltPackage, SentPackage
from airflow_provider_preservica.ingest.split import (
    DEFAULT_MAX_PACKAGE_ASSETS,
    DEFAULT_MAX_PACKAGE_BYTES,
    OnlyFiles,
    PackagePlan,
    folders_of,
    in_range,
    plan_packages,
)
from airflow_provider_preservica.ingest.vanished import build_without_vanished
from airflow_provider_preservica.ingest.verify import (
    DEFAULT_VERIFY_WORKERS,
    VerifyMode,
    check_verify_mode,
    verify_fixity,
    verify_sent_identifiers,
)

log = logging.getLogger(__name__)
REHASH_SLICE = 1024  # files hashed at once when a retry rebuilds what the package promised
INDEX_WAITS = (1.0, 2.0, 4.0, 8.0)  # seconds before each new search for created assets the index lacks


class IngestCalls(Protocol):
    """What an ingest asks of Preservica: what ``PreservicaHook`` offers (pass the hook)."""

    @property
    def entities(self) -> EntityService: ...

    def package_uploader(self, *, max_concurrency: int = ...) -> PackageUploader: ...

    def ingest_messages(self, upload_key: str) -> IngestMessages: ...


class IngestRunner:
    def __init__(
        self,
        preservica: IngestCalls,
        report: IngestReport,
        *,
        security_tag: str | None,
        upload_concurrency: int = 4,
        fixity: str = "SHA-256",
        skip_existing: bool = True,
        source_id_namespace: str | None = None,
        work_dir: str | None = None,
        metadata: Any = None,
        verify: bool | VerifyMode = True,
        on_conflict: str = "fail",
        allow_missing_files: bool = False,
        folder_layout: FolderLayout = "source_folder",
        max_workers: int = DEFAULT_VERIFY_WORKERS,
        max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES,
        max_package_assets: int = DEFAULT_MAX_PACKAGE_ASSETS,
    ) -> None:
        self.preservica = preservica
        self.entities = preservica.entities
        # Built now, not at the first upload: a Connection without a tenant fails before anything is packaged.
        self.uploader = preservica.package_uploader(max_concurrency=upload_concurrency)
        self.report = report
        self.security_tag = security_tag
        self.fixity = fixity
        self.skip_existing = skip_existing
        self.source_id_namespace = source_id_namespace
        self.work_dir = work_dir
        self.metadata = metadata
        self.verify = check_verify_mode(verify)  # "stored", "ingest" or None (``ingest.verify``)
        self.on_conflict = on_conflict
        self.allow_missing_files = allow_missing_files
        self.folder_layout = check_folder_layout(folder_layout)
        if max_workers < 1:
            raise PreservicaConfigError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers
        if max_package_bytes < 1 or max_package_assets < 1:
            raise PreservicaConfigError("max_package_bytes and max_package_assets must be at least 1")
        self.max_package_bytes = max_package_bytes
        self.max_package_assets = max_package_assets

    def prepare(self, source: str | os.PathLike[str], adopted: list[list[Any]] | None = None) -> list[BuiltPackage]:
        """The packages to upload, in order; empty when every asset is already in Preservica.

        A source folder is split into packages of at most ``max_package_assets`` files and
        ``max_package_bytes`` bytes (``ingest.split``). ``adopted`` are the packages an earlier try of this
        batch sent (``InFlightJob.packages``): their files are expected, not sent again, and the packages
        built here are numbered after them.
        """
        path = Path(source).expanduser()
        if path.is_file():
            info = inspect_zip_package(path)
            self.report.package = str(path)
            self.report.package_bytes = info.size
            self.report.warnings.extend(info.warnings)
            log.info("Uploading ready-made %s package %s as is (%d entries)", info.kind, path.name, info.entries)
            return [BuiltPackage(1, path, 0, info.size)]
        if not path.is_dir():
            raise PreservicaConfigError(f"ingest source {str(path)!r} is neither a folder nor a zip file")
        tree = LocalSourceTree(path)
        namespace = self.source_id_namespace or tree.name
        scan = scan_source(tree)  # what the packages must hold (see ``vanished``)
        top_folder = self.folder_layout == "source_folder"
        files = scan.files
        created: dict[str, int] = {}
        if adopted:
            ranges = [(int(p[6]), p[2], p[3]) for p in adopted]
            mine = [e for e in files if any(in_range(e.path, first, last) for _, first, last in ranges)]
            self._expect(tree, namespace, mine)
            for index, first, last in ranges:
                for folder in folders_of([e.path for e in mine if in_range(e.path, first, last)], top_folder):
                    created.setdefault(folder, index)
            taken = {e.path for e in mine}
            files = [e for e in files if e.path not in taken]
            if not files:
                return []
        skipped_paths = self._skip_present(tree, namespace, files) if self.skip_existing else []
        if skipped_paths is None:
            if not adopted:
                self.report.state = "NOTHING_TO_INGEST"
            return []
        left_out = set(skipped_paths)
        first_index = max((int(p[6]) for p in adopted or []), default=0) + 1
        plans = plan_packages(
            [e for e in files if e.path not in left_out],
            max_bytes=self.max_package_bytes,
            max_assets=self.max_package_assets,
            top_folder=top_folder,
            first_index=first_index,
            created=created,
        )
        if len(plans) > 1 and scan.errors:  # every problem at once, as one package's build would list them
            if any(issue.code == "missing-security-tag" for issue in scan.errors):
                raise MissingSecurityTagError(scan.errors)
            raise PackageValidationError(scan.errors)
        work = Path(self.work_dir or tempfile.mkdtemp(prefix="preservica-ingest-"))
        work.mkdir(parents=True, exist_ok=True)
        if len(plans) <= 1 and not adopted:  # one package: the source less what is present, built as before
            whole = PackagePlan(first_index, tuple(e.path for e in scan.files), 0)
            package = replace(self._build(tree, namespace, whole, work, skipped_paths), first=None, last=None)
            self.report.package = str(package.path)
            return [package]
        built = [self._build(tree, namespace, plan, work / f"p{plan.index:03d}") for plan in plans]
        self.report.package = str(work)
        return built

    def _build(
        self, tree: LocalSourceTree, namespace: str, plan: PackagePlan, out: Path, skipped: list[str] | None = None
    ) -> BuiltPackage:
        """Build one package of a split delivery into ``out``; with ``skipped``, the source less those files."""
        started = time.monotonic()
        root = tree.local_path("")
        assert root is not None

        def source(left_out: list[str]) -> SourceTree:
            if skipped is not None:
                return WithoutFiles(tree, left_out) if left_out else tree
            return OnlyFiles(tree, set(plan.paths) - set(left_out))

        manifest, missing = build_without_vanished(
            lambda left_out: build_opex_package(
                source(left_out),
                out,
                security_tag=self.security_tag,
                package_name=tree.name,
                fixity=self.fixity,
                source_id_namespace=namespace,
                metadata=self.metadata,
                keep_staged=False,
                overwrite=True,
                fixity_identifier=FIXITY_IDENTIFIER,
                top_folder=self.folder_layout == "source_folder",
                zip_checksum=False,  # nothing here reads it: not worth reading the whole zip again
            ),
            plan.paths,
            skipped or [],
            lambda relative: (root / relative).exists(),
            allow=self.allow_missing_files,
        )
        report = self.report
        if missing:
            report.missing_files.extend(missing)
            log.warning("%d file(s) disappeared before packaging and are not sent: %s", len(missing), missing)
        report.package_bytes += manifest.zip_size or 0
        report.assets_sent += manifest.asset_count
        report.sent.add_many(  # every package's assets, in one store on disk (flat memory)
            (asset.source_id, asset.path.rsplit("/", 1)[-1], self.fixity, asset.fixity_value(self.fixity) or "")
            for asset in manifest.assets
        )
        report.warnings.extend(w.describe() if isinstance(w, ValidationIssue) else str(w) for w in manifest.warnings)
        log.info(
            "Built OPEX package %d (%s): %d assets, %.1f MiB, %s fixity, in %.1f s",
            plan.index,
            Path(manifest.package_path).name,
            manifest.asset_count,
            (manifest.zip_size or 0) / 1048576,
            self.fixity,
            time.monotonic() - started,
        )
        return BuiltPackage(
            plan.index,
            Path(manifest.package_path),
            manifest.asset_count,
            manifest.zip_size or 0,
            plan.first,
            plan.last,
            plan.after,
        )

    def _skip_present(self, tree: LocalSourceTree, namespace: str, files: list[SourceEntry]) -> list[str] | None:
        """Paths to leave out (same content below the target already), ``None`` if that is every file."""
        ids = uuid_source_ids(namespace)
        by_source_id = {ids(entry.path, False): entry.path for entry in files}
        presence = find_present(
            self.entities,
            self.report.parent_ref,
            by_source_id,
            self._checksums(tree),
            self.fixity,
            workers=self.max_workers,
        )
        self.report.skipped_existing = presence.present
        skipped = [by_source_id[source_id] for source_id in presence.present]
        if presence.conflicts:
            self.report.conflicts = [c.describe() for c in presence.conflicts]
            if self.on_conflict != "skip":
                raise IngestConflictError(self.report.conflicts)
            log.warning("Leaving out %d conflicting files (on_conflict='skip')", len(presence.conflicts))
            skipped += [c.path for c in presence.conflicts]
        if presence.present:
            log.info(
                "%d of %d files are already in Preservica below %s (same SourceID and content); skipping them",
                len(presence.present),
                len(files),
                self.report.parent_ref,
            )
        return None if files and len(skipped) == len(files) else skipped

    def _checksums(self, tree: LocalSourceTree) -> Callable[[list[str]], dict[str, str]]:
        def checksums(paths: list[str]) -> dict[str, str]:
            local = {path: tree.local_path(path) for path in paths}
            hashed = hash_files([p for p in local.values() if p is not None], self.fixity)
            return {path: hashed[p].value(self.fixity) for path, p in local.items() if p is not None}

        return checksums

    def _verify_fixity(self, created: dict[str, str]) -> None:
        """Each asset holds what its sidecar promised, the way ``verify`` says (``ingest.verify``)."""
        sent = self.report.sent
        if self.verify == "ingest":
            outcome = verify_sent_identifiers(
                self.entities, created, sent, self._search_below, max_workers=self.max_workers
            )
        else:
            outcome = verify_fixity(self.entities, created, sent, max_workers=self.max_workers)
        self.report.errors.extend(outcome.errors)
        self.report.verified += outcome.verified

    def expect_from_source(self, source: str | os.PathLike[str]) -> None:
        """Rebuild what a package of ``source`` promised, for a retry that adopted an ingest it did not build.

        The sources stay in place until verification passes, so hashing them again yields the same SourceIDs
        and fixity the earlier try put in its manifests. Ready-made zips carry their own promises: nothing to do.
        """
        path = Path(source).expanduser()
        if not path.is_dir():
            return
        tree = LocalSourceTree(path)
        self.report.sent.replace_all(())  # rebuilt from the source: what the whole delivery promised
        self._expect(tree, self.source_id_namespace or tree.name, scan_source(tree).files)

    def _expect(self, tree: LocalSourceTree, namespace: str, files: list[SourceEntry]) -> None:
        """Add what ``files`` promise (SourceID, name, fixity) to ``report.sent``, hashing a slice at a time."""
        ids = uuid_source_ids(namespace)
        for start in range(0, len(files), REHASH_SLICE):  # a slice's checksums held at once, not the source's
            chunk = files[start : start + REHASH_SLICE]
            fixity = hash_files([tree.local_path(entry.path) for entry in chunk], self.fixity)
            self.report.sent.add_many(
                (ids(e.path, False), e.name, self.fixity, fixity[tree.local_path(e.path)].value(self.fixity))
                for e in chunk
            )

    def upload(self, package: BuiltPackage, parent_ref: str, key: str) -> SentPackage:
        """Send one package (from any thread: each upload has a boto3 client of its own)."""
        result = self.uploader.upload(package.path, parent_ref, key=key)
        return SentPackage(
            package.index,
            result.key,
            result.progress_token,
            package.assets,
            package.bytes,
            package.first,
            package.last,
            result.seconds,
        )

    def record_outcomes(self, outcomes: list[Progress]) -> None:
        """Final state, the server's messages, and the refs Preservica gave the assets sent: one report for
        every package of the delivery (``outcomes`` in the order of ``report.packages``).

        The progress tokens decide success: the delivery succeeded when every package did; otherwise the
        report's state is the first failed package's and each error names its package. The Process Monitor of
        each package adds per-asset errors and warnings and the assets it created, which are reported (and
        verified) whatever became of the other packages.
        """
        report = self.report
        several = len(outcomes) > 1
        failed = [(i, p) for i, p in enumerate(outcomes) if not p.succeeded]
        report.state = failed[0][1].status if failed else outcomes[0].status
        monitored: dict[str, str] = {}
        all_found = True
        for position, progress in enumerate(outcomes):
            package = report.packages[position] if position < len(report.packages) else {}
            key = package.get("key") or report.upload_key
            monitor = self.preservica.ingest_messages(key) if key else None
            label = f"package {package.get('index', position + 1)} of {len(outcomes)} ({key}): " if several else ""
            errors = progress.errors + (monitor.errors if monitor else [])
            if several and not progress.succeeded and not errors:
                errors = [f"ended {progress.status}, no error details returned"]
            _extend_unique(report.errors, [label + e for e in errors])
            _extend_unique(
                report.warnings, [label + w for w in progress.warnings + (monitor.warnings if monitor else [])]
            )
            package["state"] = progress.status
            if monitor and monitor.found:
                package["created"] = len(monitor.created)
                monitored.update(monitor.created)
            else:
                all_found = False
        if failed:
            # What the other packages (and the failed ones, partly) created is in Preservica: report and check it.
            report.created_refs = sorted(monitored.values())
            if self.verify:
                self._verify_fixity(monitored)
            return
        found = dict(monitored)
        if report.sent:
            found.update(self._created_below_target([s for s in report.sent if s not in found]))
            missing = sum(1 for s in report.sent if s not in found)
            if missing:
                report.errors.append(
                    f"{missing} of {len(report.sent)} assets sent are not findable by SourceID "
                    "below the target folder after Preservica reported success"
                )
        # A retry that adopted the ingest expects every file of the source, including those an earlier run
        # ingested; the Process Monitor knows which ones this ingest created.
        # So does a deferred ingest whose per-file state was lost (``IngestReport.from_state``): what was found
        # and not created was there before.
        rebuilt = report.adopted or report.per_file_lost
        monitors = all_found and bool(outcomes)
        created = monitored if rebuilt and monitors else found
        if report.per_file_lost and monitors:
            report.skipped_existing = {s: ref for s, ref in found.items() if s not in monitored}
        report.created_refs = sorted(created.values())
        if self.verify:
            self._verify_fixity(found)

    def _search_below(self, source_ids: list[str]) -> dict[str, list[tuple[str, list[tuple[str, str]]]]]:
        """The assets below the target with these SourceIDs, and their identifiers: a search per 100.

        The search index trails an ingest: SourceIDs it does not list are asked for again, a bounded number
        of times (``INDEX_WAITS``); what is still missing then is left to the caller.
        """
        found = assets_below(self.entities, self.report.parent_ref, source_ids, workers=self.max_workers)
        waiting = [s for s in source_ids if s not in found]
        for pause in INDEX_WAITS:
            if not waiting:
                break
            log.info("%d assets not in Preservica's search index yet; searching again in %.0f s", len(waiting), pause)
            time.sleep(pause)
            found.update(assets_below(self.entities, self.report.parent_ref, waiting, workers=self.max_workers))
            waiting = [s for s in waiting if s not in found]
        return found

    def _created_below_target(self, source_ids: list[str]) -> dict[str, str]:
        """The assets with these SourceIDs below the target that were not there before this ingest.

        The target claim keeps other runs of the same files away, so a new asset with one of them is this
        package's; two are reported (a duplicate), never resolved by taking the first.
        """
        if not source_ids:
            return {}
        before = set(self.report.skipped_existing.values())
        found = self._search_below(source_ids)
        waiting = [s for s in source_ids if s not in found]
        if waiting:  # still lagging: read those few from the Entity API, never call them missing for it
            log.info("Reading %d assets the search index has not caught up with from the Entity API", len(waiting))
            found.update(assets_below_by_reading(self.entities, self.report.parent_ref, waiting))
        created: dict[str, str] = {}
        for source_id, hits in found.items():
            refs = [ref for ref, _ in hits if ref not in before]
            if len(refs) > 1:
                self.report.errors.append(
                    f"SourceID {source_id} is held by {len(refs)} new assets below the target: {', '.join(refs)}"
                )
            if refs:
                created[source_id] = refs[0]
        return created


def _extend_unique(target: list[str], items: list[str]) -> None:
    for item in items:
        if item not in target:
            target.append(item)
