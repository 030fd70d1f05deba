"""Deleting entities, Preservica's two steps: a deletion request, then an approval by a manager account.

``DELETE /api/entity/{path}/{ref}`` with ``DeletionAction/Submission/Comment`` answers 202 and a progress
token; once that token reads ``PENDING``, a *different* account holding the manager role approves with
``PUT /api/entity/actions/deletions/{token}`` (``DeletionAction/Approval/Approved|Comment``). These are the
calls pyPreservica 4.2.2's ``EntityAPI.delete_asset``/``delete_folder`` make (reference: Entity API table).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from airflow_provider_preservica.client.namespaces import Namespaces
from airflow_provider_preservica.client.rest import PreservicaClient
from airflow_provider_preservica.exceptions import DeletionRefusedError, PreservicaConfigError, PreservicaHTTPError

XML_HEADERS = {"Content-Type": "application/xml;charset=UTF-8"}
PATHS = {"SO": "structural-objects", "IO": "information-objects"}


def _body(ns: Namespaces, part: str, **children: str) -> bytes:
    ET.register_namespace("xip", ns.xip)
    root = ET.Element(f"{{{ns.entity}}}DeletionAction")
    element = ET.SubElement(root, f"{{{ns.entity}}}{part}")
    for name, text in children.items():
        ET.SubElement(element, f"{{{ns.entity}}}{name}").text = text
    return ET.tostring(root, encoding="utf-8")


def request_deletion(client: PreservicaClient, ns: Namespaces, ref: str, entity_type: str, comment: str) -> str:
    """Ask Preservica to delete a folder (with everything below it) or an asset; returns the progress token."""
    if entity_type not in PATHS:
        raise PreservicaConfigError(f"only folders (SO) and assets (IO) can be deleted, not {entity_type!r}")
    path = f"/api/entity/{PATHS[entity_type]}/{ref}"
    try:
        response = client.request(
            "DELETE", path, data=_body(ns, "Submission", Comment=comment), headers=XML_HEADERS, expected=(202,)
        )
    except PreservicaHTTPError as exc:
        if exc.status == 422:
            raise DeletionRefusedError(
                f"Preservica has no active workflow context for full deletion ({exc.detail}): an administrator "
                "must activate one before anything can be deleted"
            ) from None
        if exc.status == 403:
            raise DeletionRefusedError(
                f"the account may not delete {entity_type} {ref} ({exc.detail}): it needs deletion rights on it"
            ) from None
        raise
    token = response.text.strip().strip('"')
    if not token:
        raise PreservicaHTTPError(response.status_code, "DELETE", path, "no progress token in the response")
    return token


def approve_deletion(
    client: PreservicaClient, ns: Namespaces, token: str, comment: str, *, approved: bool = True
) -> None:
    """Approve (or reject) a pending deletion request; ``client`` must be another, manager account."""
    body = _body(ns, "Approval", Approved="true" if approved else "false", Comment=comment)
    path = f"/api/entity/actions/deletions/{token}"
    try:
        client.request("PUT", path, data=body, headers=XML_HEADERS, expected=(200, 202, 204))
    except PreservicaHTTPError as exc:
        if exc.status == 403:
            raise DeletionRefusedError(
                f"the approving account may not approve deletion {token} ({exc.detail}): it must be another "
                "account than the one that asked for the deletion, and hold the manager role"
            ) from None
        raise
