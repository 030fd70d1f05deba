"""Single-flight locks: one per account in this process, and one per account on this host.

The host lock is a ``filelock.FileLock`` (an advisory ``flock`` on Unix) on a file in the temp directory (or
``$PRESERVICA_LOCK_DIR``), so every task process on a worker queues behind the one that is logging in. The
kernel drops it if the holder dies, and the file stays in place, so every waiter locks the same one.
``try_single_flight`` takes both only if they are free at once: a renewal ahead of expiry never
waits, because whoever holds them is already renewing and the current token is still good.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator

import filelock

from airflow_provider_preservica.exceptions import PreservicaError

LOCK_DIR_ENV_VAR = "PRESERVICA_LOCK_DIR"
POLL_SECONDS = 0.02  # how often a waiter tries the host lock again

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(key: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


def lock_path(key: str) -> str:
    directory = os.environ.get(LOCK_DIR_ENV_VAR) or tempfile.gettempdir()
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return os.path.join(directory, f"airflow-preservica-{digest}.lock")


def _host_lock(key: str) -> filelock.FileLock:
    # thread_local=False: a context manager may be resumed on another thread than the one that entered it.
    return filelock.FileLock(lock_path(key), mode=0o600, thread_local=False)


@contextlib.contextmanager
def single_flight(key: str, timeout: float) -> Iterator[None]:
    """Hold the process lock and the host lock for ``key``; give up after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    thread_lock = _process_lock(key)
    if not thread_lock.acquire(timeout=timeout):
        raise PreservicaError(f"timed out after {timeout:.0f} s waiting for another thread's Preservica login")
    try:
        host_lock = _host_lock(key)
        try:
            # Never a negative timeout: filelock reads that as "wait forever".
            host_lock.acquire(timeout=max(0.0, deadline - time.monotonic()), poll_interval=POLL_SECONDS)
        except filelock.Timeout:
            raise PreservicaError(
                f"timed out after {timeout:.0f} s waiting for another process's Preservica login "
                f"(lock file {host_lock.lock_file})"
            ) from None
        try:
            yield
        finally:
            host_lock.release()
    finally:
        thread_lock.release()


@contextlib.contextmanager
def try_single_flight(key: str) -> Iterator[bool]:
    """Like :func:`single_flight` without waiting: yields ``True`` holding both locks, ``False`` holding none."""
    thread_lock = _process_lock(key)
    if not thread_lock.acquire(blocking=False):
        yield False
        return
    try:
        host_lock = _host_lock(key)
        try:
            host_lock.acquire(blocking=False)
        except filelock.Timeout:
            held = False
        else:
            held = True
        try:
            yield held
        finally:
            if held:
                host_lock.release()
    finally:
        thread_lock.release()
