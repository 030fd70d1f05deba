"""The ingest target claim (one ingest per folder and SourceID namespace at a time), on an injected clock."""

from __future__ import annotations

import pytest

from airflow_provider_preservica.exceptions import IngestClaimTimeout
from airflow_provider_preservica.ingest.claims import TargetClaim
from tests.support.stores import DictStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def claim(store, clock, batch, *, parent="folder-1", namespace="batch"):
    return TargetClaim("https://host", parent, namespace, batch, store=store, clock=clock, sleep=clock.sleep)


def never(token: str) -> bool:
    return False


def test_a_second_run_waits_for_the_holder_and_says_why_when_it_gives_up():
    store, clock = DictStore(), Clock()
    first = claim(store, clock, "dag/ingest/run-1/-1")
    first.acquire(60, never)
    first.submitted("token-1", 3600)

    with pytest.raises(IngestClaimTimeout, match="same files into the same folder") as info:
        claim(store, clock, "dag/ingest/run-2/-1").acquire(60, never)

    assert first.key in str(info.value)
    assert "token-1" in store.values[first.key]  # the holder's claim is untouched


def test_other_folders_and_namespaces_do_not_wait():
    store, clock = DictStore(), Clock()
    claim(store, clock, "run-1").acquire(60, never)
    claim(store, clock, "run-2", parent="folder-2").acquire(60, never)
    claim(store, clock, "run-3", namespace="other").acquire(60, never)
    assert len(store.values) == 3


def test_the_claim_of_a_finished_ingest_that_was_never_released_is_broken():
    store, clock = DictStore(), Clock()
    dead = claim(store, clock, "run-1")
    dead.acquire(60, never)
    dead.submitted("token-1", 3600)  # then the worker dies

    later = claim(store, clock, "run-2")
    later.acquire(60, lambda token: token == "token-1")

    assert later.owner in store.values[later.key]
    later.release()
    assert store.values == {}


def test_a_retry_of_the_same_batch_owns_its_claim_and_only_the_owner_releases():
    store, clock = DictStore(), Clock()
    first = claim(store, clock, "run-1")
    first.acquire(60, never)
    claim(store, clock, "run-2").release()
    assert first.key in store.values

    retry = claim(store, clock, "run-1")
    retry.acquire(1, never)  # no wait for itself
    retry.release()
    assert store.values == {}
