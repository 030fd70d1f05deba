"""The fault matrix (issue 7): each scenario of ``benchmarks/fault_scenarios.py`` as a real Airflow task.

Each test resets and seeds the session's sandbox, runs one operator with ``dag.test()`` while a fault is
injected, and checks what a user would see: the task's state, the number of logins, the words its log names,
and that nothing was lost or duplicated. ``python benchmarks/faults.py`` runs the same scenarios and prints
them as one table. A scenario whose ``known_issue`` is set documents a client defect and is xfail(strict=True).
"""

from __future__ import annotations

import pytest

from benchmarks.fault_scenarios import SCENARIOS, Scenario, run_scenario
from tests.conftest import ARCHIVIST

pytestmark = pytest.mark.integration


def _case(scenario: Scenario) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=scenario.known_issue)] if scenario.known_issue else []
    return pytest.param(scenario, id=scenario.id, marks=marks)


@pytest.mark.parametrize("scenario", [_case(s) for s in SCENARIOS])
def test_fault_scenario(scenario: Scenario, sandbox, airflow_db, tmp_path) -> None:
    outcome = run_scenario(scenario, sandbox, ARCHIVIST, tmp_path)

    assert outcome.problems == [], f"{scenario.title}: {outcome.problems}; log excerpt: {outcome.excerpt}"
