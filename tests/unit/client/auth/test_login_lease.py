"""Fischer's lease over a last-writer-wins store: one holder at a time, waiters get the holder's result.

The lease's promise rests on time (a claim is checked after longer than any write takes), so these tests
run it on simulated time: the clock moves only when every thread is asleep, so "a write takes at most a
few milliseconds" holds by construction, whatever the load on the machine.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections.abc import Callable

from airflow_provider_preservica.client.auth.lease import LoginLease
from tests.support.clock import FakeClock


class SimulatedTime:
    """A clock for several threads: time jumps to the next wake-up only when no thread is running.

    Each thread calls ``sleep`` to let time pass and ``done`` when it ends; while any thread runs (reads,
    writes, takes locks), the clock stands still.
    """

    def __init__(self, threads: int) -> None:
        self.now = 0.0
        self._running = threads
        self._sleepers: list[tuple[float, int, threading.Event]] = []
        self._order = itertools.count()
        self._guard = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        wake = threading.Event()
        with self._guard:
            heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
            self._running -= 1
            self._advance_if_idle()
        wake.wait()

    def done(self) -> None:
        with self._guard:
            self._running -= 1
            self._advance_if_idle()

    def _advance_if_idle(self) -> None:
        if self._running or not self._sleepers:
            return
        self.now = self._sleepers[0][0]
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, wake = heapq.heappop(self._sleepers)
            self._running += 1  # counted before it wakes, so time cannot move on without it
            wake.set()


class SlowStore:
    """A last-writer-wins key/value store whose reads and writes take a few milliseconds, like a Variable."""

    name = "slow"

    def __init__(self, sleep: Callable[[float], None], seed: int = 0) -> None:
        self.values: dict[str, str] = {}
        self.lock = threading.Lock()
        self._sleep = sleep
        self._random = random.Random(seed)

    def _pause(self) -> None:
        with self.lock:
            pause = self._random.uniform(0.001, 0.02)
        self._sleep(pause)

    def read(self, key: str) -> str | None:
        self._pause()
        with self.lock:
            return self.values.get(key)

    def write(self, key: str, value: str) -> None:
        self._pause()
        with self.lock:
            self.values[key] = value

    def delete(self, key: str) -> None:
        with self.lock:
            self.values.pop(key, None)


def test_competitors_on_different_hosts_log_in_once():
    time = SimulatedTime(threads=10)
    store = SlowStore(time.sleep)
    logins: list[str] = []
    inside = 0
    most_inside = 0
    guard = threading.Lock()

    def worker(name: str) -> None:
        nonlocal inside, most_inside
        try:
            lease = LoginLease(store, "lease", claim_delay=0.1, poll_interval=0.01, clock=time.clock, sleep=time.sleep)
            found = lease.acquire(lambda: store.values.get("token"), timeout=10)
            if found is not None:
                return
            with guard:
                inside += 1
                most_inside = max(most_inside, inside)
            try:
                time.sleep(0.05)  # the login
                logins.append(name)
                store.write("token", f"token-from-{name}")
            finally:
                with guard:
                    inside -= 1
                lease.release()
        finally:
            time.done()

    threads = [threading.Thread(target=worker, args=(f"host-{i}",)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not any(thread.is_alive() for thread in threads)
    assert most_inside == 1
    assert len(logins) == 1
    assert "lease" not in store.values  # released
    assert time.now < 1  # the others took the token as soon as it landed, long before their timeout


def test_an_expired_lease_of_a_dead_holder_is_taken_over():
    clock = FakeClock()
    store = SlowStore(clock.advance)
    store.write("lease", '{"owner": "dead-worker", "expires": %f}' % (clock() + 0.3))
    lease = LoginLease(store, "lease", claim_delay=0.05, poll_interval=0.02, clock=clock, sleep=clock.advance)
    started = clock()
    assert lease.acquire(lambda: None, timeout=5) is None
    assert lease.held and clock() - started >= 0.3


def test_gives_up_after_the_timeout_and_lets_the_caller_proceed():
    clock = FakeClock()
    store = SlowStore(clock.advance)
    store.write("lease", '{"owner": "busy-worker", "expires": %f}' % (clock() + 60))
    lease = LoginLease(store, "lease", claim_delay=0.01, poll_interval=0.02, clock=clock, sleep=clock.advance)
    started = clock()
    assert lease.acquire(lambda: None, timeout=0.2) is None
    assert not lease.held and 0.2 <= clock() - started < 60
