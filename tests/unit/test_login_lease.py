"""Fischer's lease over a last-writer-wins store: one holder at a time, waiters get the holder's result."""

from __future__ import annotations

import random
import threading
import time

from airflow_provider_preservica.auth.lease import LoginLease


class SlowStore:
    """A last-writer-wins key/value store whose reads and writes take a few milliseconds, like a Variable."""

    name = "slow"

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.lock = threading.Lock()

    def _pause(self) -> None:
        time.sleep(random.uniform(0.001, 0.02))

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
    store = SlowStore()
    logins: list[str] = []
    inside = 0
    most_inside = 0
    guard = threading.Lock()
    start = threading.Barrier(10)

    def worker(name: str) -> None:
        nonlocal inside, most_inside
        lease = LoginLease(store, "lease", claim_delay=0.1, poll_interval=0.01)
        start.wait()
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

    threads = [threading.Thread(target=worker, args=(f"host-{i}",)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most_inside == 1
    assert len(logins) == 1
    assert "lease" not in store.values  # released


def test_an_expired_lease_of_a_dead_holder_is_taken_over():
    store = SlowStore()
    store.write("lease", '{"owner": "dead-worker", "expires": %f}' % (time.time() + 0.3))
    lease = LoginLease(store, "lease", claim_delay=0.05, poll_interval=0.02)
    started = time.monotonic()
    assert lease.acquire(lambda: None, timeout=5) is None
    assert lease.held and time.monotonic() - started >= 0.3


def test_gives_up_after_the_timeout_and_lets_the_caller_proceed():
    store = SlowStore()
    store.write("lease", '{"owner": "busy-worker", "expires": %f}' % (time.time() + 60))
    lease = LoginLease(store, "lease", claim_delay=0.01, poll_interval=0.02)
    assert lease.acquire(lambda: None, timeout=0.2) is None
    assert not lease.held
