"""The Preservica Connection form and Test button in Airflow's own UI, in a real headless Chromium.

What a user sees: Admin > Connections > Add Connection, type "Preservica". The expected labels,
placeholders and defaults come from the provider's declaration (``get_provider_info``): the test checks
that Airflow renders that declaration, and that what the form saves is what the hook reads.
"""

from __future__ import annotations

import json
import urllib.error
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_preservica.auth.sources import EXTRA_ALIASES
from airflow_provider_preservica.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from tests.ui.cdp import CDPError, Page
from tests.ui.conftest import AirflowUI

pytestmark = pytest.mark.usefixtures("screenshot")

DIALOG = "document.querySelector('[role=dialog]')"
STANDARD_FIELDS = ("host", "login", "password", "port", "schema", "description")


def _js(value: str) -> str:
    return json.dumps(value)


def _button(text: str, scope: str = "document") -> str:
    return f"Array.from({scope}.querySelectorAll('button')).find(b => b.innerText.trim() === {_js(text)})"


def _field(page: Page, name: str) -> dict[str, Any] | None:
    """What the user sees of the input ``name``: label, placeholder, value, helper text and visibility."""
    found: dict[str, Any] | None = page.evaluate(
        f"""(() => {{
        const input = {DIALOG}.querySelector('[name=' + {_js(name)} + ']');
        if (!input) return null;
        const field = input.closest('[data-scope=field][data-part=root]') || input.parentElement;
        const label = document.getElementById(input.getAttribute('aria-labelledby'))
            || {DIALOG}.querySelector('label[for="' + input.id + '"]')
            || field.querySelector('label');
        const helper = field.querySelector('[data-part=helper-text]');
        const box = (label || input).getBoundingClientRect();
        return {{label: label ? label.innerText.trim() : null, placeholder: input.getAttribute('placeholder'),
                 value: input.type === 'checkbox' ? input.checked : input.value, type: input.type,
                 helper: helper ? helper.innerText.trim() : null, visible: box.width > 0 && box.height > 0}};
    }})()"""
    )
    return found


def _open_section(page: Page, title: str) -> None:
    """Expand one accordion section of the dialog (opening one closes the others)."""
    trigger = f"{_button(title, DIALOG)}"
    if page.evaluate(f"{trigger}.getAttribute('aria-expanded')") != "true":
        page.click(trigger, title)
    page.wait_for(f"{trigger}.getAttribute('aria-expanded') === 'true'", what=f"{title} to open")


