"""Asynchronous work in Preservica (ingest by upload, export, moves) reports through progress tokens."""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import (
    PreservicaConnectionError,
    PreservicaError,
    PreservicaHTTPError,
    ProgressTimeoutError,
    ProgressTokenUnknownError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

STATUS_NS = "http://status.preservica.com"
SUCCEEDED = frozenset({"COMPLETED"})
FAILED = frozenset({"FAILED", "ABORTED", "CANCELLED", "FINISHED_MIXED_OUTCOME"})
RUNNING = frozenset({"ACTIVE", "PENDING", "SUSPENDING", "SUSPENDED", "UNKNOWN"})


@dataclass(frozen=True)
class Progress:
    token: str
    status: str
    percent: float | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in SUCCEEDED or self.status in FAILED

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCEEDED


def _texts(root: ET.Element, container: str) -> list[str]:
    found: list[str] = []
    for element in root.iter(f"{{{STATUS_NS}}}{container}"):
        for child in element:
            text = " ".join(t.strip() for t in child.itertext() if t.strip())
            if text:
                found.append(text)
    return found


def read_progress(client: PreservicaClient, token: str) -> Progress:
    """One look at ``GET /api/entity/progress/{token}?includeErrors=true``."""
    try:
        root = client.get_xml(f"/api/entity/progress/{token}", params={"includeErrors": "true"})
    except PreservicaHTTPError as exc:
        if exc.status == 404:
            raise ProgressTokenUnknownError(f"Preservica does not know progress token {token!r}") from None
        raise
    status = (root.findtext(f".//{{{STATUS_NS}}}Status") or "UNKNOWN").strip().upper()
    percent_text = root.findtext(f".//{{{STATUS_NS}}}PercentComplete")
    try:
        percent = float(percent_text) if percent_text else None
    except ValueError:
        percent = None
    return Progress(token, status, percent, _texts(root, "Errors"), _texts(root, "Warnings"))


MAX_CONSECUTIVE_POLL_ERRORS = 5


def is_transient(exc: BaseException) -> bool:
    """A server fault or a lost connection: worth another look at the next poll, not the end of a long wait."""
    if isinstance(exc, ProgressTokenUnknownError):
        return False
    if isinstance(exc, PreservicaHTTPError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, PreservicaConnectionError)


class PollErrors:
    """Counts consecutive failed polls; a few are tolerated (hours-long waits should outlive a server hiccup)."""

    def __init__(self, limit: int = MAX_CONSECUTIVE_POLL_ERRORS) -> None:
        self.limit = limit
        self.count = 0

    def tolerate(self, exc: PreservicaError, token: str) -> bool:
        """True when waiting should go on after ``exc``; logs why."""
        if not is_transient(exc):
            return False
        self.count += 1
        if self.count >= self.limit:
            return False
        log.warning(
            "Reading progress token %s failed (%s); trying again at the next poll (%d of %d)",
            token,
            exc,
            self.count,
            self.limit - 1,
        )
        return True

    def reset(self) -> None:
        self.count = 0


def poll_until(
    read: Callable[[], T],
    *,
    finished: Callable[[T], bool],
    state: Callable[[T], str],
    announce: Callable[[T], None],
    subject: str,
    timed_out: Callable[[str], str],
    poll_interval: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Read until ``finished``: the one polling loop behind every wait for remote work in the worker.

    ``announce`` runs when the ``state`` changes. Up to four consecutive transient failures of ``read``
    (5xx, 429, lost connection) are waited out; the fifth ends the wait with its error. When the next poll
    would pass ``timeout``, ``ProgressTimeoutError(timed_out(last state))``.
    """
    deadline = time.monotonic() + timeout
    last_state = ""
    errors = PollErrors()
    current: T | None = None
    while True:
        try:
            current = read()
        except PreservicaError as exc:
            if not errors.tolerate(exc, subject):
                raise
        else:
            errors.reset()
            if state(current) != last_state:
                announce(current)
                last_state = state(current)
            if finished(current):
                return current
        if time.monotonic() + poll_interval > deadline:
            raise ProgressTimeoutError(timed_out(state(current) if current is not None else "unknown"))
        sleep(poll_interval)


def read_many(
    client: PreservicaClient,
    tokens: list[str],
    map_fn: Callable[..., Iterable[Any]] = map,
) -> dict[str, Progress | PreservicaError]:
    """One look at each token (``map_fn`` may read them in parallel); a failed read is kept, not raised."""

    def one(token: str) -> Progress | PreservicaError:
        try:
            return read_progress(client, token)
        except PreservicaError as exc:
            return exc

    return dict(zip(tokens, map_fn(one, tokens), strict=True))


def look(
    read: Callable[[str], Progress],
    tokens: list[str],
    errors: dict[str, PollErrors],
    map_fn: Callable[..., Iterable[Any]] = map,
) -> tuple[dict[str, Progress], tuple[str, PreservicaError] | None]:
    """One poll of ``tokens``: the decision every wait makes (the worker's, the triggers', the sensor's poke).

    Returns the tokens read, and the first read failure that ends the wait, ``(token, error)``; a transient
    failure of a token's read is waited out (``errors[token]``, up to four in a row) and that token is left
    out until the next poll.
    """

    def one(token: str) -> Progress | PreservicaError:
        try:
            return read(token)
        except PreservicaError as exc:
            return exc

    seen: dict[str, Progress] = {}
    for token, result in zip(tokens, map_fn(one, tokens), strict=True):
        if isinstance(result, PreservicaError):
            if errors.setdefault(token, PollErrors()).tolerate(result, token):
                continue
            return seen, (token, result)
        errors.setdefault(token, PollErrors()).reset()
        seen[token] = result
    return seen, None


def status_line(what: str, progress: Progress) -> str:
    percent = f" ({progress.percent:.0f}%)" if progress.percent is not None else ""
    return f"Preservica {what} {progress.token}: {progress.status}{percent}"


def wait_for_all(
    client: PreservicaClient,
    tokens: list[str],
    *,
    poll_interval: float,
    timeout: float,
    what: str,
    map_fn: Callable[..., Iterable[Any]] = map,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Progress]:
    """Poll every token until each has finished: the one wait for Preservica's background work in the worker.

    Up to four consecutive transient read failures of a token (5xx, 429, lost connection) are waited out; the
    fifth ends the wait with its error. One token's every status change is logged (with its percentage);
    of several, each one's end and how many are still running. When the next poll would pass ``timeout``,
    ``ProgressTimeoutError`` names the token (the first still running) so that a person can look it up.
    """
    deadline = time.monotonic() + timeout
    waiting = list(dict.fromkeys(tokens))
    single = len(waiting) == 1
    finished: dict[str, Progress] = {}
    last: dict[str, str] = {}
    errors: dict[str, PollErrors] = {}
    while waiting:
        seen, failure = look(lambda token: read_progress(client, token), waiting, errors, map_fn)
        if failure is not None:
            raise failure[1]
        for token, progress in seen.items():
            if progress.finished:
                finished[token] = progress
            if single and progress.status != last.get(token):
                log.info("%s", status_line(what, progress))
            elif not single and progress.finished:
                log.info("Preservica %s %s: %s", what, token, progress.status)
            last[token] = progress.status
        waiting = [t for t in waiting if t not in finished]
        if not waiting:
            break
        if not single:
            log.info(
                "Preservica %s: %d of %d finished, %d still running", what, len(finished), len(tokens), len(waiting)
            )
        if time.monotonic() + poll_interval > deadline:
            if single:
                raise ProgressTimeoutError(
                    f"Preservica {what} with progress token {waiting[0]} still {last.get(waiting[0], 'unknown')} "
                    f"after {timeout:.0f} s; it may still finish: look it up in Preservica's Process Monitor, or run "
                    "the sensor on this token"
                )
            raise ProgressTimeoutError(
                f"{len(waiting)} Preservica {what} task(s) still running after {timeout:.0f} s (first progress "
                f"token {waiting[0]}); they may still finish: look them up in Preservica's Process Monitor"
            )
        sleep(poll_interval)
    return finished


def wait_for_progress(
    client: PreservicaClient, token: str, *, poll_interval: float, timeout: float, what: str = "ingest"
) -> Progress:
    """:func:`wait_for_all` for one token: poll until the work finishes; a timeout names the token."""
    return wait_for_all(client, [token], poll_interval=poll_interval, timeout=timeout, what=what)[token]
