"""Test session set-up: a private Airflow home on SQLite, one sandbox, and a log of everything.

Airflow reads its configuration at import time, so the environment is fixed first (``tests.support.session``),
before any test module imports Airflow. Shared helpers and fakes live in ``tests.support``. Every log record
of the session also goes to ``SESSION_LOG`` so that the last test can grep it (and the Airflow task logs) for secrets.

``make test`` runs the tiers as two pytest processes side by side (see the Makefile), each with its own
Airflow home, sandbox and lock directory, all in one folder of the run (``PRESERVICA_TEST_RUN_DIR``). Each
session writes the tokens its sandbox issued there when it ends, and the secrets audit, run after both,
reads every session's logs and tokens from that folder. A plain ``pytest`` is a run of one session.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator

import pytest
from preservica_sandbox import SandboxServer
from preservica_sandbox.entity_actions import DEFAULT_ACTION_SECONDS, DEFAULT_SECURITY_TAGS

from tests.support.accounts import USERS
from tests.support.clock import FakeClock
from tests.support.sandbox import ISSUED_TOKENS, SEARCH_REPOSITORY, connection_json, remember_tokens
from tests.support.session import ISSUED_TOKENS_FILE, SESSION_DIR, SESSION_LOG  # sets Airflow's environment

_SESSION_HANDLER = logging.FileHandler(SESSION_LOG, encoding="utf-8")
_SESSION_HANDLER.setLevel(logging.DEBUG)
_SESSION_HANDLER.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


@pytest.fixture(autouse=True)
def _log_everything_to_the_session_log() -> None:
    """(Re-)attach the session log handler: Airflow's logging set-up may replace the root handlers."""
    root = logging.getLogger()
    if _SESSION_HANDLER not in root.handlers:
        root.addHandler(_SESSION_HANDLER)
    logging.getLogger("airflow_provider_preservica").setLevel(logging.DEBUG)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Append what each test printed and logged (captured by pytest) to the session log."""
    if report.sections:
        with SESSION_LOG.open("a", encoding="utf-8") as log:
            for title, content in report.sections:
                log.write(f"----- {report.nodeid} {title}\n{content}\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Leave this session's issued tokens in its folder: an audit in a later session of the run reads them."""
    (SESSION_DIR / ISSUED_TOKENS_FILE).write_text(
        "".join(f"{token}\n" for token in sorted(ISSUED_TOKENS)), encoding="utf-8"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shuffle",
        metavar="SEED",
        type=int,
        default=None,
        help="run the test files, and the tests within each file, in an order shuffled by SEED: a test that "
        "passes only after another fails here (`make test-random`; the same SEED gives the same order)",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = config.getoption("shuffle")
    return None if seed is None else f"test order shuffled with --shuffle={seed}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``last`` run after everything else (the log audit needs the whole session).

    With ``--shuffle=SEED`` files and the tests in each file are shuffled first (files stay together, so
    module fixtures are still built once per file).
    """
    seed = config.getoption("shuffle")
    if seed is not None:
        shuffle = random.Random(seed).shuffle
        files: dict[str, list[pytest.Item]] = {}
        for item in items:
            files.setdefault(item.nodeid.split("::")[0], []).append(item)
        groups = list(files.values())
        shuffle(groups)
        for group in groups:
            shuffle(group)
        items[:] = [item for group in groups for item in group]
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture
def sandbox_clock(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A ``FakeClock`` that times the sandbox's tokens (issue, expiry, refresh) for this test."""
    clock = FakeClock(time.time())
    monkeypatch.setattr(sandbox.state, "clock", clock)
    return clock


@pytest.fixture
def token_clock(sandbox_clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The sandbox's ``FakeClock``, also timing every hook's token cache and login.

    Tokens then age only when the test calls ``token_clock.advance(...)``: "due", "past the margin" and
    "expired" are exact, however slow the machine.
    """
    from airflow_provider_preservica.hooks.preservica import PreservicaHook

    monkeypatch.setattr(PreservicaHook, "token_clock", staticmethod(sandbox_clock))
    return sandbox_clock


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(users=USERS, token_lifetime=900).start()
    yield server
    remember_tokens(server)
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The session's sandbox, reset (counters, tokens, faults) and with every cache emptied."""
    from airflow_provider_preservica.client.auth.cache import TokenCache

    remember_tokens(sandbox_server)
    sandbox_server.state.reset()
    sandbox_server.state.update_config(
        {
            "token_lifetime": 900,
            "entity_action_seconds": DEFAULT_ACTION_SECONDS,
            "security_tags": list(DEFAULT_SECURITY_TAGS),
        }
    )
    TokenCache.clear_memory()
    yield sandbox_server
    remember_tokens(sandbox_server)
    TokenCache.clear_memory()


@pytest.fixture
def preservica_conn(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """``preservica_default`` pointing at the sandbox as ``archivist``."""
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox))
    return sandbox


@pytest.fixture
def small_repository(preservica_conn: SandboxServer) -> SandboxServer:
    """The sandbox holding ``tests/data/search_repository.json`` (two collections, five assets)."""
    preservica_conn.state.repository.seed(file=SEARCH_REPOSITORY)
    return preservica_conn