def _stored(ui: AirflowUI, conn_id: str) -> bool:
    try:
        ui.api("GET", f"/api/v2/connections/{conn_id}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def _save(page: Page, ui: AirflowUI, conn_id: str, attempts: int = 3) -> None:
    """Press Save until the connection is stored and the dialog closes.

    The form validates (and re-renders) when the field being typed in loses focus, which the press on Save
    causes: on a busy machine the button can move between mouse down and up, and the click is lost without a
    request (seen in CI: no POST in the API server's log). Leaving the field first, and pressing again only
    while nothing was stored, makes that one lost click harmless without ever saving twice.
    """
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for attempt in range(1, attempts + 1):
        page.click(_button("Save", DIALOG), "Save")
        try:
            page.wait_for(f"!{DIALOG}", timeout=10, what="the dialog to close after Save")
            return
        except CDPError:
            if _stored(ui, conn_id) or attempt == attempts:
                page.wait_for(f"!{DIALOG}", what="the dialog to close after Save")
                return


def _open_preservica_form(page: Page, ui: AirflowUI, conn_id: str) -> None:
    page.goto(f"{ui.url}/connections")
    page.click(_button("Add Connection"), "Add Connection")
    page.type_into(f"{DIALOG}.querySelector('input[name=connection_id]')", conn_id, "Connection ID")
    page.type_into(f"{DIALOG}.querySelector('input[aria-autocomplete=list]')", "Preservica", "Connection Type")
    page.wait_for(
        "Array.from(document.querySelectorAll('[role=option]')).some(o => o.innerText.trim() === 'Preservica')",
        what="Preservica in the connection types (is the provider installed?)",
    )
    page.press("Enter")
    page.wait_for(f"!!{DIALOG}.querySelector('input[name=host]')", what="the Preservica form")


def test_the_preservica_form_shows_the_declared_fields(logged_in: Page, airflow_ui: AirflowUI) -> None:
    page = logged_in
    _open_preservica_form(page, airflow_ui, "preservica_form_check")

    # Standard fields: relabelled, with placeholders; the unused ones hidden.
    _open_section(page, "Standard Fields")
    hidden = set(UI_FIELD_BEHAVIOUR["hidden-fields"])
    for name in STANDARD_FIELDS:
        seen = _field(page, name)
        if name in hidden:
            assert seen is None or not seen["visible"], f"{name} should be hidden: {seen}"
            continue
        assert seen and seen["visible"], f"standard field {name} is not shown"
        if name in UI_FIELD_BEHAVIOUR["relabeling"]:
            assert seen["label"] == UI_FIELD_BEHAVIOUR["relabeling"][name], seen
        if name in UI_FIELD_BEHAVIOUR["placeholders"]:
            assert seen["placeholder"] == UI_FIELD_BEHAVIOUR["placeholders"][name], seen
    assert _field(page, "host")["label"] == "Preservica server"  # type: ignore[index]
    sandbox = urlsplit(airflow_ui.sandbox_url)
    page.type_into(f"{DIALOG}.querySelector('input[name=host]')", airflow_ui.sandbox_url, "host")
    page.type_into(f"{DIALOG}.querySelector('input[name=login]')", airflow_ui.sandbox_login, "login")
    page.type_into(f"{DIALOG}.querySelector('input[name=password]')", "not-a-real-password", "password")

    # Extra fields: every conn-field with its label, description and default.
    _open_section(page, "Extra Fields")
    assert {"tenant", "two_fa_secret", "verify_ssl", "timeout"} <= set(CONN_FIELDS)
    for name, spec in CONN_FIELDS.items():
        seen = _field(page, f"element_{name}")
        assert seen and seen["visible"], f"extra field {name} ({spec['label']}) is not shown"
        assert seen["label"] == spec["label"], seen
        assert seen["helper"] == spec.get("description"), seen
        default = spec["schema"].get("default")
        if isinstance(default, bool):
            assert seen["value"] is default, f"{name}: {seen}"
        elif isinstance(default, int):
            assert seen["value"] == str(default), f"{name}: {seen}"
    assert _field(page, "element_two_fa_secret")["type"] == "password"  # type: ignore[index]
    page.type_into(f"{DIALOG}.querySelector('input[name=element_tenant]')", "SANDBOX", "tenant")

    # What the form saves is what the hook reads: extras under their plain names.
    _save(page, airflow_ui, "preservica_form_check")
    stored: Any = airflow_ui.api("GET", "/api/v2/connections/preservica_form_check")
    assert stored["conn_type"] == "preservica"
    assert urlsplit(stored["host"]).port == sandbox.port
    extra = json.loads(stored["extra"])
    assert extra["tenant"] == "SANDBOX"
    readable = {spelling for spellings in EXTRA_ALIASES.values() for spelling in spellings}
    assert set(extra) <= readable, f"the form stores extras the hook does not read: {set(extra) - readable}"


def test_the_token_cache_field_starts_at_its_default(logged_in: Page, airflow_ui: AirflowUI) -> None:
    _open_preservica_form(logged_in, airflow_ui, "preservica_token_cache_check")
    _open_section(logged_in, "Extra Fields")
    (name,) = [n for n in CONN_FIELDS if CONN_FIELDS[n]["label"] == "Token cache"]
    seen = _field(logged_in, f"element_{name}")
    assert seen and seen["value"] == CONN_FIELDS[name]["schema"]["default"], seen


def _toast_after_test_click(page: Page, ui: AirflowUI, conn_id: str, expected: str) -> str:
    page.goto(f"{ui.url}/connections")  # a fresh list: no earlier toast over the buttons
    row = f"Array.from(document.querySelectorAll('tbody tr')).find(r => r.innerText.includes({_js(conn_id)}))"
    page.wait_for(f"!!{row}", what=f"{conn_id} in the connection list")
    page.click(f"{row}.querySelector('button[aria-label=\"Test Connection\"]')", f"Test on {conn_id}")
    toasts = "Array.from(document.querySelectorAll('[data-scope=toast]')).map(t => t.innerText).join('\\n')"
    text: str = page.wait_for(f"(() => {{ const t = {toasts}; return t.includes({_js(expected)}) ? t : ''; }})()",
                              timeout=60, what=f"a toast saying {expected!r}")  # fmt: skip
    return text


def test_the_test_button_logs_in_from_the_api_server(logged_in: Page, airflow_ui: AirflowUI) -> None:
    """The Test button runs ``PreservicaHook.test_connection`` in the api-server, against the sandbox.

    The connections are stored with an explicit port: Airflow 3.3.2's list sends ``port: 0`` for a
    connection without one and then refuses the test (400) before any hook runs.
    """
    sandbox = urlsplit(airflow_ui.sandbox_url)
    base = {"conn_type": "preservica", "host": f"http://{sandbox.hostname}", "port": sandbox.port,
            "login": airflow_ui.sandbox_login, "extra": json.dumps({"tenant": "SANDBOX"})}  # fmt: skip
    wrong_password = "Wr0ng-UI-passw0rd-3391"
    airflow_ui.api("POST", "/api/v2/connections", {**base, "connection_id": "preservica_ui_ok",
                                                    "password": airflow_ui.sandbox_password})  # fmt: skip
    airflow_ui.api("POST", "/api/v2/connections", {**base, "connection_id": "preservica_ui_wrong",
                                                    "password": wrong_password})  # fmt: skip
    page = logged_in
    ok = _toast_after_test_click(page, airflow_ui, "preservica_ui_ok", "Connected to Preservica")
    assert f"as {airflow_ui.sandbox_login}" in ok and "tenant SANDBOX" in ok, ok
    failed = _toast_after_test_click(page, airflow_ui, "preservica_ui_wrong", "Login failed")
    assert wrong_password not in failed and wrong_password not in page.evaluate("document.body.innerText")
