"""After an ingest: each asset created holds the content its package promised, checked one of two ways.

``verify=`` of the ingest (``check_verify_mode``):

- ``"stored"`` (also ``True``, the default): read each created asset's stored fixity back and compare it
  with what its sidecar promised. Preservica documents no bulk or search path to a bitstream's stored
  fixity (the Content API's known fields name bitstreams, ``xip.bitstream_names_r_Preservation``, but carry
  no checksum: reference §3.3), so this stays per asset, on the shortest documented path (two GETs,
  ``EntityService.original_bitstream``), ``max_workers`` assets at a time on the hook's one client and token
  (as the metadata runner does). It is what a reconciler after ingest does (TNA's
  ``ingest-asset-reconciler``, users-and-peers §4.7 step 7) and catches a stored checksum that differs from
  the promise whatever the cause.
- ``"ingest"``: rely on Preservica's own check. OPEX ingest verifies each file's content against the fixity
  in its sidecar and fails that asset when they differ (users-and-peers §4.1: "per-file fixity that ingest
  verifies"; preservica-api §4.4 ``opex:Fixities``); the ingest then ends ``FAILED`` or
  ``FINISHED_MIXED_OUTCOME`` and the task fails. What is left to check is that every asset found below the
  target carries the ``SourceFixity`` identifier its sidecar was sent with (``<algorithm>:<hex>``, read
  from the same Content API search that finds the assets: a page per 100 files, no request per asset). An
  asset the search index does not list yet is checked the ``"stored"`` way, never called missing.
- ``False``: no check after the ingest (Preservica's own check at ingest still applies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from airflow_provider_preservica.client.entities import EntityService
from airflow_provider_preservica.ingest.identity import FIXITY_IDENTIFIER, fixity_from_identifiers

DEFAULT_VERIFY_WORKERS = 8
VerifyMode = Literal["stored", "ingest"]
VERIFY_MODES: tuple[VerifyMode, ...] = ("stored", "ingest")


def check_verify_mode(value: object) -> VerifyMode | None:
    """``verify=`` as a mode: ``True`` is ``"stored"`` (the behaviour before the modes), ``False`` is ``None``."""
    if value is True:
        return "stored"
    if value is False or value is None:
        return None
    if value in VERIFY_MODES:
        return value
    raise ValueError(f"verify must be 'stored', 'ingest', True or False, not {value!r}")


@dataclass
class Verification:
    verified: int = 0
    errors: list[str] = field(default_factory=list)


def _bounded_map(
    fn: Callable[[tuple[str, str]], str | None], items: Iterable[tuple[str, str]], workers: int
) -> Iterator[str | None]:
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="preservica-verify") as executor:
        # ``map`` submits everything at once; feed it in slices so memory stays bounded by the slice.
        batch: list[tuple[str, str]] = []
        for item in items:
            batch.append(item)
            if len(batch) >= workers * 64:
                yield from executor.map(fn, batch)
                batch = []
        yield from executor.map(fn, batch)


def verify_fixity(
    entities: EntityService,
    created: Mapping[str, str],
    expected: Mapping[str, Sequence[str]],
    *,
    max_workers: int = DEFAULT_VERIFY_WORKERS,
) -> Verification:
    """``"stored"``: compare each created asset (``{SourceID: ref}``) with ``expected``, two GETs an asset.

    ``expected`` is ``{SourceID: [filename, algorithm, hex]}``, what the package's sidecars promised.
    """
    entities.ns  # noqa: B018 - learn the server's namespaces once, before the threads need them

    def check(item: tuple[str, str]) -> str | None:
        source_id, ref = item
        filename, algorithm, value = expected[source_id]
        stored = entities.original_bitstream(ref, filename)
        actual = stored.fixity(algorithm) if stored else None
        if actual is None:
            return f"{filename} ({ref}): no {algorithm} fixity stored in Preservica"
        if actual != value.lower():
            return f"{filename} ({ref}): {algorithm} {actual} in Preservica, {value} sent"
        return None

    outcome = Verification()
    wanted = ((sid, ref) for sid, ref in created.items() if expected.get(sid))
    for error in _bounded_map(check, wanted, max_workers):
        if error is None:
            outcome.verified += 1
        else:
            outcome.errors.append(error)
    return outcome


Identifiers = list[tuple[str, str]]


def verify_sent_identifiers(
    entities: EntityService,
    created: Mapping[str, str],
    expected: Mapping[str, Sequence[str]],
    search: Callable[[list[str]], Mapping[str, list[tuple[str, Identifiers]]]],
    *,
    max_workers: int = DEFAULT_VERIFY_WORKERS,
) -> Verification:
    """``"ingest"``: each created asset carries the ``SourceFixity`` identifier its sidecar was sent with.

    ``search(source_ids)`` gives ``{SourceID: [(ref, identifiers), ...]}`` for the assets below the target (a
    Content API page per 100 SourceIDs). An asset it does not list (the index trails the ingest), or listed
    without that identifier, is checked the ``"stored"`` way (:func:`verify_fixity`).
    """
    outcome = Verification()
    wanted = [sid for sid in created if expected.get(sid)]
    hits = search(wanted)
    unlisted: dict[str, str] = {}
    for source_id in wanted:
        ref = created[source_id]
        filename, algorithm, value = expected[source_id]
        identifiers = next((ids for hit, ids in hits.get(source_id, []) if hit == ref), None)
        sent = fixity_from_identifiers(identifiers or [], algorithm)
        if sent is None:
            unlisted[source_id] = ref
        elif sent == value.lower():
            outcome.verified += 1
        else:
            outcome.errors.append(
                f"{filename} ({ref}): {FIXITY_IDENTIFIER} {algorithm}:{sent} in Preservica, {algorithm}:{value} sent"
            )
    if unlisted:
        stored = verify_fixity(entities, unlisted, expected, max_workers=max_workers)
        outcome.verified += stored.verified
        outcome.errors += stored.errors
    return outcome
