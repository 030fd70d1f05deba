"""Single flight across OS processes: many Airflow task processes, one login."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.airflow_db import delete_variable
from tests.support.sandbox import logins
from tests.support.token_race import TokenRace

PROCESSES = 8


@pytest.mark.integration
@pytest.mark.multiprocess
@pytest.mark.parametrize("hosts", ["one host", "eight hosts"])
def test_processes_asking_at_the_same_moment_produce_one_login(preservica_conn, airflow_db, tmp_path: Path, hosts):
    """Eight task processes ask for a token within milliseconds of one another.

    "one host": they share the host lock directory, as tasks on one worker do. "eight hosts": each
    has its own lock directory, as tasks on different workers do, so only the cross-host login
    lease in the shared Variable keeps them to one login.
    """
    delete_variable("preservica_access_token__preservica_default")
    race = TokenRace(preservica_conn, tmp_path, PROCESSES, month=3 if hosts == "one host" else 4)
    race.start(own_lock_dirs=hosts == "eight hosts")
    race.wait_until_ready()
    outputs = race.go()  # every process now asks for a token within a few milliseconds of the others
    assert [code for code, _ in outputs] == [0] * PROCESSES, outputs[0][1][-3000:]
    assert logins(preservica_conn) == 1
