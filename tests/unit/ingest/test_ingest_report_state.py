"""The ingest report across a deferral: what was sent waits on disk, the XCom stays small (issue 20)."""

from __future__ import annotations

import json

from airflow_provider_preservica.ingest.report import IngestReport
from airflow_provider_preservica.ingest.sent import SentFiles

FILES = 20_000


def _report(files: int) -> IngestReport:
    report = IngestReport(batch_id="nightly/2026-12-07", parent_ref="folder-1")
    report.sent.replace_all((f"sid-{i:06d}", f"item-{i:06d}.bin", "SHA-256", f"{i:064x}") for i in range(files))
    report.created_refs = [f"ref-{i:06d}" for i in range(files)]
    report.errors = [f"error {i}" for i in range(30)]
    return report


def test_a_large_report_spills_what_it_sent_and_reads_it_back_whole(tmp_path):
    report = _report(FILES)

    state = report.to_state(spill_dir=tmp_path)

    assert len(json.dumps(state)) < 10_000 and "sent" not in state and len(list(tmp_path.iterdir())) == 1
    restored = IngestReport.from_state(json.loads(json.dumps(state)))  # as the XCom hands it back
    assert not restored.per_file_lost
    assert len(restored.sent) == FILES and restored.sent["sid-000123"] == ("item-000123.bin", "SHA-256", f"{123:064x}")
    assert list(restored.sent.rows()) == list(report.sent.rows())
    assert restored.created_refs == report.created_refs and len(restored.errors) == 30
    restored.discard_spill()
    assert list(tmp_path.iterdir()) == []


def test_a_spill_file_changed_or_gone_is_rebuilt_not_trusted(tmp_path):
    state = _report(FILES).to_state(spill_dir=tmp_path)
    (spilled,) = tmp_path.iterdir()
    spilled.write_text(spilled.read_text().replace("item-000001.bin", "item-000001.bad"))

    restored = IngestReport.from_state(state)

    assert restored.per_file_lost and "item-000001.bad" not in {name for name, _, _ in restored.sent.values()}


def test_a_small_report_rides_inline_and_a_state_from_the_last_release_still_reads():
    report = _report(3)
    state = report.to_state(spill_dir="/nonexistent")
    assert state["per_file_state"] is None and len(IngestReport.from_state(state).sent) == 3

    older = {k: v for k, v in state.items() if k != "sent"}
    older["sent_source_ids"] = ["sid-1"]
    older["expected_fixity"] = {"sid-1": ["a.bin", "SHA-256", "ab" * 32]}
    assert dict(IngestReport.from_state(older).sent) == {"sid-1": ("a.bin", "SHA-256", "ab" * 32)}
    assert "sent" not in report.to_xcom() and len(SentFiles()) == 0
