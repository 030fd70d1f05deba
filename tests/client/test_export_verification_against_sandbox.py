"""verify_archive on real exports from the sandbox: both levels of fixity, and what each one catches.

The sidecar fixity of a PAX zip proves the transfer; the XIP fixity of each file inside proves the content
is what Preservica recorded at ingest. Bit rot in the repository passes the first and fails the second.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from airflow_provider_preservica.client.export import ExportOptions, download_to, start_export
from airflow_provider_preservica.client.progress import wait_for_progress
from airflow_provider_preservica.exceptions import FixityError, PackageFormatError
from airflow_provider_preservica.export.verify import declared_bitstreams, require_intact, verify_archive
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.sandbox import MAPS_FOLDER

MiB = 1024 * 1024


def _asset(server, tmp_path: Path, files: dict[str, bytes]) -> str:
    repository = server.state.repository
    asset = repository.add_asset("letters", MAPS_FOLDER)
    for index, (name, data) in enumerate(files.items()):
        source = tmp_path / f"source-{index}"
        source.write_bytes(data)
        repository.add_bitstream_file(asset.ref, source, name)
    return asset.ref


def _export(server, ref: str, destination: Path) -> Path:
    server.state.update_config({"export_seconds": 0.1})
    hook = PreservicaHook()
    client = hook.get_conn()
    token = start_export(client, hook.entities.ns, ref, "IO", ExportOptions())
    assert wait_for_progress(client, token, poll_interval=0.05, timeout=30).succeeded
    return Path(download_to(client, f"/api/entity/actions/exports/{token}/content", destination).path)


def test_an_intact_export_checks_every_file_against_its_ingest_fixity(small_repository, tmp_path):
    files = {"scan-001.tif": os.urandom(MiB + 5), "scan-002.tif": os.urandom(4096), "notes.txt": b"hello\n"}
    export = _export(small_repository, _asset(small_repository, tmp_path, files), tmp_path / "export.zip")

    phases: dict[str, list[int]] = {}
    counted: dict[str, list[int]] = {}

    def make_progress(total: int, phase: str):
        phases[phase] = [total]
        return counted.setdefault(phase, []).append

    check = require_intact(export, make_progress)

    assert check.bitstreams_checked == 3  # every file inside the PAX, against the XIP
    assert check.fixities_checked == 1 + 3  # plus the PAX zip's own sidecar fixity
    assert check.ok
    # Progress for a long verification: both reads reach exactly the total they announced.
    assert set(phases) == {"CRCs and transfer fixities", "file fixities (XIP)"}
    assert all(sum(counted[phase]) == total for phase, [total] in phases.items())
    assert phases["file fixities (XIP)"][0] > sum(len(v) for v in files.values())  # the PAX zip's size


def test_bit_rot_in_the_repository_is_caught_by_the_xip_fixity(small_repository, tmp_path):
    original = os.urandom(MiB)
    ref = _asset(small_repository, tmp_path, {"scan.tif": original, "ok.tif": os.urandom(1000)})
    repository = small_repository.state.repository
    asset = repository.require(ref)
    rotten = next(
        b
        for co in asset.representations[0].content_objects
        for g in repository.require(co).generations
        for b in g.bitstreams
        if b.filename == "scan.tif"
    )
    blob = repository.blob_path(rotten)
    damaged = bytearray(blob.read_bytes())
    damaged[500_000] ^= 0x01
    blob.write_bytes(bytes(damaged))

    export = _export(small_repository, ref, tmp_path / "export.zip")
    check = verify_archive(export)

    # The exporter built and described the PAX faithfully: the transfer is fine...
    assert check.fixities_checked == 1 + 2
    # ...but the file is not what was ingested, and the report says which and how.
    [problem] = check.mismatches
    computed, declared = hashlib.sha256(damaged).hexdigest(), hashlib.sha256(original).hexdigest()
    assert problem.endswith(f"/scan.tif: SHA-256 {computed} != declared {declared}")
    with pytest.raises(FixityError, match=r"fails verification: .*scan\.tif: SHA-256"):
        require_intact(export)


def test_damage_in_transit_is_a_crc_failure_naming_the_member(small_repository, tmp_path):
    data = os.urandom(2 * MiB)
    export = _export(small_repository, _asset(small_repository, tmp_path, {"film.mkv": data}), tmp_path / "e.zip")
    raw = bytearray(export.read_bytes())
    where = raw.find(data[MiB : MiB + 64])  # inside the stored file inside the stored PAX
    assert where > 0
    raw[where] ^= 0xFF
    export.write_bytes(bytes(raw))

    with pytest.raises(PackageFormatError, match=r"is damaged: member '.*\.pax\.zip' fails its CRC"):
        verify_archive(export)


def test_a_file_the_xip_declares_but_the_pax_lacks_is_reported_missing(small_repository, tmp_path):
    export = _export(small_repository, _asset(small_repository, tmp_path, {"a.tif": b"a" * 100}), tmp_path / "e.zip")
    # Rebuild the export with the PAX's content file left out (its XIP still declares it).
    rebuilt = tmp_path / "without-file.zip"
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".pax.zip"):
                pax_path = tmp_path / "pax.zip"
                pax_path.write_bytes(data)
                with zipfile.ZipFile(pax_path) as pax, zipfile.ZipFile(tmp_path / "slim.zip", "w") as slim:
                    for member in pax.infolist():
                        if member.filename.endswith(".xip"):
                            slim.writestr(member, pax.read(member))
                data = (tmp_path / "slim.zip").read_bytes()
            elif info.filename.endswith(".pax.zip.opex"):
                continue  # its fixity would no longer match: this test is about the XIP
            target.writestr(info, data)

    check = verify_archive(rebuilt)

    [missing] = check.missing
    assert missing.split(" (declared in ")[0].endswith("/a.tif")
    assert not check.ok


def test_the_xip_reader_takes_records_not_references():
    xip = b"""<XIP xmlns="http://preservica.com/XIP/v7.7">
      <Generation><Bitstreams><Bitstream>Rep/co/Generation_1/a.tif</Bitstream></Bitstreams></Generation>
      <Bitstream><Filename>a.tif</Filename><FileSize>12</FileSize><PhysicalLocation>Rep/co/Generation_1</PhysicalLocation>
        <Fixities><Fixity><FixityAlgorithmRef>SHA256</FixityAlgorithmRef><FixityValue>ABC</FixityValue></Fixity>
        <Fixity><FixityAlgorithmRef>CRC99</FixityAlgorithmRef><FixityValue>1</FixityValue></Fixity></Fixities>
      </Bitstream></XIP>"""
    [bitstream] = declared_bitstreams(xip)
    assert bitstream.path == "Rep/co/Generation_1/a.tif"
    assert bitstream.size == 12
    assert bitstream.fixities == {"SHA-256": "abc"}  # normalised; the unknown algorithm left out


def test_a_pax_compressed_inside_the_export_is_checked_all_the_same(small_repository, tmp_path):
    files = {"a.tif": os.urandom(300_000), "b.txt": b"words " * 1000}
    export = _export(small_repository, _asset(small_repository, tmp_path, files), tmp_path / "e.zip")
    deflated = tmp_path / "deflated.zip"
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(deflated, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            info.compress_type = zipfile.ZIP_DEFLATED  # another exporter's choice: not opened in place
            target.writestr(info, data)

    check = verify_archive(deflated)

    assert check.ok and check.bitstreams_checked == 2


def test_a_file_in_another_folder_layout_is_found_by_its_unique_name(small_repository, tmp_path):
    data = os.urandom(50_000)
    export = _export(small_repository, _asset(small_repository, tmp_path, {"a.tif": data}), tmp_path / "e.zip")
    moved = tmp_path / "moved.zip"
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(moved, "w") as target:
        for info in source.infolist():
            if info.filename.endswith(".pax.zip.opex"):
                continue  # the PAX changes, so its transfer fixity would too
            payload = source.read(info)
            if info.filename.endswith(".pax.zip"):
                (tmp_path / "pax.zip").write_bytes(payload)
                with zipfile.ZipFile(tmp_path / "pax.zip") as pax, zipfile.ZipFile(tmp_path / "flat.zip", "w") as flat:
                    for member in pax.infolist():
                        name = member.filename if member.filename.endswith(".xip") else "content/a.tif"
                        flat.writestr(name, pax.read(member))
                payload = (tmp_path / "flat.zip").read_bytes()
            target.writestr(info, payload)

    check = verify_archive(moved)

    assert check.ok and check.bitstreams_checked == 1
