"""Ready-made zips (XIP v6 SIP, zipped OPEX) are recognised, checked and measured, never modified."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from airflow_provider_preservica.ingest.packaging import PackageFormatError, build_opex_package, inspect_zip_package
from airflow_provider_preservica.ingest.packaging.opex import OPEX_NS

XIP_METADATA = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<XIP xmlns="http://preservica.com/XIP/v6.0"><InformationObject><Ref>r</Ref><Title>t</Title>'
    "<SecurityTag>closed</SecurityTag><Parent>p</Parent></InformationObject></XIP>"
)


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_our_opex_zip_is_recognised(tmp_path: Path) -> None:
    src = tmp_path / "batch"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.txt").write_bytes(b"a")
    manifest = build_opex_package(src, tmp_path / "out", security_tag="open", keep_staged=False)
    before = Path(manifest.zip_path or "").read_bytes()
    info = inspect_zip_package(manifest.zip_path or "")
    assert info.kind == "OPEX"
    assert info.opex_documents == 3  # a.txt.opex, d/d.opex, batch/batch.opex
    assert info.top_level == ["batch"]
    assert (info.size, info.sha256) == (manifest.zip_size, manifest.zip_sha256)
    assert info.sha256 == hashlib.sha256(before).hexdigest()
    assert info.warnings == []
    assert Path(manifest.zip_path or "").read_bytes() == before  # untouched
    assert info.to_dict()["kind"] == "OPEX"


def test_a_handmade_xip_zip_is_recognised(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "sip.zip", {"io/metadata.xml": XIP_METADATA.encode(), "io/content/p1/a.tif": b"II*"})
    info = inspect_zip_package(path)
    assert (info.kind, info.xip_namespace, info.entries) == ("XIP", "http://preservica.com/XIP/v6.0", 2)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_pypreservica_sip_is_recognised(tmp_path: Path) -> None:
    uploads = pytest.importorskip("pyPreservica.uploadAPI")
    content = tmp_path / "master.tif"
    content.write_bytes(b"II*\x00" * 100)
    sip = uploads.simple_asset_package(
        preservation_file=str(content),
        parent_folder="7c7c2bd5-0000-4000-8000-000000000001",
        export_folder=str(tmp_path),
        Title="A master",
        SecurityTag="closed",
    )
    info = inspect_zip_package(sip)
    assert info.kind == "XIP"
    assert info.xip_namespace is not None and info.xip_namespace.startswith("http://preservica.com/XIP/v6")


def test_opex_without_security_descriptor_is_accepted_with_a_warning(tmp_path: Path) -> None:
    opex = f'<OPEXMetadata xmlns="{OPEX_NS}"><Properties><Title>x</Title></Properties></OPEXMetadata>'
    path = write_zip(tmp_path / "o.zip", {"top/a.txt": b"a", "top/a.txt.opex": opex.encode()})
    info = inspect_zip_package(path)
    assert info.kind == "OPEX"
    assert info.warnings == ["1 .opex document(s) have no SecurityDescriptor: Preservica will apply 'open'"]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"top/a.txt": b"a"}, "neither an XIP metadata.xml nor any .opex document"),
        (
            {"io/metadata.xml": XIP_METADATA.encode(), "io/x.opex": f'<OPEXMetadata xmlns="{OPEX_NS}"/>'.encode()},
            "both an XIP metadata.xml and .opex documents",
        ),
        ({"top/bad.opex": b"<OPEXMetadata"}, "not well-formed XML"),
        ({"top/other.opex": b"<foo xmlns='urn:x'/>"}, "not OPEXMetadata"),
        ({"../evil.opex": f'<OPEXMetadata xmlns="{OPEX_NS}"/>'.encode()}, "unsafe member name"),
    ],
)
def test_unacceptable_zips_are_refused(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    path = write_zip(tmp_path / "p.zip", members)
    with pytest.raises(PackageFormatError, match=message):
        inspect_zip_package(path)


def test_not_a_zip_truncated_and_corrupt(tmp_path: Path) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with pytest.raises(PackageFormatError, match="does not open as a zip"):
        inspect_zip_package(text)
    with pytest.raises(PackageFormatError, match="is not a file"):
        inspect_zip_package(tmp_path / "absent.zip")

    good = write_zip(tmp_path / "good.zip", {"io/metadata.xml": XIP_METADATA.encode(), "io/a.bin": b"A" * 4096})
    data = good.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageFormatError):
        inspect_zip_package(truncated)

    corrupt = tmp_path / "corrupt.zip"
    offset = data.index(b"A" * 64)
    corrupt.write_bytes(data[:offset] + b"B" + data[offset + 1 :])
    with pytest.raises(PackageFormatError, match=r"'io/a\.bin' is corrupt"):
        inspect_zip_package(corrupt)
    assert inspect_zip_package(corrupt, verify_crc=False).kind == "XIP"


def test_a_metadata_xml_declaring_a_dtd_is_refused_without_expanding_it(tmp_path: Path) -> None:
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE XIP [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<XIP xmlns="http://preservica.com/XIP/v6.0"><InformationObject><Title>&b;</Title></InformationObject></XIP>'
    )
    path = write_zip(tmp_path / "sip.zip", {"io/metadata.xml": laughs.encode(), "io/content/a.tif": b"II*"})
    with pytest.raises(PackageFormatError) as refused:
        inspect_zip_package(path)
    assert "io/metadata.xml: it has a DTD (<!DOCTYPE XIP ...>): DTDs and entity declarations are refused" in str(
        refused.value
    )
