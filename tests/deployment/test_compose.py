"""docker-compose.yaml, Dockerfile, .env.example and .dockerignore: valid and coherent with one another.

No Docker engine here, so nothing is started. The file is checked three ways: by a real Compose parser
when one is installed (``docker-compose config`` / ``docker compose config``), always against the official
compose-spec JSON schema, and by the cross-checks below that a schema cannot express (a healthcheck on every
long-running service, the Connection pointing at the sandbox service, the same Airflow pin everywhere...).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.support.compose_file import (
    COMPOSE_FILE,
    DOCKERFILE,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    REPO,
    SCHEMA_FILE,
    InterpolationError,
    command_of,
    environment_of,
    example_env,
    load,
    load_raw,
    option_value,
    read_env_file,
    referenced_variables,
)

AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
ONE_SHOT = {"airflow-init", "airflow-cli"}  # run to completion (or on demand): no healthcheck
SANDBOX = "preservica-sandbox"
COMMON_ENV = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__TEST_CONNECTION",
    "AIRFLOW_CONN_PRESERVICA_DEFAULT",
)


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return example_env()


@pytest.fixture(scope="module")
def compose(env: dict[str, str]) -> dict[str, Any]:
    return load(env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if name.startswith("airflow-")}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = service.get("depends_on") or {}
    return {name: {"condition": "service_started"} for name in raw} if isinstance(raw, list) else raw


# -- a real Compose implementation -------------------------------------------------------------------


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


COMPOSE_CLI = _compose_command()
needs_compose_cli = pytest.mark.skipif(
    COMPOSE_CLI is None,
    reason="no Compose implementation on PATH (Debian: apt-get install docker-compose); "
    "the schema and coherence tests below still run",
)


def _write_env(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / "compose.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")
    return path


def _compose_config(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert COMPOSE_CLI is not None
    command = [*COMPOSE_CLI, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)


@needs_compose_cli
def test_a_real_compose_parser_accepts_the_file_with_env_example(tmp_path: Path, env: dict[str, str]) -> None:
    result = _compose_config(_write_env(tmp_path, env))
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(AIRFLOW_COMPONENTS) | {"postgres", "redis", "airflow-init", SANDBOX} <= set(resolved["services"])
    # Compose resolved the anchors and the .env values exactly as the checks below assume.
    api_env = environment_of(resolved["services"]["airflow-apiserver"])
    assert api_env["AIRFLOW__CORE__FERNET_KEY"] == env["AIRFLOW_FERNET_KEY"]
    conn = json.loads(api_env["AIRFLOW_CONN_PRESERVICA_DEFAULT"])
    assert conn["host"] == env["PRESERVICA_HOST"] and conn["password"] == env["PRESERVICA_PASSWORD"]


@needs_compose_cli
def test_a_real_compose_parser_refuses_to_start_without_a_fernet_key(tmp_path: Path, env: dict[str, str]) -> None:
    without_key = {key: value for key, value in env.items() if key != "AIRFLOW_FERNET_KEY"}
    result = _compose_config(_write_env(tmp_path, without_key))
    assert result.returncode != 0
    assert "set AIRFLOW_FERNET_KEY in .env" in result.stderr


# -- the compose-spec schema ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_errors(validator: jsonschema.protocols.Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_file_matches_the_compose_spec_schema(validator: jsonschema.protocols.Validator, compose: dict) -> None:
    assert _schema_errors(validator, compose) == []


def test_the_schema_check_catches_a_misspelt_key(validator: jsonschema.protocols.Validator, env: dict) -> None:
    """The schema really constrains services (it is not an accept-anything schema)."""
    broken = load(env)
    broken["services"]["airflow-scheduler"]["healthcheck"]["intervall"] = "30s"
    broken["services"]["redis"]["depends_on"] = {"postgres": {"condition": "service_ready"}}
    errors = _schema_errors(validator, broken)
    assert any("intervall" in error for error in errors), errors
    assert any("service_ready" in error for error in errors), errors


# -- coherence ---------------------------------------------------------------------------------------


def test_every_airflow_component_of_the_official_layout_is_there(services: dict[str, dict[str, Any]]) -> None:
    for name, command in AIRFLOW_COMPONENTS.items():
        assert name in services, f"{name} missing"
        assert " ".join(command_of(services[name])) == command, name
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    init = services["airflow-init"]
    assert environment_of(init)["_AIRFLOW_DB_MIGRATE"] == "true"


def test_every_depends_on_target_exists_and_is_waited_for_properly(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            condition = spec.get("condition", "service_started")
            if target == "airflow-init":
                assert condition == "service_completed_successfully", f"{name} must wait for airflow-init to finish"
            else:
                assert condition == "service_healthy", f"{name} -> {target}: wait for health, not {condition}"
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no healthcheck"
            # A service in a profile may be switched off; nothing always-on may depend on it.
            if services[target].get("profiles"):
                assert service.get("profiles") == services[target]["profiles"], f"{name} needs optional {target}"
    for name in AIRFLOW_COMPONENTS:
        targets = depends_on(services[name])
        assert {"postgres", "redis", "airflow-init"} <= set(targets), name


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    long_running = set(services) - ONE_SHOT
    assert long_running >= set(AIRFLOW_COMPONENTS) | {"postgres", "redis", SANDBOX}
    for name in long_running:
        check = services[name].get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: {test}"
        assert services[name].get("restart") == "always", f"{name} should restart after a crash"
    for name in ONE_SHOT:
        assert services[name].get("restart") in (None, "no"), f"{name} runs once"


def test_healthchecks_probe_the_ports_the_services_listen_on(services: dict[str, dict[str, Any]]) -> None:
    api = services["airflow-apiserver"]
    api_probe = next(part for part in api["healthcheck"]["test"] if part.startswith("http"))
    published = {str(p).rsplit(":", 1)[-1] for p in api["ports"]}
    assert str(urlsplit(api_probe).port) in published
    sandbox = services[SANDBOX]
    sandbox_probe = next(part for part in sandbox["healthcheck"]["test"] if part.startswith("http"))
    assert str(urlsplit(sandbox_probe).port) == option_value(command_of(sandbox), "--port")
    scheduler_probe = next(p for p in services["airflow-scheduler"]["healthcheck"]["test"] if p.startswith("http"))
    assert urlsplit(scheduler_probe).port == 8974  # [scheduler] scheduler_health_check_server_port
    assert environment_of(services["airflow-scheduler"])["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"


def test_every_airflow_service_gets_the_common_environment(
    services: dict[str, dict[str, Any]], env: dict[str, str]
) -> None:
    reference = environment_of(services["airflow-apiserver"])
    for name, service in airflow_services(services).items():
        values = environment_of(service)
        for key in COMMON_ENV:
            assert values.get(key), f"{name} lacks {key}"
            assert values[key] == reference[key], f"{name} has a different {key}"
        assert values["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert values["AIRFLOW__CORE__FERNET_KEY"] == env["AIRFLOW_FERNET_KEY"], name
        assert values["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW_JWT_SECRET"], name
        assert values["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
        assert service["image"] == services["airflow-apiserver"]["image"], f"{name} runs another image"
    # The URLs name services that exist, on the ports those images use.
    values = environment_of(services["airflow-scheduler"])
    assert urlsplit(values["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
    assert urlsplit(values["AIRFLOW__CELERY__RESULT_BACKEND"]).hostname == "postgres"
    assert urlsplit(values["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    execution_api = urlsplit(values["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert execution_api.hostname == "airflow-apiserver" and execution_api.path == "/execution/"
    assert str(execution_api.port) in {str(p).rsplit(":", 1)[-1] for p in services["airflow-apiserver"]["ports"]}


def test_the_fernet_key_comes_from_env_and_is_required(env: dict[str, str]) -> None:
    assert referenced_variables(load_raw())["AIRFLOW_FERNET_KEY"] == ":?"
    without = {key: value for key, value in env.items() if key != "AIRFLOW_FERNET_KEY"}
    with pytest.raises(InterpolationError, match="AIRFLOW_FERNET_KEY"):
        load(without)
    from cryptography.fernet import Fernet

    Fernet(env["AIRFLOW_FERNET_KEY"].encode())  # the documented generator makes a valid key


def _sandbox_connection(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    value = environment_of(services["airflow-worker"])["AIRFLOW_CONN_PRESERVICA_DEFAULT"]
    conn: dict[str, Any] = json.loads(value)
    return conn


def test_the_connection_points_at_the_sandbox_service_and_its_account(services: dict[str, dict[str, Any]]) -> None:
    conn = _sandbox_connection(services)
    assert conn["conn_type"] == "preservica"
    url = urlsplit(conn["host"])
    sandbox_args = command_of(services[SANDBOX])
    assert url.hostname == SANDBOX
    assert str(url.port) == option_value(sandbox_args, "--port")
    assert option_value(sandbox_args, "--host") == "0.0.0.0"
    login, password, tenant = option_value(sandbox_args, "--user").split(":")
    assert (login, password, tenant) == (conn["login"], conn["password"], conn["extra"]["tenant"])
    assert services[SANDBOX]["image"] == services["airflow-worker"]["image"]
    assert services[SANDBOX]["entrypoint"][-1] == "preservica-sandbox"


def _settings(conn_json: str) -> Any:
    from airflow.models.connection import Connection

    from airflow_provider_preservica.connection.sources import settings_from_connection

    return settings_from_connection(Connection.from_json(conn_json, conn_id="preservica_default"))


def test_the_provider_accepts_the_sandbox_connection(services: dict[str, dict[str, Any]]) -> None:
    """The provider's own reader: plain http to a container name needs ``allow_http``, which must be read."""
    settings = _settings(environment_of(services["airflow-worker"])["AIRFLOW_CONN_PRESERVICA_DEFAULT"])
    assert settings.base_url == "http://preservica-sandbox:8765"
    assert (settings.username, settings.tenant) == ("archivist", "SANDBOX")
    assert settings.token_cache == "variable"


