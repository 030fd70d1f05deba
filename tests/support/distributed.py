"""Small helpers shared by the distributed tests: batches to ingest, sandbox look-ups, login windows."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_preservica.client.auth.cache import TokenCache
from airflow_provider_preservica.client.search import SearchQuery
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.deployment import Deployment


def make_batch(root: Path, name: str, files: int) -> list[str]:
    """A folder of ``files`` distinct scans named ``<name>-NNN.tif``; returns their names."""
    batch = root / name
    batch.mkdir(parents=True)
    names = []
    for index in range(files):
        path = batch / f"{name}-{index:03d}.tif"
        path.write_bytes(hashlib.sha256(f"{name}-{index}".encode()).digest() * 4000)
        names.append(path.name)
    return names


def asset_title_counts(deployment: Deployment, text: str, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many assets carry each title containing ``text``, asked through the Content API."""
    monkeypatch.setenv("AIRFLOW_CONN_PRESERVICA_DEFAULT", deployment.connection_json())
    TokenCache.clear_memory()
    try:
        hits = PreservicaHook().search(
            SearchQuery(text=text, filters={"xip.document_type": "IO"}, fields=["xip.title"])
        )
        return Counter(str(hit.value("xip.title")) for hit in hits)
    finally:
        TokenCache.clear_memory()


def login_windows(login_times: list[float], usable_seconds: float) -> list[list[float]]:
    """Group logins into windows of one usable token lifetime, each opened by the first login after the last.

    A perfectly shared cache logs in once per window: every other task still had a usable token.
    """
    windows: list[list[float]] = []
    for moment in sorted(login_times):
        if windows and moment < windows[-1][0] + usable_seconds:
            windows[-1].append(moment)
        else:
            windows.append([moment])
    return windows
