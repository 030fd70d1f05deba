"""The single-flight locks (``auth/locks.py``, on ``filelock``) as other processes and threads see them.

Another OS process holds the host lock through the same module; nothing waits on the wall clock: the holder
says it holds the lock by creating a file, and lets go when told to (or is killed).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_preservica.client.auth.locks import LOCK_DIR_ENV_VAR, lock_path, single_flight, try_single_flight
from airflow_provider_preservica.exceptions import PreservicaError
from tests.support import REPO

KEY = "preservica_token__host-lock-test"

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from airflow_provider_preservica.client.auth.locks import single_flight
    held, release = Path(sys.argv[2]), Path(sys.argv[3])
    with single_flight(sys.argv[1], timeout=5):
        held.touch()
        while not release.exists():
            time.sleep(0.01)
    """
)


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "locks"
    directory.mkdir()
    monkeypatch.setenv(LOCK_DIR_ENV_VAR, str(directory))
    return directory


class Holder:
    """Another process holding the host lock for ``KEY`` until ``release()`` or ``kill()``."""

    def __init__(self, tmp_path: Path) -> None:
        self.held, self.release_file = tmp_path / "held", tmp_path / "release"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, KEY, str(self.held), str(self.release_file)], env=env
        )

    def wait_until_held(self) -> None:
        while not self.held.exists():
            assert self.process.poll() is None, "the holder process died before taking the lock"
            threading.Event().wait(0.01)

    def release(self) -> None:
        self.release_file.touch()
        assert self.process.wait(timeout=60) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)


@pytest.fixture
def holder(tmp_path: Path, lock_dir: Path) -> Iterator[Holder]:
    running = Holder(tmp_path)
    running.wait_until_held()
    yield running
    if running.process.poll() is None:
        running.kill()


def test_another_process_holding_the_lock_keeps_this_one_out(holder: Holder) -> None:
    with try_single_flight(KEY) as held:
        assert held is False
    with (
        pytest.raises(PreservicaError, match="another process's Preservica login") as info,
        single_flight(KEY, timeout=0),  # one try, no waiting: the lock is taken
    ):
        pytest.fail("entered a lock another process holds")
    assert lock_path(KEY) in str(info.value)
    holder.release()
    with try_single_flight(KEY) as held:
        assert held is True


def test_a_killed_holder_frees_the_lock(holder: Holder) -> None:
    holder.kill()
    with single_flight(KEY, timeout=0):
        pass


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(holder: Holder) -> None:
    entered = threading.Event()

    def wait_for_it() -> None:
        with single_flight(KEY, timeout=120):
            entered.set()

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    assert not entered.wait(0.2)  # still held by the other process
    holder.release()
    waiter.join(timeout=120)
    assert entered.is_set()


def test_threads_of_one_process_take_turns(lock_dir: Path) -> None:
    with single_flight(KEY, timeout=0):
        seen: list[bool] = []

        def try_it() -> None:
            with try_single_flight(KEY) as held:
                seen.append(held)

        other = threading.Thread(target=try_it)
        other.start()
        other.join()
        assert seen == [False]
    with try_single_flight(KEY) as held:
        assert held is True


def test_the_lock_file_is_private_and_stays(lock_dir: Path) -> None:
    with single_flight(KEY, timeout=0):
        pass
    path = Path(lock_path(KEY))
    assert path.parent == lock_dir and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