def test_swapping_the_sandbox_for_a_real_tenant_needs_only_env(env: dict[str, str]) -> None:
    """What docs/deployment.md describes: new PRESERVICA_* values, http off, the sandbox profile dropped."""
    from airflow_provider_preservica.exceptions import InsecureTransportError

    tenant_env = {key: value for key, value in env.items() if key != "COMPOSE_PROFILES"}
    tenant_env.update(
        PRESERVICA_HOST="eu.preservica.com",
        PRESERVICA_LOGIN="robot@example.org",
        PRESERVICA_PASSWORD="a-Real-passw0rd",
        PRESERVICA_TENANT="MYTENANT",
        PRESERVICA_ALLOW_HTTP="false",
    )
    services = load(tenant_env)["services"]
    settings = _settings(environment_of(services["airflow-worker"])["AIRFLOW_CONN_PRESERVICA_DEFAULT"])
    assert settings.base_url == "https://eu.preservica.com"
    assert (settings.username, settings.tenant) == ("robot@example.org", "MYTENANT")
    # Nothing that always runs needs the sandbox, so it can be left out...
    for name, service in services.items():
        assert SANDBOX not in depends_on(service), f"{name} would pull the sandbox in"
    assert services[SANDBOX]["profiles"] == [env["COMPOSE_PROFILES"]]
    # ...and with http off, a forgotten sandbox host is refused rather than sent the password in clear.
    tenant_env["PRESERVICA_HOST"] = env["PRESERVICA_HOST"]
    services = load(tenant_env)["services"]
    with pytest.raises(InsecureTransportError):
        _ = _settings(environment_of(services["airflow-worker"])["AIRFLOW_CONN_PRESERVICA_DEFAULT"]).base_url


