"""Test session set-up: a private Airflow home on SQLite, one sandbox, and a log of everything.

Airflow reads its configuration at import time, so the environment is fixed here, before any test
module imports Airflow. Every log record of the session also goes to ``SESSION_LOG`` so that the
last test can grep it (and the Airflow task logs) for secrets.

``make test`` runs the tiers as two pytest processes side by side (see the Makefile), each with its own
Airflow home, sandbox and lock directory, all in one folder of the run (``PRESERVICA_TEST_RUN_DIR``). Each
session writes the tokens its sandbox issued there when it ends, and the secrets audit, run after both,
reads every session's logs and tokens from that folder. A plain ``pytest`` is a run of one session.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: The folder of this test run: one sub-folder per pytest session of the run (``make test`` runs several).
RUN_ROOT = Path(os.environ.get("PRESERVICA_TEST_RUN_DIR") or tempfile.mkdtemp(prefix="preservica-tests-"))
RUN_ROOT.mkdir(parents=True, exist_ok=True)
_TMP = Path(tempfile.mkdtemp(prefix="session-", dir=RUN_ROOT))
AIRFLOW_HOME = _TMP / "airflow-home"
AIRFLOW_HOME.mkdir()
SESSION_LOG = _TMP / "session.log"
#: Where a session leaves the tokens its sandbox issued, for an audit run in another session.
ISSUED_TOKENS_FILE = "issued-tokens.txt"

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# timeout: how long a writer waits for SQLite's one write lock (Python's default, 5 s, is too short when eight task
# processes start at once on a busy machine: "database is locked" failed a test process before it ran).
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_HOME}/airflow.db?timeout=60"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "tests" / "dags")
os.environ["AIRFLOW__CORE__FERNET_KEY"] = "5bVSQmY6mzQ0aOJQy8b3bR1QhXdY0vYk7b8yV3xEJ0A="
os.environ["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
os.environ["PRESERVICA_LOCK_DIR"] = str(_TMP)
os.environ.pop("PRESERVICA_INI", None)
for _name in list(os.environ):
    if _name.startswith("AIRFLOW_CONN_PRESERVICA") or _name.startswith("AIRFLOW_VAR_PRESERVICA"):
        del os.environ[_name]

from preservica_sandbox import SandboxServer, SandboxUser  # noqa: E402
from preservica_sandbox.entity_actions import (  # noqa: E402
    DEFAULT_ACTION_SECONDS,
    DEFAULT_SECURITY_TAGS,
)

ARCHIVIST = SandboxUser(name="archivist", password="Arch1vist-s3cret-pw", tenant="SANDBOX")
PROD_USER = SandboxUser(name="prod-robot", password="pr0d-R0bot-pw-7781", tenant="PROD")
TEST_USER = SandboxUser(name="test-robot", password="t3st-R0bot-pw-4410", tenant="TEST")
TWO_FA_USER = SandboxUser(
    name="guarded", password="Guard3d-2fa-pw-0007", tenant="SANDBOX", totp_secret="JBSWY3DPEHPK3PXPJBSWY3DP"
)
#: A second account of the archivist's tenant, with the manager role: approves deletions.
MANAGER = SandboxUser(name="records.manager", password="Man4ger-appr0val-pw", tenant="SANDBOX")
USERS = [ARCHIVIST, PROD_USER, TEST_USER, TWO_FA_USER, MANAGER]
WRONG_PASSWORD = "Wr0ng-Passw0rd-991"
SECRETS = [u.password for u in USERS] + [u.totp_secret for u in USERS if u.totp_secret] + [WRONG_PASSWORD]
ISSUED_TOKENS: set[str] = set()


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
    (_TMP / ISSUED_TOKENS_FILE).write_text("".join(f"{token}\n" for token in sorted(ISSUED_TOKENS)), encoding="utf-8")


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


class FakeClock:
    """Wall-clock seconds that stand still until a test moves them: token lifetimes without sleeping.

    Pass it as ``clock`` to what times tokens (``TokenCache``, ``PasswordLogin``, the sandbox state), then
    ``advance`` it past the moment under test: no test then depends on how fast the machine is.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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


def remember_tokens(server: SandboxServer) -> None:
    """Keep every token (and refresh token) the sandbox issued, so the leak test can search for all of them."""
    with server.state.lock:
        ISSUED_TOKENS.update(server.state._tokens.keys())
        ISSUED_TOKENS.update(record.refresh_token for record in server.state._tokens.values())


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


def connection_json(server: SandboxServer, user: SandboxUser = ARCHIVIST, **extra: object) -> str:
    extras: dict[str, object] = {"tenant": user.tenant}
    if user.totp_secret:
        extras["two_fa_secret"] = user.totp_secret
    extras.update(extra)
    return json.dumps(
        {
            "conn_type": "preservica",
            "host": server.base_url,
            "login": user.name,
            "password": user.password,
            "extra": extras,
        }
    )


def logins(server: SandboxServer, user: str = "archivist") -> int:
    return int(server.state.stats()["logins"].get(user, 0))


@pytest.fixture
def preservica_conn(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    """``preservica_default`` pointing at the sandbox as ``archivist``."""
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", connection_json(sandbox))
    return sandbox


def inject(server: SandboxServer, **fault: object) -> None:
    """Post a fault to the sandbox's control surface, exactly as the README documents it."""
    import requests

    response = requests.post(f"{server.base_url}/_sandbox/faults", json=fault, timeout=10)
    response.raise_for_status()


SEARCH_REPOSITORY = REPO / "tests" / "data" / "search_repository.json"
MAPS_FOLDER = "a0000000-0000-4000-8000-000000000001"


@pytest.fixture
def small_repository(preservica_conn: SandboxServer) -> SandboxServer:
    """The sandbox holding ``tests/data/search_repository.json`` (two collections, five assets)."""
    preservica_conn.state.repository.seed(file=SEARCH_REPOSITORY)
    return preservica_conn
