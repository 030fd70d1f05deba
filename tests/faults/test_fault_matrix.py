"""The fault matrix (issue 7): each scenario of ``benchmarks/fault_scenarios.py`` as a real Airflow task.

Each test resets and seeds the session's sandbox, runs one operator with ``dag.test()`` while a fault is
injected, and checks what a user would see: the task's state, the number of logins, the words its log names,
and that nothing was lost or duplicated. ``python -m benchmarks.faults`` runs the same scenarios and prints
them as one table. A scenario whose ``known_issue`` is set documents a client defect and is xfail(strict=True).
"""

from __future__ import annotations

import pytest
from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

from benchmarks.fault_scenarios import SCENARIOS, Scenario, run_scenario
from tests.support.accounts import ARCHIVIST

pytestmark = pytest.mark.integration

# Airflow 3.1's dag.test() (InProcessTestSupervisor) runs on_retry_callback / on_failure_callback without
# context["exception"]; 3.2 passes it, and so does 3.1's real task runner. The matrix reads a failed try's
# error from those callbacks, so on 3.1 it cannot see the text of an error that is not also logged.
CALLBACKS_GET_THE_EXCEPTION = Version(AIRFLOW_VERSION) >= Version("3.2")


def _case(scenario: Scenario) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=scenario.known_issue)] if scenario.known_issue else []
    return pytest.param(scenario, id=scenario.id, marks=marks)


@pytest.mark.parametrize("scenario", [_case(s) for s in SCENARIOS])
def test_fault_scenario(scenario: Scenario, sandbox, airflow_db, tmp_path) -> None:
    outcome = run_scenario(scenario, sandbox, ARCHIVIST, tmp_path)

    unseen = f"neither the log nor the error says {scenario.evidence!r}"
    if not CALLBACKS_GET_THE_EXCEPTION and outcome.problems == [unseen]:
        pytest.skip(
            f"Airflow {AIRFLOW_VERSION} < 3.2: dag.test() gives failure/retry callbacks no exception, so the "
            f"error text {scenario.evidence!r} cannot be checked; every other check of this scenario passed"
        )
    assert outcome.problems == [], f"{scenario.title}: {outcome.problems}; log excerpt: {outcome.excerpt}"
