"""The Airflow UI of the browser test (``tests/ui``): where it runs, its admin, and its REST API for set-up."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class AirflowUI:
    url: str
    user: str
    password: str
    sandbox_url: str
    sandbox_login: str
    sandbox_password: str
    home: Path
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, body: object | None = None) -> object:
        """The REST API as the admin (for set-up the test does not exercise through the browser)."""
        token = _post_json(f"{self.url}/auth/token", {"username": self.user, "password": self.password})
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None


def _post_json(url: str, body: object) -> dict[str, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, str] = json.load(response)
        return result