def _mount_points(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (volume name or host path) of a service's short-syntax volumes."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        mounts[target] = source
    return mounts


def test_named_volumes_are_declared_and_shared_where_needed(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for target, source in _mount_points(service).items():
            if source.startswith((".", "/", "~")):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: bind source {source} does not exist"
            else:
                assert source in declared, f"{name} mounts undeclared volume {source} at {target}"
                used.add(source)
    assert declared == used, f"declared but unused: {declared - used}"
    # DAGs: the example DAGs; logs and data: one volume shared by every Airflow component.
    worker = _mount_points(services["airflow-worker"])
    assert Path(worker["/opt/airflow/dags"]).name == "example_dags"
    assert sorted((REPO / "example_dags").glob("preservica_*.py"))
    for name in AIRFLOW_COMPONENTS:
        mounts = _mount_points(services[name])
        assert mounts == worker, f"{name} mounts {mounts}, the worker {worker}"
    data_mount = next(target for target, source in worker.items() if source == "preservica-data")
    for key in ("AIRFLOW_VAR_PRESERVICA_LANDING_DIR", "AIRFLOW_VAR_PRESERVICA_REPORTS_DIR"):
        assert environment_of(services["airflow-worker"])[key].startswith(data_mount + "/"), key
    assert "postgres-db-volume" in _mount_points(services["postgres"]).values()


def test_env_example_lists_every_variable_the_file_uses() -> None:
    used = referenced_variables(load_raw())
    listed = read_env_file(ENV_EXAMPLE)
    missing = sorted(set(used) - set(listed))
    assert not missing, f".env.example does not list {missing}"
    unused = sorted(set(listed) - set(used) - {"COMPOSE_PROFILES"})
    assert not unused, f".env.example lists variables docker-compose.yaml never reads: {unused}"
    required = {name for name, op in used.items() if op in (":?", "?")}
    assert {"AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "PRESERVICA_PASSWORD"} <= required
    # The two secrets are left for the user to generate; everything else required has a working value.
    assert listed["AIRFLOW_FERNET_KEY"] == "" and listed["AIRFLOW_JWT_SECRET"] == ""
    assert all(listed[name] for name in required - {"AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"})
    assert ".env" in (REPO / ".gitignore").read_text(encoding="utf-8").split()


def _dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)", DOCKERFILE.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_the_dockerfile_pins_the_airflow_the_compose_file_asks_for(services: dict[str, dict[str, Any]]) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    pinned = _dockerfile_args()["AIRFLOW_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), pinned
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}", text, flags=re.MULTILINE)
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in text  # pip may not move Airflow off the pin
    assert "--constraint" in text and "constraints-${AIRFLOW_VERSION}" in _dockerfile_args()["AIRFLOW_CONSTRAINTS_URL"]
    assert re.search(r"pip install --no-cache-dir", text)
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        assert build["args"]["AIRFLOW_VERSION"] == pinned, f"{name} builds another Airflow"
        assert build.get("context", ".") == ".", f"{name} builds from another directory"
    assert load_raw()["x-airflow-common"]["image"].endswith(f":{pinned}}}")
    import airflow

    tested = airflow.__version__.split(".")[:2]
    assert pinned.split(".")[:2] == tested, f"the image pins Airflow {pinned}; the tests run on {airflow.__version__}"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching .dockerignore line wins (``!`` re-includes); a dir rule covers its files."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.strip("/").removeprefix("**/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch(prefix, body) or fnmatch(prefix.rsplit("/", 1)[-1], body) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied: list[str] = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY"):
            args = [arg for arg in line.split()[1:] if not arg.startswith("--")]
            copied.extend(args[:-1])
    assert {"pyproject.toml", "README.md", "airflow_provider_preservica"} <= set(copied)
    for source in copied:
        assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
        assert not _ignored(source, patterns), f".dockerignore excludes {source}, which the Dockerfile copies"
    module = "airflow_provider_preservica/hooks/preservica.py"
    assert not _ignored(module, patterns)
    for heavy in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", ".env"):
        assert _ignored(heavy, patterns), f"{heavy} would be sent to the Docker daemon"
    assert _ignored("airflow_provider_preservica/__pycache__/x.pyc", patterns)
