"""Building OPEX packages: sidecars, manifests, SourceIDs, security tags, staging and the zip."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import pytest

from airflow_provider_preservica.ingest.packaging import (
    OPEX_NS,
    EntityMetadata,
    FileFixity,
    LocalSourceTree,
    MissingSecurityTagError,
    MissingSourceFilesError,
    PackageManifest,
    PackageValidationError,
    PackagingError,
    SourceTree,
    build_opex_package,
    load_metadata_csv,
    path_source_ids,
    read_opex,
)
from airflow_provider_preservica.ingest.packaging import builder as builder_module
from airflow_provider_preservica.ingest.packaging.zipper import opex_zip_entries
from tests.support.packaging import InMemoryTree, accession_42, make

NS = {"opex": OPEX_NS}
DC = "http://purl.org/dc/elements/1.1/"
MODS = "http://www.loc.gov/mods/v3"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return accession_42(tmp_path)


def parse(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == f"{{{OPEX_NS}}}OPEXMetadata"
    return root


def texts(root: ET.Element, xpath: str) -> list[str]:
    return [e.text or "" for e in root.findall(xpath, NS)]


def test_sidecar_has_every_field(source: Path, tmp_path: Path) -> None:
    metadata = {
        "letter.pdf": {
            "title": "Letter to the mayor, 1921",
            "description": "Two pages, handwritten & signed <in ink>",
            "security_tag": "closed",
            "identifiers": {"code": "ACC42/1", "catalogue": "C-0001"},
            "descriptive_metadata": [
                f'<dc:dc xmlns:dc="{DC}"><dc:title>Letter</dc:title><dc:date>1921</dc:date></dc:dc>',
                ET.fromstring(f'<mods xmlns="{MODS}"><titleInfo><title>Letter</title></titleInfo></mods>'),
            ],
        }
    }
    manifest = build_opex_package(
        source, tmp_path / "out", security_tag="open", metadata=metadata, fixity=["SHA-256", "MD5"]
    )
    staged = Path(manifest.staged_path or "")
    content = (source / "letter.pdf").read_bytes()
    root = parse(staged / "letter.pdf.opex")

    # element order as in the OPEX schema
    assert [child.tag.split("}")[1] for child in root] == ["Transfer", "Properties", "DescriptiveMetadata"]
    transfer = root.find("opex:Transfer", NS)
    assert transfer is not None
    assert [c.tag.split("}")[1] for c in transfer] == ["SourceID", "Fixities"]
    asset = next(a for a in manifest.assets if a.path == "letter.pdf")
    assert texts(root, "opex:Transfer/opex:SourceID") == [asset.source_id]
    assert [(f.get("type"), f.get("value")) for f in root.findall("opex:Transfer/opex:Fixities/opex:Fixity", NS)] == [
        ("SHA-256", hashlib.sha256(content).hexdigest()),
        ("MD5", hashlib.md5(content).hexdigest()),
    ]
    assert root.find("opex:Transfer/opex:Manifest", NS) is None
    properties = root.find("opex:Properties", NS)
    assert properties is not None
    assert [c.tag.split("}")[1] for c in properties] == ["Title", "Description", "SecurityDescriptor", "Identifiers"]
    assert texts(root, "opex:Properties/opex:Title") == ["Letter to the mayor, 1921"]
    assert texts(root, "opex:Properties/opex:Description") == ["Two pages, handwritten & signed <in ink>"]
    assert texts(root, "opex:Properties/opex:SecurityDescriptor") == ["closed"]
    assert [(i.get("type"), i.text) for i in root.findall("opex:Properties/opex:Identifiers/opex:Identifier", NS)] == [
        ("code", "ACC42/1"),
        ("catalogue", "C-0001"),
    ]
    fragments = list(root.find("opex:DescriptiveMetadata", NS) or [])
    assert [f.tag for f in fragments] == [f"{{{DC}}}dc", f"{{{MODS}}}mods"]
    assert fragments[0].findtext(f"{{{DC}}}date") == "1921"
    assert fragments[1].findtext(f"{{{MODS}}}titleInfo/{{{MODS}}}title") == "Letter"

    # a file without metadata: defaults (file name as title, the batch's tag), no optional elements
    plain = parse(staged / "photos" / "img002.tif.opex")
    assert texts(plain, "opex:Properties/opex:Title") == ["img002.tif"]
    assert texts(plain, "opex:Properties/opex:SecurityDescriptor") == ["open"]
    for absent in ("opex:Properties/opex:Description", "opex:Properties/opex:Identifiers", "opex:DescriptiveMetadata"):
        assert plain.find(absent, NS) is None

    # the package's own reader sees the same
    doc = read_opex((staged / "letter.pdf.opex").read_bytes())
    assert (doc.source_id, doc.title, doc.security_descriptor) == (asset.source_id, asset.title, "closed")
    assert doc.fixities == list(asset.fixity)
    assert doc.manifest_files is None


def test_sidecar_bytes_are_stable(tmp_path: Path) -> None:
    """The exact serialisation, byte for byte, for one file: what the sandbox and Preservica will read."""
    src = make(tmp_path / "b", {"a.txt": b"hello\n"})
    manifest = build_opex_package(src, tmp_path / "out", security_tag="open", source_id=path_source_ids("b/"))
    sidecar = (Path(manifest.staged_path or "") / "a.txt.opex").read_text("utf-8")
    digest = hashlib.sha256(b"hello\n").hexdigest()
    assert sidecar == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<opex:OPEXMetadata xmlns:opex="{OPEX_NS}">\n'
        "  <opex:Transfer>\n"
        "    <opex:SourceID>b/a.txt</opex:SourceID>\n"
        "    <opex:Fixities>\n"
        f'      <opex:Fixity type="SHA-256" value="{digest}" />\n'
        "    </opex:Fixities>\n"
        "  </opex:Transfer>\n"
        "  <opex:Properties>\n"
        "    <opex:Title>a.txt</opex:Title>\n"
        "    <opex:SecurityDescriptor>open</opex:SecurityDescriptor>\n"
        "  </opex:Properties>\n"
        "</opex:OPEXMetadata>\n"
    )


def test_manifests_list_direct_children_only(source: Path, tmp_path: Path) -> None:
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open")
    staged = Path(manifest.staged_path or "")
    sizes = {p.relative_to(staged).as_posix(): p.stat().st_size for p in staged.rglob("*") if p.is_file()}

    def listing(path: Path) -> tuple[list[tuple[str | None, str | None, str | None]], list[str]]:
        root = parse(path)
        files = [
            (f.get("type"), f.text, f.get("size"))
            for f in root.findall("opex:Transfer/opex:Manifest/opex:Files/opex:File", NS)
        ]
        return files, texts(root, "opex:Transfer/opex:Manifest/opex:Folders/opex:Folder")

    top_files, top_folders = listing(staged / "accession-42.opex")
    assert top_files == [
        ("content", "letter.pdf", str(sizes["letter.pdf"])),
        ("metadata", "letter.pdf.opex", str(sizes["letter.pdf.opex"])),
    ]
    assert top_folders == ["photos"]
    photo_files, photo_folders = listing(staged / "photos" / "photos.opex")
    assert photo_files == [
        ("content", "img001.tif", "5004"),
        ("metadata", "img001.tif.opex", str(sizes["photos/img001.tif.opex"])),
        ("content", "img002.tif", "74"),
        ("metadata", "img002.tif.opex", str(sizes["photos/img002.tif.opex"])),
    ]
    assert photo_folders == ["negatives"]  # not negatives' files, not .DS_Store
    neg_files, neg_folders = listing(staged / "photos" / "negatives" / "negatives.opex")
    assert [name for _, name, _ in neg_files] == ["neg01.tif", "neg01.tif.opex"]
    assert neg_folders == []
    # folder manifests carry identity and tag, no fixity
    top = parse(staged / "accession-42.opex")
    assert texts(top, "opex:Properties/opex:Title") == ["accession-42"]
    assert texts(top, "opex:Properties/opex:SecurityDescriptor") == ["open"]
    assert texts(top, "opex:Transfer/opex:SourceID") == [manifest.folders[0].source_id]
    assert top.find("opex:Transfer/opex:Fixities", NS) is None
    # and every file on disk is either content, a sidecar or a manifest: nothing else, nothing hidden
    assert sorted(sizes) == sorted(
        [
            "accession-42.opex",
            "letter.pdf",
            "letter.pdf.opex",
            "photos/photos.opex",
            "photos/img001.tif",
            "photos/img001.tif.opex",
            "photos/img002.tif",
            "photos/img002.tif.opex",
            "photos/negatives/negatives.opex",
            "photos/negatives/neg01.tif",
            "photos/negatives/neg01.tif.opex",
        ]
    )


@pytest.mark.parametrize("algorithm", ["SHA-256", "SHA-1", "MD5", "SHA-512"])
def test_fixity_in_sidecars_equals_hashlib(source: Path, tmp_path: Path, algorithm: str) -> None:
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open", fixity=algorithm, make_zip=False)
    staged = Path(manifest.staged_path or "")
    assert manifest.fixity_algorithms == [algorithm]
    name = {"SHA-256": "sha256", "SHA-1": "sha1", "MD5": "md5", "SHA-512": "sha512"}[algorithm]
    for asset in manifest.assets:
        expected = hashlib.new(name, (source / asset.path).read_bytes()).hexdigest()
        assert asset.fixity_value(algorithm) == expected
        fixity = parse(staged / f"{asset.path}.opex").find("opex:Transfer/opex:Fixities/opex:Fixity", NS)
        assert fixity is not None and (fixity.get("type"), fixity.get("value")) == (algorithm, expected)


def test_source_ids_are_deterministic_and_overridable(source: Path, tmp_path: Path) -> None:
    first = build_opex_package(source, tmp_path / "one", security_tag="open", make_zip=False)
    second = build_opex_package(source, tmp_path / "two", security_tag="open", stage="copy")
    ids = {a.path: a.source_id for a in first.assets} | {f.path: f.source_id for f in first.folders}
    assert ids == {a.path: a.source_id for a in second.assets} | {f.path: f.source_id for f in second.folders}
    assert len(set(ids.values())) == len(ids) == 7
    assert all(uuid.UUID(v).version == 5 for v in ids.values())

    other = build_opex_package(source, tmp_path / "three", security_tag="open", source_id_namespace="collection-x")
    assert {a.source_id for a in other.assets}.isdisjoint(ids.values())

    readable = build_opex_package(
        source,
        tmp_path / "four",
        security_tag="open",
        source_id=path_source_ids("ACC42:"),
        metadata={"letter.pdf": {"source_id": "CAT-0001"}},
    )
    assert {a.path: a.source_id for a in readable.assets} == {
        "letter.pdf": "CAT-0001",
        "photos/img001.tif": "ACC42:photos/img001.tif",
        "photos/img002.tif": "ACC42:photos/img002.tif",
        "photos/negatives/neg01.tif": "ACC42:photos/negatives/neg01.tif",
    }
    assert readable.folders[0].source_id == "ACC42:"


def test_duplicate_source_ids_are_refused(source: Path, tmp_path: Path) -> None:
    with pytest.raises(PackageValidationError) as caught:
        build_opex_package(source, tmp_path / "out", security_tag="open", source_id=lambda path, is_folder: "same")
    assert {i.code for i in caught.value.issues} == {"duplicate-source-id"}
    assert len(caught.value.issues) == 6  # 7 entities, the first one keeps the id


def test_missing_security_tag_is_an_error_never_open(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(MissingSecurityTagError) as caught:
        build_opex_package(source, out, security_tag=None)
    assert {i.code for i in caught.value.issues} == {"missing-security-tag"}
    assert len(caught.value.paths) == 7  # 3 folders and 4 assets, every one listed
    assert not out.exists() or not any(out.iterdir())  # nothing written

    with pytest.raises(MissingSecurityTagError) as caught:
        build_opex_package(source, out, security_tag="   ")
    # per-entity tags only: the entities left without one are named
    tags = {"": "open", "photos": "closed", "photos/negatives": "closed", "letter.pdf": "open"}
    tags |= {"photos/img001.tif": "closed", "photos/img002.tif": "closed"}
    with pytest.raises(MissingSecurityTagError) as caught:
        build_opex_package(source, out, security_tag=None, metadata={k: {"security_tag": v} for k, v in tags.items()})
    assert caught.value.paths == ["photos/negatives/neg01.tif"]
    tags["photos/negatives/neg01.tif"] = "closed"
    manifest = build_opex_package(
        source, out, security_tag=None, metadata={k: EntityMetadata(security_tag=v) for k, v in tags.items()}
    )
    assert {a.path: a.security_tag for a in manifest.assets} == {k: v for k, v in tags.items() if "." in k}
    assert {f.path: f.security_tag for f in manifest.folders} == {k: v for k, v in tags.items() if "." not in k}


def test_metadata_problems_are_all_reported_with_name_problems(source: Path, tmp_path: Path) -> None:
    (source / "bad|name.txt").write_bytes(b"x")
    metadata: dict[str, dict[str, Any]] = {
        "letter.pdf": {"descriptive_metadata": ["<dc><title>no namespace</title></dc>"]},
        "photos/img001.tif": {"descriptive_metadata": f'<dc:dc xmlns:dc="{DC}"><unclosed></dc:dc>'},
        "photos/img002.tif": {"descriptive_metadata": f'<x xmlns="{OPEX_NS}"/>'},
        "photos/IMG003.tif": {"title": "a typo in the path"},
    }
    with pytest.raises(PackageValidationError) as caught:
        build_opex_package(source, tmp_path / "out", security_tag="open", metadata=metadata)
    found = {(i.path, i.code) for i in caught.value.issues}
    assert found == {
        ("bad|name.txt", "illegal-character"),
        ("letter.pdf", "bad-descriptive-metadata"),
        ("photos/img001.tif", "bad-descriptive-metadata"),
        ("photos/img002.tif", "bad-descriptive-metadata"),
        ("photos/IMG003.tif", "metadata-unmatched"),
    }
    assert "has no namespace" in str(caught.value) and "not well-formed" in str(caught.value)


def test_metadata_from_a_callback_and_from_csv(source: Path, tmp_path: Path) -> None:
    def callback(path: str, is_folder: bool) -> dict[str, str] | None:
        return None if is_folder else {"title": path.upper()}

    manifest = build_opex_package(source, tmp_path / "cb", security_tag="open", metadata=callback)
    assert {a.title for a in manifest.assets} == {
        "LETTER.PDF",
        "PHOTOS/IMG001.TIF",
        "PHOTOS/IMG002.TIF",
        "PHOTOS/NEGATIVES/NEG01.TIF",
    }

    (tmp_path / "dc1.xml").write_text(f'<dc xmlns="{DC}"><title>Image one</title></dc>', "utf-8")
    csv_file = tmp_path / "meta.csv"
    csv_file.write_text(
        "\ufeffpath,title,description,security_tag,identifier:code,metadata_xml\n"
        ".,Accession 42,,closed,ACC42,\n"
        "photos/img001.tif,Image one,First image,,IMG-1,dc1.xml\n",
        "utf-8",
    )
    mapping = load_metadata_csv(csv_file)
    assert set(mapping) == {"", "photos/img001.tif"}
    built = build_opex_package(source, tmp_path / "csv", security_tag="open", metadata=mapping)
    staged = Path(built.staged_path or "")
    top = parse(staged / "accession-42.opex")
    assert texts(top, "opex:Properties/opex:Title") == ["Accession 42"]
    assert texts(top, "opex:Properties/opex:SecurityDescriptor") == ["closed"]
    assert texts(top, "opex:Properties/opex:Identifiers/opex:Identifier") == ["ACC42"]
    img = parse(staged / "photos" / "img001.tif.opex")
    assert texts(img, "opex:Properties/opex:Description") == ["First image"]
    assert texts(img, "opex:Properties/opex:SecurityDescriptor") == ["open"]  # blank cell: the batch's tag
    assert img.findtext(f"opex:DescriptiveMetadata/{{{DC}}}dc/{{{DC}}}title", namespaces=NS) == "Image one"

    bad = tmp_path / "bad.csv"
    bad.write_text("path,title,metadata_xml\na,x,missing.xml\na,y,\n", "utf-8")
    with pytest.raises(PackageValidationError) as caught:
        load_metadata_csv(bad)
    assert [i.path for i in caught.value.issues] == ["bad.csv:2", "bad.csv:3"]


def test_manifests_are_written_after_every_sidecar(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    real = builder_module._write_atomically

    def spy(target: Path, data: bytes) -> None:
        folder = target.parent
        # every content file and sidecar of the whole package exists before any manifest is written
        staged_root = next(p for p in target.parents if p.name == "accession-42")
        for rel in ["letter.pdf", "photos/img001.tif", "photos/img002.tif", "photos/negatives/neg01.tif"]:
            assert (staged_root / f"{rel}.opex").is_file()
        # and the sub-folders' manifests exist before their parent's
        for sub in folder.iterdir():
            if sub.is_dir():
                assert (sub / f"{sub.name}.opex").is_file()
        written.append(target.name)
        real(target, data)

    monkeypatch.setattr(builder_module, "_write_atomically", spy)
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open")
    assert written == ["negatives.opex", "photos.opex", "accession-42.opex"]
    assert manifest.zip_path is not None
    names = zipfile.ZipFile(manifest.zip_path).namelist()
    assert names[-3:] == [
        "accession-42/photos/negatives/negatives.opex",
        "accession-42/photos/photos.opex",
        "accession-42/accession-42.opex",
    ]


def test_zip_equals_staged_tree_and_is_deterministic(source: Path, tmp_path: Path) -> None:
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open")
    staged = Path(manifest.staged_path or "")
    zip_path = Path(manifest.zip_path or "")
    assert manifest.package_path == str(zip_path)
    assert manifest.zip_size == zip_path.stat().st_size
    assert manifest.zip_sha256 == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        in_zip = {i.filename: archive.read(i) for i in infos if not i.is_dir()}
        dirs = {i.filename for i in infos if i.is_dir()}
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    on_disk = {
        f"accession-42/{p.relative_to(staged).as_posix()}": p.read_bytes() for p in staged.rglob("*") if p.is_file()
    }
    assert in_zip == on_disk
    assert dirs == {"accession-42/", "accession-42/photos/", "accession-42/photos/negatives/"}

    again = build_opex_package(source, tmp_path / "again", security_tag="open", stage="copy", workers=1)
    assert again.zip_sha256 == manifest.zip_sha256  # byte-identical: same source, same zip


def test_zip64_is_used_when_sizes_need_it(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files >= 4 GiB need ZIP64 headers; lower the limit so a small file takes the same code path."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open", keep_staged=False)
    monkeypatch.undo()
    with zipfile.ZipFile(manifest.zip_path or "") as archive:
        big = archive.getinfo("accession-42/photos/img001.tif")
        assert big.file_size == 5004
        assert b"\x01\x00" in big.extra[:2]  # ZIP64 extended information extra field (header id 0x0001)
        assert archive.read(big) == (source / "photos/img001.tif").read_bytes()
        assert archive.testzip() is None
    assert manifest.staged_path is None and not (tmp_path / "out" / "accession-42").exists()


def test_staging_hard_links_by_default_or_copies(source: Path, tmp_path: Path) -> None:
    linked = build_opex_package(source, tmp_path / "l", security_tag="open", make_zip=False)
    copied = build_opex_package(source, tmp_path / "c", security_tag="open", make_zip=False, stage="copy")
    original = (source / "letter.pdf").stat().st_ino
    assert (Path(linked.staged_path or "") / "letter.pdf").stat().st_ino == original
    assert (Path(copied.staged_path or "") / "letter.pdf").stat().st_ino != original
    assert linked.package_path == linked.staged_path and linked.zip_path is None
    # no partial folders or files are left behind
    assert sorted(p.name for p in (tmp_path / "l").iterdir()) == ["accession-42"]


def test_existing_output_is_not_overwritten_by_accident(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build_opex_package(source, out, security_tag="open")
    with pytest.raises(PackagingError, match="already exist"):
        build_opex_package(source, out, security_tag="open")
    (source / "letter.pdf").write_bytes(b"a new version")
    second = build_opex_package(source, out, security_tag="open", overwrite=True)
    assert second.zip_sha256 != first.zip_sha256
    assert sorted(p.name for p in out.iterdir()) == ["accession-42", "accession-42.zip"]


def test_output_inside_the_source_or_replacing_it_is_refused(source: Path, tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="inside the source"):
        build_opex_package(source, source / "out", security_tag="open")
    with pytest.raises(PackagingError, match="would replace the source"):
        build_opex_package(source, source.parent, security_tag="open", overwrite=True)
    assert (source / "letter.pdf").is_file()


def test_report_is_json_serialisable_and_small(source: Path, tmp_path: Path) -> None:
    progress: list[tuple[str, int, int]] = []
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open", progress=lambda *a: progress.append(a))
    data = json.loads(manifest.to_json())
    assert data["asset_count"] == 4 and data["total_bytes"] == sum(a.size for a in manifest.assets)
    assert data["excluded"] == ["photos/.DS_Store"]
    assert [w["code"] for w in data["warnings"]] == ["hidden-excluded"]
    assert PackageManifest.from_dict(data) == manifest
    assert len(json.dumps(manifest.summary())) < 600
    assert len(manifest.to_json()) < 4000  # paths, ids and checksums only: no content
    phases = {p for p, _, _ in progress}
    assert phases == {"stage", "hash", "zip"}
    for phase in phases:
        last = [(d, t) for p, d, t in progress if p == phase][-1]
        assert last[0] == last[1]


def test_files_changing_during_the_build_are_caught(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = builder_module.hash_files

    def grow_then_hash(paths: Iterable[Path], *args: Any, **kwargs: Any) -> dict[Path, FileFixity]:
        staged = list(paths)
        with open(staged[0], "ab") as handle:  # staged hard link: the source file grows
            handle.write(b"late bytes")
        return real(staged, *args, **kwargs)

    monkeypatch.setattr(builder_module, "hash_files", grow_then_hash)
    with pytest.raises(builder_module.FixityError, match="changed size"):
        build_opex_package(source, tmp_path / "out", security_tag="open")
    assert not (tmp_path / "out" / "accession-42").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_partial_outputs_never_carry_final_names(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> NoReturn:
        raise OSError("disk full")

    monkeypatch.setattr(builder_module, "zip_opex_tree", boom)
    with pytest.raises(OSError, match="disk full"):
        build_opex_package(source, tmp_path / "out", security_tag="open")
    assert list((tmp_path / "out").iterdir()) == []


def test_opex_zip_order_for_any_staged_tree(source: Path, tmp_path: Path) -> None:
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open", make_zip=False)
    names = [e.arcname for e in opex_zip_entries(manifest.staged_path or "")]
    assert names[:3] == ["accession-42/", "accession-42/photos/", "accession-42/photos/negatives/"]
    content = names[3:-3]
    assert content == sorted(content) and not any(n.endswith(("/photos.opex", "/negatives.opex")) for n in content)
    assert [os.path.basename(n) for n in names[-3:]] == ["negatives.opex", "photos.opex", "accession-42.opex"]


def test_any_source_tree_can_be_packaged(tmp_path: Path) -> None:
    tree = InMemoryTree("remote", {"a.txt": b"alpha", "sub/b.txt": b"beta", "sub/c:d.txt": b"bad"})
    assert isinstance(tree, SourceTree) and isinstance(LocalSourceTree(tmp_path), SourceTree)
    with pytest.raises(PackageValidationError) as caught:
        build_opex_package(tree, tmp_path / "out", security_tag="open")
    assert caught.value.paths == ["sub/c:d.txt"]
    del tree.files["sub/c:d.txt"]
    manifest = build_opex_package(tree, tmp_path / "out", security_tag="closed")
    staged = Path(manifest.staged_path or "")
    assert (staged / "sub" / "b.txt").read_bytes() == b"beta"
    assert {a.path: a.fixity_value() for a in manifest.assets} == {
        "a.txt": hashlib.sha256(b"alpha").hexdigest(),
        "sub/b.txt": hashlib.sha256(b"beta").hexdigest(),
    }
    assert texts(parse(staged / "remote.opex"), "opex:Transfer/opex:Manifest/opex:Folders/opex:Folder") == ["sub"]


def test_metadata_callback_failures_are_reported_per_path(source: Path, tmp_path: Path) -> None:
    def callback(path: str, is_folder: bool) -> dict[str, Any] | None:
        if path == "letter.pdf":
            return {"titel": "typo in the key"}
        if path.endswith("img002.tif"):
            raise LookupError("not in the catalogue")
        return None

    with pytest.raises(PackageValidationError) as caught:
        build_opex_package(source, tmp_path / "out", security_tag="open", metadata=callback)
    assert [(i.path, i.code) for i in caught.value.issues] == [
        ("letter.pdf", "metadata-callback"),
        ("photos/img002.tif", "metadata-callback"),
    ]
    assert "titel" in str(caught.value) and "not in the catalogue" in str(caught.value)


def test_a_file_deleted_while_staging_is_named_and_nothing_is_left(source: Path, tmp_path: Path) -> None:
    """Deleted between the builder's scan and its staging (deterministically: from the first staging callback)."""

    def delete_the_next_file(phase: str, done: int, total: int) -> None:
        if phase == "stage":
            (source / "photos" / "img001.tif").unlink(missing_ok=True)  # staged after letter.pdf

    with pytest.raises(MissingSourceFilesError, match=r"photos/img001\.tif.*allow_missing_files=True") as failure:
        build_opex_package(source, tmp_path / "out", security_tag="open", progress=delete_the_next_file)
    assert failure.value.paths == ["photos/img001.tif"]
    assert list((tmp_path / "out").iterdir()) == []


def test_without_the_top_folder_the_zip_holds_the_contents_at_its_root(source: Path, tmp_path: Path) -> None:
    manifest = build_opex_package(source, tmp_path / "out", security_tag="open", top_folder=False)
    names = zipfile.ZipFile(manifest.package_path).namelist()
    assert names[:2] == ["photos/", "photos/negatives/"]
    assert "letter.pdf" in names and "letter.pdf.opex" in names and "photos/img001.tif" in names
    assert not [n for n in names if n.startswith("accession-42")]  # no folder for the source, no manifest of it
    assert names[-2:] == ["photos/negatives/negatives.opex", "photos/photos.opex"]
