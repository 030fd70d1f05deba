"""Ingest metadata from elsewhere (a metadata CSV and the XML files it names): no DTD, no file outside the
CSV's folder unless allowed, no fragment beyond the size cap; every problem named before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_preservica.ingest.packaging import PackageValidationError, build_opex_package, load_metadata_csv

DC = '<dc xmlns="http://purl.org/dc/elements/1.1/"><title>Minutes</title></dc>'
ENTITY_DC = '<!DOCTYPE dc [<!ENTITY x "Minutes">]><dc xmlns="http://purl.org/dc/elements/1.1/"><title>&x;</title></dc>'


def test_metadata_csv_refuses_dtds_outside_files_and_oversized_fragments(tmp_path: Path) -> None:
    folder = tmp_path / "meta"
    folder.mkdir()
    (folder / "ok.xml").write_text(DC, "utf-8")
    (folder / "entity.xml").write_text(ENTITY_DC, "utf-8")
    (tmp_path / "outside.xml").write_text(DC, "utf-8")
    (folder / "link.xml").symlink_to(tmp_path / "outside.xml")
    with (folder / "big.xml").open("wb") as handle:  # 50 MB of well-formed XML, written in 1 MiB pieces
        handle.write(b'<dc xmlns="http://purl.org/dc/elements/1.1/"><description>')
        for _ in range(50):
            handle.write(b"x" * 1048576)
        handle.write(b"</description></dc>")
    rows = ["ok.xml", "entity.xml", "../outside.xml", str(tmp_path / "outside.xml"), "link.xml", "big.xml"]
    csv_file = folder / "metadata.csv"
    csv_file.write_text("path,metadata_xml\n" + "".join(f"f{i}.txt,{x}\n" for i, x in enumerate(rows)), "utf-8")

    with pytest.raises(PackageValidationError) as caught:
        load_metadata_csv(csv_file)
    problems = {issue.path: issue.describe() for issue in caught.value.issues}
    assert set(problems) == {f"metadata.csv:{line}" for line in (3, 4, 5, 6, 7)}
    assert "DTD" in problems["metadata.csv:3"] and "remove the <!DOCTYPE" in problems["metadata.csv:3"]
    for line in (4, 5, 6):
        assert "is outside" in problems[f"metadata.csv:{line}"] and "metadata_root=" in problems[f"metadata.csv:{line}"]
    assert "larger than 4 MiB" in problems["metadata.csv:7"] and "max_fragment_bytes" in problems["metadata.csv:7"]

    csv_file.write_text("path,metadata_xml\nf.txt,../outside.xml\n", "utf-8")
    assert load_metadata_csv(csv_file, metadata_root=tmp_path)["f.txt"].descriptive_metadata == (DC.encode(),)


def test_a_fragment_given_in_code_with_a_dtd_is_refused_before_packaging(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_text("content", "utf-8")
    with pytest.raises(PackageValidationError) as caught:
        build_opex_package(
            tmp_path / "src",
            tmp_path / "out",
            security_tag="open",
            metadata={"f.txt": {"descriptive_metadata": ENTITY_DC}},
        )
    assert "DTD" in str(caught.value) and "remove the <!DOCTYPE" in str(caught.value)
