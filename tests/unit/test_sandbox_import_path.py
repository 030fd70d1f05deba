"""0.1's import path of the sandbox still works, warns, and hands out the very same modules."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

from tests.support import REPO


def test_old_import_path_warns_and_aliases_the_same_modules():
    sys.modules.pop("airflow_provider_preservica.sandbox", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("airflow_provider_preservica.sandbox")
    assert any("install preservica-sandbox and import preservica_sandbox" in str(w.message) for w in caught)
    import preservica_sandbox
    from airflow_provider_preservica.sandbox.server import SandboxServer as OldServer
    from preservica_sandbox.server import SandboxServer

    assert old.SandboxServer is preservica_sandbox.SandboxServer is SandboxServer
    assert OldServer is SandboxServer  # one class, not a second copy of the module
    assert importlib.import_module("airflow_provider_preservica.sandbox.state") is importlib.import_module(
        "preservica_sandbox.state"
    )


def test_old_module_entry_point_still_starts_the_cli():
    for module in ("airflow_provider_preservica.sandbox", "preservica_sandbox"):
        result = subprocess.run(
            [sys.executable, "-W", "ignore", "-m", module, "--help"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert result.returncode == 0 and "usage: preservica-sandbox" in result.stdout, result.stderr
