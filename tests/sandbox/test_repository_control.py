"""The repository's control surface: /_sandbox/seed, /_sandbox/repository and reset options."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository

from .conftest import stats


def control(server: SandboxServer, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, f"{server.base_url}/_sandbox{path}", json=body, timeout=60)


def test_seed_generates_replaces_and_appends(sandbox: SandboxServer, repository: Repository) -> None:
    first = control(sandbox, "POST", "/seed", {"assets": 300, "random_seed": 1})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["success"] is True and body["added"]["assets"] == 300
    assert body["repository"]["assets"] == 300 and body["seconds"] >= 0
    refs = {e.ref for e in repository.entities()}
    again = control(sandbox, "POST", "/seed", {"assets": 300, "random_seed": 1}).json()
    assert again["repository"]["assets"] == 300 and {e.ref for e in repository.entities()} == refs  # replaced
    appended = control(sandbox, "POST", "/seed", {"assets": 50, "random_seed": 2, "replace": False}).json()
    assert appended["repository"]["assets"] == 350
    clash = control(sandbox, "POST", "/seed", {"assets": 50, "random_seed": 2, "replace": False})
    assert clash.status_code == 409 and "duplicate" in clash.json()["message"]
    assert control(sandbox, "GET", "/repository").json()["assets"] == 350
    assert stats(sandbox.base_url)["requests"] == {}  # control calls are not counted


def test_seed_from_a_file(sandbox: SandboxServer, repository: Repository, tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"folders": [{"title": "Only folder", "assets": [{"title": "Only asset"}]}]}))
    response = control(sandbox, "POST", "/seed", {"file": str(seed)})
    assert response.status_code == 200, response.text
    assert [e.title for e in repository.entities()] == ["Only folder", "Only asset"]
    missing = control(sandbox, "POST", "/seed", {"file": str(tmp_path / "missing.json")})
    assert missing.status_code == 400 and "cannot read seed file" in missing.json()["message"]


def test_seed_rejects_bad_options(sandbox: SandboxServer, repository: Repository) -> None:
    for body, message in (
        ({"asets": 5}, "unknown seed options"),
        ({"assets": -1}, "non-negative"),
        ({"assets": "many"}, "non-negative"),
        ([1, 2], "JSON object"),
    ):
        response = control(sandbox, "POST", "/seed", body)
        assert response.status_code == 400 and message in response.json()["message"], response.text


def test_reset_keeps_the_repository_unless_asked(sandbox: SandboxServer, repository: Repository) -> None:
    repository.seed(assets=20, random_seed=4)
    assert control(sandbox, "POST", "/reset").status_code == 200
    assert repository.counts()["assets"] == 20
    assert control(sandbox, "POST", "/reset", {"repository": False}).status_code == 200
    assert repository.counts()["assets"] == 20
    assert control(sandbox, "POST", "/reset", {"repository": True}).status_code == 200
    assert repository.counts()["assets"] == 0
    assert control(sandbox, "POST", "/reset", {"everything": True}).status_code == 400


def test_clear_and_save_repository(sandbox: SandboxServer, repository: Repository) -> None:
    repository.seed(assets=10, random_seed=4)
    cleared = control(sandbox, "DELETE", "/repository").json()
    assert cleared["success"] is True and cleared["assets"] == cleared["folders"] == 0
    assert control(sandbox, "POST", "/repository/save").json() == {"success": True, "saved": False}  # no data dir
