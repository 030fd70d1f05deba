"""Preservica release numbers and the API namespaces derived from them.

Unversioned ``/api/entity/...`` answers in the namespace of the running release; a versioned prefix
``/api/entity/v{M}.{m}/...`` pins it. 6.0 and 6.1 servers both answer ``v6.0``.
"""

from __future__ import annotations

import re

from starlette.convertors import Convertor, register_url_convertor

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")

NS_ENTITY = "http://preservica.com/EntityAPI"
NS_XIP = "http://preservica.com/XIP"
NS_SECURITY = "http://preservica.com/SecurityAPI"
NS_ADMIN = "http://preservica.com/AdminAPI"


def parse_version(version: str) -> tuple[int, int, int]:
    """``"7.7.1"`` -> ``(7, 7, 1)``; the patch part is optional. Raises ``ValueError``."""
    match = _VERSION_RE.match(version.strip())
    if not match:
        raise ValueError(f"not a Preservica version: {version!r} (expected e.g. 7.7.1)")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def api_version(version: str) -> str:
    """The ``M.m`` used in namespaces for a release (``6.1.x`` -> ``6.0``)."""
    major, minor, _ = parse_version(version)
    if major == 6 and minor < 2:
        return "6.0"
    return f"{major}.{minor}"


def entity_ns(api_ver: str) -> str:
    return f"{NS_ENTITY}/v{api_ver}"


def xip_ns(api_ver: str) -> str:
    return f"{NS_XIP}/v{api_ver}"


class ApiVersionConvertor(Convertor[str]):
    """Path segment ``v7.7``; converts to ``"7.7"``. Use as ``{api_version:api_version}`` in routes."""

    regex = r"v\d+\.\d+"

    def convert(self, value: str) -> str:
        return value[1:]

    def to_string(self, value: str) -> str:
        return f"v{value}"


register_url_convertor("api_version", ApiVersionConvertor())

#: Route prefix for versioned Entity API paths; endpoints read ``request.path_params["api_version"]``.
VERSIONED_ENTITY_PREFIX = "/api/entity/{api_version:api_version}"
