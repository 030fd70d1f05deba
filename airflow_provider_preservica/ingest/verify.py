"""After an ingest: each asset created holds the fixity its package promised, read with bounded parallelism.

Preservica documents no bulk or search path to a bitstream's stored fixity (the Content API's known fields
name bitstreams, ``xip.bitstream_names_r_Preservation``, but carry no checksum: reference §3.3), so this
step stays per asset, on the shortest documented path (two GETs, ``EntityService.original_bitstream``),
``max_workers`` assets at a time on the hook's one client and token (as the metadata runner does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from airflow_provider_preservica.client.entities import EntityService

DEFAULT_VERIFY_WORKERS = 8


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
    """Compare each created asset (``{SourceID: ref}``) with ``expected``.

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
