"""What the operator tests share: a stand-in task instance, and the deliveries and sheets they hand an operator."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from preservica_sandbox import SandboxServer

DC = "http://purl.org/dc/elements/1.1/"


class FakeTaskInstance:
    """Just what the operator reads from the context: its identity, and somewhere to push XComs."""

    dag_id, task_id, run_id, map_index = "nightly_export", "export", "scheduled__2026-11-25", -1

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


def make_batch(root: Path, name: str = "batch-2026-11-25", files: int = 3) -> tuple[Path, dict[str, bytes]]:
    """``<root>/<name>`` with ``files`` distinct scans, every other one in ``letters/``; returns it and their bytes."""
    batch = root / name
    (batch / "letters").mkdir(parents=True)
    contents: dict[str, bytes] = {}
    for index in range(files):
        path = batch / ("letters" if index % 2 else "") / f"scan-{index:03d}.tif"
        path.write_bytes(hashlib.sha256(f"{name}-{index}".encode()).digest() * 1000)
        contents[path.name] = path.read_bytes()
    return batch, contents


def make_accession(root: Path, files: int, name: str = "accession-2026-12") -> Path:
    """``files`` small distinct files in boxes of 250 (``<name>/box-NNN/item-NNNNN.txt``)."""
    batch = root / name
    for index in range(files):
        folder = batch / f"box-{index // 250:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"item-{index:05d}.txt").write_bytes(hashlib.sha256(str(index).encode()).digest() * (1 + index % 7))
    return batch


def api_requests(sandbox: SandboxServer) -> int:
    """API requests, less the progress polls: those grow with how long Preservica takes (one per
    ``poll_interval``, more on a busy machine), not with the files, so counting them would make a count a time."""
    return sum(
        n
        for route, n in sandbox.state.stats()["requests"].items()
        if " /api/" in route and not route.startswith("GET /api/entity/progress/")
    )


def sheet_for(tmp_path: Path, assets: Sequence[Any], folders: Sequence[Any]) -> tuple[Path, list[dict[str, str]]]:
    """A corrections sheet for ``assets``: new titles, swapped security tags, every fourth asset moved."""
    rows = []
    for i, asset in enumerate(assets):
        rows.append(
            {
                "reference": asset.ref,
                "title": f"Corrected {i}",
                "security_tag": "closed" if asset.security_tag != "closed" else "open",
                "parent": next(f.ref for f in folders if f.ref != asset.parent) if i % 4 == 0 else "",
                "metadata": f'<dc xmlns="{DC}"><title>Corrected {i}</title></dc>',
            }
        )
    path = tmp_path / "corrections.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, rows
