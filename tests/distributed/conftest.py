"""The distributed tier: one real Airflow deployment (PostgreSQL, Redis, Celery) for all its tests.

Skipped, with the reason printed (``-rs``), where PostgreSQL or Redis does not answer on loopback or
the Airflow/Celery stack for PostgreSQL is not installed. Every test starts from a reset sandbox
seeded with ``tests/data/search_repository.json`` and an empty token cache.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.deployment import Deployment, DeploymentError, services_missing
from tests.support.sandbox import SEARCH_REPOSITORY

SANDBOX_DEFAULTS = {"token_lifetime": 900, "ingest_seconds": 1, "export_seconds": 1}


def _stack_missing() -> str | None:
    """Why this Python environment cannot run Airflow on PostgreSQL with Celery, or ``None``."""
    try:
        import asyncpg  # noqa: F401  # Airflow 3 opens an async engine on the metadata DB at start
    except ImportError:
        return "asyncpg is not installed (Airflow 3 needs it for a PostgreSQL metadata DB): pip install asyncpg"
    try:
        import airflow.providers.celery.executors.celery_executor_utils  # noqa: F401
    except ImportError as exc:
        return f"the Celery provider cannot be imported ({exc}); install a Celery release it supports"
    return None


@pytest.fixture(scope="package")
def deployment() -> Iterator[Deployment]:
    """One deployment for this package's tests, stopped as soon as the last of them ends (not at session end)."""
    reason = _stack_missing() or services_missing()
    if reason:
        pytest.skip(f"distributed tier not run: {reason}")
    deployment = Deployment()
    try:
        deployment.start()
    except BaseException:
        print(deployment.report())
        deployment.stop()
        raise
    try:
        yield deployment
    finally:
        deployment.stop()
        if deployment.failures:
            print(f"\ndistributed tier: logs kept in {deployment.home}")
        else:
            shutil.rmtree(deployment.home, ignore_errors=True)


@pytest.fixture
def dist(deployment: Deployment) -> Iterator[Deployment]:
    """The deployment with a fresh sandbox, no cached token and every component running."""
    dead = deployment.dead_components()
    if dead:
        raise DeploymentError(f"components died before this test: {', '.join(dead)}\n{deployment.report()}")
    deployment.sandbox("POST", "reset", {"repository": True})
    deployment.sandbox("POST", "config", SANDBOX_DEFAULTS)
    deployment.sandbox("POST", "seed", {"file": str(SEARCH_REPOSITORY)})
    deployment.execute("DELETE FROM variable WHERE key LIKE %s", ("preservica_%",))
    yield deployment
    deployment.sandbox("POST", "config", SANDBOX_DEFAULTS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """On failure, attach the tail of every component's log to the test report."""
    report = yield
    deployment = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and isinstance(deployment, Deployment):
        deployment.failures += 1
        report.sections.append(("distributed deployment logs", deployment.report()))
    return report
