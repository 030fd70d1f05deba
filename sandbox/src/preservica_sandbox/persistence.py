"""Atomic JSON snapshots of the sandbox state in an optional data directory."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_FILE = "sandbox-state.json"


class JsonStore:
    """Reads and writes one JSON document; a write is a temp file plus ``os.replace`` (never torn)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.directory = Path(data_dir)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / STATE_FILE

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{self.path} does not hold a JSON object")
        return data

    def save(self, data: dict[str, Any]) -> None:
        # The file holds passwords and live tokens: readable by the owner only.
        fd, tmp = tempfile.mkstemp(prefix=".sandbox-state-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
