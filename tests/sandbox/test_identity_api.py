"""Version details and user details."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import requests
from preservica_sandbox import SandboxServer

from .conftest import token_for


def _get(server: SandboxServer, path: str) -> requests.Response:
    headers = {"Preservica-Access-Token": token_for(server.base_url)}
    return requests.get(f"{server.base_url}{path}", headers=headers, timeout=10)


def test_version_details_xml(sandbox: SandboxServer) -> None:
    response = _get(sandbox, "/api/entity/versiondetails/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://preservica.com/EntityAPI/v7.7}VersionDetails"
    assert root.findtext("{http://preservica.com/EntityAPI/v7.7}CurrentVersion") == "7.7.1"


def test_version_namespace_follows_configured_version(sandbox: SandboxServer) -> None:
    sandbox.state.update_config({"version": "6.1.2"})
    root = ET.fromstring(_get(sandbox, "/api/entity/versiondetails/version").content)
    assert root.tag == "{http://preservica.com/EntityAPI/v6.0}VersionDetails"
    assert root.findtext("{http://preservica.com/EntityAPI/v6.0}CurrentVersion") == "6.1.2"


def test_versioned_path_pins_the_namespace(sandbox: SandboxServer) -> None:
    root = ET.fromstring(_get(sandbox, "/api/entity/v6.5/versiondetails/version").content)
    assert root.tag == "{http://preservica.com/EntityAPI/v6.5}VersionDetails"
    assert root.findtext("{http://preservica.com/EntityAPI/v6.5}CurrentVersion") == "7.7.1"
    assert _get(sandbox, "/api/entity/latest/versiondetails/version").status_code == 404


def test_version_needs_a_token(sandbox: SandboxServer) -> None:
    response = requests.get(f"{sandbox.base_url}/api/entity/versiondetails/version", timeout=10)
    assert response.status_code == 401
    assert response.json()["success"] is False


def test_user_details(sandbox: SandboxServer) -> None:
    body = _get(sandbox, "/api/user/details").json()
    assert body["success"] is True
    assert body["userName"] == body["user"] == "archivist"
    assert body["tenant"] == "SANDBOX"
    assert body["roles"] == ["ROLE_SDB_MANAGER_USER", "ROLE_SDB_ACCESS_USER"]
