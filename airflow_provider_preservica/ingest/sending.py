"""Send the packages of a delivery: a bounded number of uploads at a time, each after the packages it needs.

``package_concurrency`` packages are uploaded at once (each upload sends ``upload_concurrency`` parts at
once, so at most their product of connections). A package whose folders another package creates waits
until that package has finished (``split.PackagePlan.after``); the wait polls the progress tokens in the
worker, also for a deferrable task. Each package is handed to ``on_sent`` as soon as Preservica has taken
it, in this thread, so the caller records it in the in-flight record before anything else happens: a worker
killed after upload N of M leaves N packages a retry adopts.

An upload that fails stops new uploads; those already running finish (and are recorded); then the first
error is raised in :class:`SendError`, which says what was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_preservica.exceptions import SendError


@dataclass(frozen=True)
class BuiltPackage:
    """One package on disk, ready to send (``first``/``last``: its first and last file; ``None``: whole source)."""

    index: int
    path: Path
    assets: int
    bytes: int
    first: str | None = None
    last: str | None = None
    after: frozenset[int] = frozenset()


@dataclass(frozen=True)
class SentPackage:
    index: int
    key: str
    progress_token: str
    assets: int
    bytes: int
    first: str | None
    last: str | None
    seconds: float

    def record(self) -> list[object]:
        """Its entry in the in-flight record (``InFlightJob.packages``)."""
        return [self.key, self.progress_token, self.first, self.last, self.assets, self.bytes, self.index]


def send_packages(
    packages: list[BuiltPackage],
    upload: Callable[[BuiltPackage], SentPackage],
    *,
    concurrency: int,
    wait_finished: Callable[[list[str]], object],
    on_sent: Callable[[SentPackage], None],
    sent_before: dict[int, str] | None = None,
) -> list[SentPackage]:
    """Upload every package; ``sent_before`` maps packages an earlier try sent to their progress tokens."""
    tokens = dict(sent_before or {})
    finished: set[int] = set()
    pending = sorted(packages, key=lambda p: p.index)
    sent: list[SentPackage] = []
    failure: BaseException | None = None
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="preservica-package") as pool:
        running: dict[Future[SentPackage], BuiltPackage] = {}
        while running or (pending and failure is None):
            ready = [p for p in pending if p.after <= finished] if failure is None else []
            for package in ready[: max(0, concurrency - len(running))]:
                pending.remove(package)
                running[pool.submit(upload, package)] = package
            if running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    package = running.pop(future)
                    try:
                        result = future.result()
                    except BaseException as exc:
                        failure = failure or exc
                        continue
                    tokens[package.index] = result.progress_token
                    sent.append(result)
                    on_sent(result)
                continue
            needed = sorted({i for p in pending for i in p.after if i in tokens} - finished)
            if not needed:  # cannot happen: a package only waits for packages sent before it
                raise RuntimeError(f"packages {[p.index for p in pending]} wait for nothing and cannot start")
            wait_finished([tokens[i] for i in needed])
            finished.update(needed)
    if failure is not None:
        what = f"{len(sent)} of {len(packages)} package(s) sent before it failed"
        raise SendError(f"{failure} ({what})", sent) from failure
    return sent
