"""The fault matrix as one table: every scenario of ``fault_scenarios.py`` run in real Airflow against the sandbox.

Each scenario runs one of our operators with ``dag.test()`` (a throwaway Airflow home on SQLite) while the
local Preservica sandbox injects a fault, and reports what a user would see: the DAG outcome, the number of
logins, whether anything was lost or duplicated, and the line naming the cause (the error the task failed
with, or the log line showing the recovery). The same scenarios are the tests of ``tests/faults``.

    .venv/bin/python -m benchmarks.faults [--only token_revoked_mid_ingest,export_failed] [--json out.json]

Exit status 1 if any scenario did not behave as it expects (scenarios marked as a known issue excepted).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from benchmarks import harness
from benchmarks.common import _prepare_environment

USER = {"name": "fault-robot", "password": "F4ult-R0bot-pw-2026", "tenant": "FAULTS"}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.parser(
        __doc__,
        json_help="also write the outcomes as JSON to PATH",
        keep="the temporary directory (Airflow home, outputs)",
    )
    parser.add_argument("--only", help="comma-separated scenario ids (default: all)")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's own output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="preservica-faults-"))
    _prepare_environment(tmp, database=True)
    warnings.filterwarnings("ignore")
    import logging

    from benchmarks.fault_scenarios import SCENARIOS, markdown_table, run_scenario, scenario_by_id

    chosen = [scenario_by_id(s.strip()) for s in args.only.split(",")] if args.only else SCENARIOS
    server = None
    outcomes = []
    try:
        from airflow.utils import db
        from preservica_sandbox import SandboxServer, SandboxUser

        db.resetdb()
        if not args.verbose:
            logging.getLogger().setLevel(logging.WARNING)
        user = SandboxUser(name=USER["name"], password=USER["password"], tenant=USER["tenant"])
        server = SandboxServer(users=[user], token_lifetime=900).start()
        for scenario in chosen:
            outcome = run_scenario(scenario, server, user, tmp / "runs" / scenario.id, quiet=not args.verbose)
            mark = "ok" if outcome.as_expected else "NOT AS EXPECTED: " + "; ".join(outcome.problems)
            print(f"  {scenario.id:<36} {outcome.state:<8} {outcome.seconds:5.1f} s  {mark}", file=sys.stderr)
            outcomes.append(outcome)
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"Fault matrix: {len(outcomes)} scenarios, each a real Airflow task (dag.test) against the sandbox\n")
    print(markdown_table(outcomes))
    print(
        "\nlost: after success, items missing from the result; after failure, files the ingest did not put in"
        " Preservica\n(- = the task failed and left no output). duplicated: rows, assets, ingests or exports"
        " beyond one. logins: the sandbox's own count."
    )
    harness.write_json(
        args.json,
        [
            {
                "scenario": o.scenario.id,
                "title": o.scenario.title,
                "state": o.state,
                "logins": o.logins,
                "lost": o.lost,
                "duplicated": o.duplicated,
                "excerpt": o.excerpt,
                "seconds": round(o.seconds, 2),
                "as_expected": o.as_expected,
                "problems": o.problems,
                "known_issue": o.scenario.known_issue,
            }
            for o in outcomes
        ],
        say=False,
    )
    unexpected = [o for o in outcomes if not o.as_expected and not o.scenario.known_issue]
    return 1 if unexpected else 0


if __name__ == "__main__":
    harness.run(main)
