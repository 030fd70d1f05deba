"""One ingest at a time per target folder and SourceID namespace, across workers and hosts.

Two runs that ingest the same files into the same folder at once would both find nothing in Preservica
and both upload: duplicates. Before its skip check, an ingest claims its target (``parent_ref`` and
namespace, on that Preservica host) in the in-flight store, an Airflow Variable
``preservica_ingest_claim__<hash>``, with the same timed lease as logins (``client.auth.lease``: Variables have no
compare-and-set). The claim holds until the outcome is recorded, across a deferral; a second run waits,
then finds the first run's assets and skips them. A retry of the same batch owns the claim it left.

A claim whose ingest has finished (its progress token says so) but was never released (the worker died)
is broken by the next run; one that dies before uploading frees itself when its lease ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable

from airflow_provider_preservica.client.auth.lease import LoginLease
from airflow_provider_preservica.client.auth.stores import TokenStore
from airflow_provider_preservica.exceptions import IngestClaimTimeout
from airflow_provider_preservica.jobs import JobStore

log = logging.getLogger(__name__)
PREFIX = "preservica_ingest_claim__"


def claim_key(host: str, parent_ref: str, namespace: str) -> str:
    return PREFIX + hashlib.sha256(f"{host}\x00{parent_ref}\x00{namespace}".encode()).hexdigest()[:32]


class TargetClaim:
    def __init__(
        self,
        host: str,
        parent_ref: str,
        namespace: str,
        owner: str,
        *,
        store: TokenStore | None = None,
        lease_seconds: float = 3600.0,
        claim_delay: float = 0.5,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = claim_key(host, parent_ref, namespace)
        self.store = store or JobStore("Ingest target claim (managed by PreservicaIngestOperator)")
        self.owner = "batch:" + hashlib.sha256(owner.encode()).hexdigest()[:32]
        self._clock = clock
        self._lease = LoginLease(
            self.store,
            self.key,
            claim_delay=claim_delay,
            lease_seconds=lease_seconds,
            poll_interval=poll_interval,
            clock=clock,
            sleep=sleep,
            waiting_message="Another run is ingesting into this folder with the same SourceIDs; waiting for it",
        )
        self._lease.owner = self.owner  # a retry of the same batch owns what an earlier try claimed

    def _record(self) -> dict[str, object]:
        try:
            data = json.loads(self.store.read(self.key) or "null")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def acquire(self, timeout: float, finished: Callable[[str], bool]) -> None:
        """Hold the target, waiting while another run holds it; ``finished(token)`` says if its ingest ended."""

        def holder_gone() -> None:
            record = self._record()
            tokens = record.get("progress_tokens") or [record.get("progress_token")]
            if (
                isinstance(tokens, list)
                and tokens
                and all(isinstance(t, str) for t in tokens)
                and record.get("owner") != self.owner
                and all(finished(t) for t in tokens)
            ):
                log.info("The ingest that held this target (progress token %s) has finished; taking over", tokens[0])
                self.store.delete(self.key)
            return None

        self._lease.acquire(holder_gone, timeout)
        if not self._lease.held:
            raise IngestClaimTimeout(
                f"another run kept this ingest's target for more than {timeout:.0f} s (Variable {self.key}); "
                "it is still ingesting the same files into the same folder. Retry later, or delete the Variable "
                "if no such run exists"
            )

    def submitted(self, progress_tokens: str | list[str], wait_seconds: float) -> None:
        """Keep the claim while Preservica processes the packages, also across a deferral.

        The claim names every package's progress token: another run takes the target over only once all
        of them have finished. ``progress_token`` (the last one) stays for readers of earlier releases.
        """
        tokens = [progress_tokens] if isinstance(progress_tokens, str) else list(progress_tokens)
        expires = self._clock() + wait_seconds + 600.0
        value = {"owner": self.owner, "expires": expires, "progress_token": tokens[-1], "progress_tokens": tokens}
        self.store.write(self.key, json.dumps(value))

    def release(self) -> None:
        if self._record().get("owner") == self.owner:
            try:
                self.store.delete(self.key)
            except Exception as exc:  # an expiring claim frees itself
                log.debug("Could not release the ingest claim %s (%s)", self.key, type(exc).__name__)
