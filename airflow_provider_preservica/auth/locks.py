"""Single-flight locks: one per account in this process, and one per account on this host.

The host lock is an advisory ``flock`` on a file in the temp directory, so every task process on a
worker queues behind the one that is logging in. The kernel drops it if the holder dies.
``try_single_flight`` takes both only if they are free at once: a renewal ahead of expiry never
waits, because whoever holds them is already renewing and the current token is still good.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator

from airflow_provider_preservica.exceptions import PreservicaError

LOCK_DIR_ENV_VAR = "PRESERVICA_LOCK_DIR"

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(key: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


def lock_path(key: str) -> str:
    directory = os.environ.get(LOCK_DIR_ENV_VAR) or tempfile.gettempdir()
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return os.path.join(directory, f"airflow-preservica-{digest}.lock")


@contextlib.contextmanager
def single_flight(key: str, timeout: float) -> Iterator[None]:
    """Hold the process lock and the host lock for ``key``; give up after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    thread_lock = _process_lock(key)
    if not thread_lock.acquire(timeout=timeout):
        raise PreservicaError(f"timed out after {timeout:.0f} s waiting for another thread's Preservica login")
    try:
        path = lock_path(key)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise PreservicaError(
                            f"timed out after {timeout:.0f} s waiting for another process's Preservica login "
                            f"(lock file {path})"
                        ) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
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
        fd = os.open(lock_path(key), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = False
            else:
                held = True
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        thread_lock.release()
