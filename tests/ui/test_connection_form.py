"""The Preservica Connection form and Test button in Airflow's own UI, in a real headless Chromium.

What a user sees: Admin > Connections > Add Connection, type "Preservica". The expected labels,
placeholders and defaults come from the provider's declaration (``get_provider_info``): the test checks
that Airflow renders that declaration, and that what the form saves is what the hook reads.
"""

from __future__ import annotations

import json
import re
import urllib.error
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from airflow_provider_preservica.connection.sources import EXTRA_ALIASES
from airflow_provider_preservica.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from tests.support.airflow_ui import AirflowUI

pytestmark = pytest.mark.usefixtures("screenshot")

STANDARD_FIELDS = ("host", "login", "password", "port", "schema", "description")

# What the user sees of one input: its label, placeholder, value, helper text, and whether it is shown.
# The label and helper text are found the way Chakra's Field ties them to the input.
_SEEN = """input => {
    const dialog = input.closest('[role=dialog]') || document;
    const field = input.closest('[data-scope=field][data-part=root]') || input.parentElement;
    const label = document.getElementById(input.getAttribute('aria-labelledby'))
        || dialog.querySelector('label[for="' + input.id + '"]')
        || field.querySelector('label');
    const helper = field.querySelector('[data-part=helper-text]');
    const box = (label || input).getBoundingClientRect();
    return {label: label ? label.innerText.trim() : null, placeholder: input.getAttribute('placeholder'),
            value: input.type === 'checkbox' ? input.checked : input.value, type: input.type,
            helper: helper ? helper.innerText.trim() : null, visible: box.width > 0 && box.height > 0};
}"""


def _dialog(page: Page) -> Locator:
    return page.locator("[role=dialog]")


def _button(scope: Page | Locator, text: str) -> Locator:
    """The button whose text is exactly ``text``."""
    return scope.locator("button").filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


def _field(page: Page, name: str) -> dict[str, Any] | None:
    """What the user sees of the input ``name`` in the dialog (None: there is no such input)."""
    inputs = _dialog(page).locator(f'[name="{name}"]')
    if inputs.count() == 0:
        return None
    found: dict[str, Any] = inputs.first.evaluate(_SEEN)
    return found


def _open_section(page: Page, title: str) -> None:
    """Expand one accordion section of the dialog (opening one closes the others)."""
    trigger = _button(_dialog(page), title)
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()
    expect(trigger).to_have_attribute("aria-expanded", "true")


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
    dialog = _dialog(page)
    for attempt in range(1, attempts + 1):
        _button(dialog, "Save").click()
        try:
            dialog.wait_for(state="detached", timeout=10_000)
            return
        except PlaywrightTimeoutError:
            if _stored(ui, conn_id) or attempt == attempts:
                dialog.wait_for(state="detached")
                return


def _open_preservica_form(page: Page, ui: AirflowUI, conn_id: str) -> None:
    page.goto(f"{ui.url}/connections")
    _button(page, "Add Connection").click()
    dialog = _dialog(page)
    dialog.locator("input[name=connection_id]").fill(conn_id)
    dialog.locator("input[aria-autocomplete=list]").fill("Preservica")
    # Preservica among the connection types (if not: is the provider installed?), then chosen with Enter.
    page.get_by_role("option", name="Preservica", exact=True).wait_for()
    page.keyboard.press("Enter")
    dialog.locator("input[name=host]").wait_for(state="attached")


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
    _dialog(page).locator("input[name=host]").fill(airflow_ui.sandbox_url)
    _dialog(page).locator("input[name=login]").fill(airflow_ui.sandbox_login)
    _dialog(page).locator("input[name=password]").fill("not-a-real-password")

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
    _dialog(page).locator("input[name=element_tenant]").fill("SANDBOX")

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
    """Press the Test button on the row of ``conn_id``; the text of the toast that says ``expected``."""
    page.goto(f"{ui.url}/connections")  # a fresh list: no earlier toast over the buttons
    row = page.locator("tbody tr").filter(has_text=conn_id).first
    row.locator('button[aria-label="Test Connection"]').click()
    toast = page.locator("[data-scope=toast][data-part=root]").filter(has_text=expected).first
    toast.wait_for(timeout=60_000)  # the api-server logs in to the sandbox first
    return toast.inner_text()


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
    assert wrong_password not in failed and wrong_password not in page.locator("body").inner_text()
