"""An asset's preservation masters, downloaded through the structure API and checked against Preservica's fixity.

The assets are put straight into the sandbox's repository (with real stored bytes), so each test says exactly
what Preservica holds; the downloads go through the real HTTP routes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from airflow_provider_preservica.client.bitstreams import BitstreamMismatchError, safe_filename, unique_name
from airflow_provider_preservica.exceptions import PreservicaError
from airflow_provider_preservica.hooks.preservica import PreservicaHook
from tests.support.sandbox import MAPS_FOLDER, inject

MiB = 1024 * 1024
CONTENT_ROUTE = "GET /api/entity/content-objects/*/generations/*/bitstreams/*/content"


def _asset_with_files(server, tmp_path: Path, files: dict[str, bytes], representation: str = "Preservation") -> str:
    repository = server.state.repository
    asset = repository.add_asset("letters", MAPS_FOLDER)
    for index, (name, data) in enumerate(files.items()):
        source = tmp_path / f"source-{index}"
        source.write_bytes(data)
        repository.add_bitstream_file(asset.ref, source, name, representation=representation)
    return asset.ref


def _stored(server, asset_ref: str):
    """The sandbox's own records of the asset's bitstreams (what 'Preservica declares')."""
    repository = server.state.repository
    asset = repository.require(asset_ref)
    return [
        bitstream
        for representation in asset.representations
        for co_ref in representation.content_objects
        for generation in repository.require(co_ref).generations
        for bitstream in generation.bitstreams
    ]


def test_the_masters_arrive_byte_identical_and_checked(small_repository, tmp_path):
    files = {"scan-001.tif": os.urandom(3 * MiB + 11), "scan-002.tif": os.urandom(70_000)}
    ref = _asset_with_files(small_repository, tmp_path, files)

    downloads = PreservicaHook().download_bitstreams(ref, tmp_path / "masters")

    assert sorted(d.filename for d in downloads) == sorted(files)
    for download in downloads:
        assert Path(download.path).read_bytes() == files[download.filename]
        assert download.sha256 == hashlib.sha256(files[download.filename]).hexdigest()
        assert download.checked == "SHA-256"
    assert sorted(p.name for p in (tmp_path / "masters").iterdir()) == sorted(files)  # no partial files left


def test_a_dropped_connection_resumes_and_the_file_is_exact(small_repository, tmp_path):
    data = os.urandom(4 * MiB)
    ref = _asset_with_files(small_repository, tmp_path, {"film.mkv": data})
    inject(small_repository, kind="drop_after_bytes", route=CONTENT_ROUTE, bytes=1_000_000, count=1)

    [download] = PreservicaHook().download_bitstreams(ref, tmp_path / "out")

    assert Path(download.path).read_bytes() == data


def test_bit_rot_in_the_repository_fails_and_leaves_no_file(small_repository, tmp_path):
    ref = _asset_with_files(small_repository, tmp_path, {"scan.tif": os.urandom(MiB)})
    [stored] = _stored(small_repository, ref)
    blob = small_repository.state.repository.blob_path(stored)
    damaged = bytearray(blob.read_bytes())
    damaged[1234] ^= 0xFF  # one flipped byte: same size, other content
    blob.write_bytes(bytes(damaged))

    with pytest.raises(BitstreamMismatchError, match=r"scan\.tif: SHA-256 fixity mismatch: Preservica declares"):
        PreservicaHook().download_bitstreams(ref, tmp_path / "out")

    assert list((tmp_path / "out").iterdir()) == []


def test_a_bitstream_with_only_an_md5_is_checked_with_md5(small_repository, tmp_path):
    data = os.urandom(200_000)
    ref = _asset_with_files(small_repository, tmp_path, {"old-scan.jpg": data})
    [stored] = _stored(small_repository, ref)
    stored.fixities = {"MD5": hashlib.md5(data).hexdigest()}  # as older Preservica ingests often hold

    [download] = PreservicaHook().download_bitstreams(ref, tmp_path / "out")

    assert download.checked == "MD5"
    assert Path(download.path).read_bytes() == data


def test_the_same_name_twice_in_one_asset_is_kept_apart(small_repository, tmp_path):
    repository = small_repository.state.repository
    asset = repository.add_asset("two pages", MAPS_FOLDER)
    pages = [os.urandom(10_000), os.urandom(20_000)]
    for index, data in enumerate(pages):
        source = tmp_path / f"page-{index}"
        source.write_bytes(data)
        repository.add_bitstream_file(asset.ref, source, "page.tif")

    downloads = PreservicaHook().download_bitstreams(asset.ref, tmp_path / "out")

    assert sorted(Path(d.path).name for d in downloads) == ["page-2.tif", "page.tif"]
    assert sorted(Path(d.path).read_bytes() for d in downloads) == sorted(pages)


def test_an_asset_without_that_representation_says_what_to_set(small_repository, tmp_path):
    ref = _asset_with_files(small_repository, tmp_path, {"scan.tif": b"x" * 100})
    with pytest.raises(PreservicaError, match=f"asset {ref} has no Access bitstreams"):
        PreservicaHook().download_bitstreams(ref, tmp_path / "out", representation_type="Access")


def test_a_server_file_name_cannot_leave_the_target_folder():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..\\..\\boot.ini") == "boot.ini"
    assert safe_filename("scans/page 1.tif") == "page 1.tif"
    with pytest.raises(PreservicaError, match="cannot be a file name"):
        safe_filename("..")
    used: set[str] = set()
    assert [unique_name(n, used) for n in ("a.tif", "A.TIF", "a.tif")] == ["a.tif", "A-2.TIF", "a-3.tif"]
