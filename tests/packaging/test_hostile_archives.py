"""Verification of an export that came from elsewhere: bombs, oversized or DTD-laden XML, unsafe member names.

The hostile zips are built here, by hand where ``zipfile`` would refuse to lie (``preservica_sandbox.hostile_exports``
writes raw zips: deflated blanks, a directory entry that lies, a symlink member).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from preservica_sandbox.hostile_exports import (
    SIDECAR_HEAD,
    SIDECAR_TAIL,
    deflated_blanks,
    hostile_member,
    stored,
    write_raw_zip,
)

from airflow_provider_preservica.exceptions import FixityError
from airflow_provider_preservica.export.verify import require_intact, verify_archive

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
XIP_NS = "http://preservica.com/XIP/v6.4"


def _pax(content: bytes, xip_prefix: bytes = b"") -> bytes:
    """A PAX zip: one file and the XIP that declares its size and SHA-256."""
    xip = (
        xip_prefix
        + (
            f'<XIP xmlns="{XIP_NS}"><Bitstream><Filename>scan.tif</Filename><FileSize>{len(content)}</FileSize>'
            "<PhysicalLocation>Representation_Preservation/c/Generation_1</PhysicalLocation><Fixities><Fixity>"
            f"<FixityAlgorithmRef>SHA256</FixityAlgorithmRef><FixityValue>{hashlib.sha256(content).hexdigest()}"
            "</FixityValue></Fixity></Fixities></Bitstream></XIP>"
        ).encode()
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as pax:
        pax.writestr("asset.xip", xip)
        pax.writestr("Representation_Preservation/c/Generation_1/scan.tif", content)
    return buffer.getvalue()


def _sidecar(pax: bytes, prolog: bytes | None = None) -> bytes:
    """The sidecar of ``pax``; ``prolog`` replaces its XML declaration (to add a DOCTYPE)."""
    declaration, root = SIDECAR_HEAD.split(b"\n", 1)
    return (prolog or declaration + b"\n") + (
        root + b"<opex:Transfer><opex:Fixities>"
        b'<opex:Fixity type="SHA-256" value="' + hashlib.sha256(pax).hexdigest().encode() + b'"/>'
        b"</opex:Fixities></opex:Transfer>" + SIDECAR_TAIL
    )


def _export(tmp_path: Path, *extra, pax: bytes | None = None, sidecar: bytes | None = None) -> Path:
    """An export of one asset (its PAX and sidecar, both intact) plus ``extra`` members."""
    pax = pax if pax is not None else _pax(os.urandom(4096))
    members = [
        stored("folder/asset.pax.zip", pax),
        stored("folder/asset.pax.zip.opex", sidecar if sidecar is not None else _sidecar(pax)),
        *extra,
    ]
    path = tmp_path / "export.zip"
    write_raw_zip(members, path)
    return path


def test_an_intact_hand_made_export_passes(tmp_path):
    check = require_intact(_export(tmp_path))
    assert (check.fixities_checked, check.bitstreams_checked, check.unsafe) == (2, 1, [])


def _peak_memory_of_verification(export: Path) -> dict:
    script = (
        "import json, sys\n"
        "from airflow_provider_preservica.export.verify import verify_archive\n"
        "check = verify_archive(sys.argv[1])\n"
        "status = open('/proc/self/status').read()\n"  # VmHWM: this process's own peak (ru_maxrss counts the fork)
        "peak = int(status.split('VmHWM:')[1].split()[0]) * 1024\n"
        "print(json.dumps({'ok': check.ok, 'unsafe': getattr(check, 'unsafe', []), 'peak': peak}))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "sandbox" / "src")]))
    done = subprocess.run(
        [sys.executable, "-c", script, str(export)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_a_one_megabyte_export_declaring_a_huge_sidecar_is_refused_in_little_memory(tmp_path):
    bomb = deflated_blanks("folder/other.pax.zip.opex", 512 * MiB, SIDECAR_HEAD, SIDECAR_TAIL)
    export = _export(tmp_path, bomb)
    assert export.stat().st_size < MiB

    result = _peak_memory_of_verification(export)

    assert result["ok"] is False
    assert "refused as a zip bomb" in result["unsafe"][0]
    assert result["peak"] < 200 * MiB  # the sidecar alone is 512 MiB: it was never read into memory


def test_a_sidecar_over_the_size_cap_is_reported_and_not_parsed(tmp_path):
    # 1 MiB of incompressible content keeps the export under the ratio cap: the sidecar cap is what refuses it.
    filler = stored("folder/filler.bin", os.urandom(MiB))
    sidecar = deflated_blanks("folder/big.pax.zip.opex", 80 * MiB, SIDECAR_HEAD, SIDECAR_TAIL)

    check = verify_archive(_export(tmp_path, filler, sidecar))

    assert not check.ok
    assert check.unsafe == [
        f"folder/big.pax.zip.opex: declares {80 * MiB:,} bytes, more than the 64 MiB an OPEX sidecar may have: not read"
    ]


def dtd(root: str) -> bytes:
    return f'<?xml version="1.0"?><!DOCTYPE {root} [<!ENTITY e "entity">]>'.encode()


def test_a_sidecar_with_a_dtd_is_refused_before_any_entity_is_read(tmp_path):
    pax = _pax(os.urandom(100))
    with pytest.raises(
        FixityError, match=r"asset\.pax\.zip\.opex: it has a DTD \(<!DOCTYPE opex:OPEXMetadata .*refused"
    ):
        require_intact(_export(tmp_path, pax=pax, sidecar=_sidecar(pax, dtd("opex:OPEXMetadata"))))


def test_an_xip_with_a_dtd_is_refused(tmp_path):
    pax = _pax(os.urandom(100), dtd("XIP"))
    check = verify_archive(_export(tmp_path, pax=pax))
    assert check.unsafe == [
        "folder/asset.pax.zip/asset.xip: declares a DTD (<!DOCTYPE XIP>): refused, entities are never expanded"
    ]
    assert check.bitstreams_checked == 0


@pytest.mark.parametrize(
    ("variant", "words"),
    [
        ("traversal", "member 'folder/../../escaped.txt' climbs out with '..'"),
        ("absolute", "member '/tmp/preservica-absolute.txt' has an absolute path"),
        ("symlink", "member 'folder/link' is a symbolic link"),
    ],
)
def test_verification_refuses_unsafe_member_names_and_links(tmp_path, variant, words):
    members = [stored("folder/asset.pax.zip", b"")]
    export = _export(tmp_path, hostile_member(variant, members, 0))
    with pytest.raises(FixityError, match="fails verification: " + words.replace("(", r"\(").replace(".", r"\.")):
        require_intact(export)


def test_a_name_given_twice_is_refused(tmp_path):
    again = stored("folder/asset.pax.zip", _pax(b"a second asset, which would replace the first when unpacked"))
    check = verify_archive(_export(tmp_path, again))
    assert check.unsafe == ["member 'folder/asset.pax.zip' appears twice: the second would replace the first"]
