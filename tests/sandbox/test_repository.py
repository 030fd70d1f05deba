"""The in-memory repository: indexes, changes, bitstream bytes, persistence and seeding."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import pytest
from preservica_sandbox import SandboxServer, SandboxState
from preservica_sandbox.repository import (
    CO,
    IO,
    SO,
    EntityConflict,
    EntityNotFound,
    Repository,
    RepositoryError,
)
from preservica_sandbox.search import engine_for, parse_query
from preservica_sandbox.seed import generate
from preservica_sandbox.server import _parser

from tests.support.repository_tree import build_tree


def test_children_in_insertion_order_and_ancestors() -> None:
    repo = Repository()
    tree = build_tree(repo)
    assert repo.children(None) == [tree.alpha, tree.beta]
    assert repo.children(tree.alpha) == [tree.series_one, tree.series_two]
    assert repo.children(tree.series_one) == [tree.ada, tree.bath]
    assert repo.ancestors(tree.ada) == [tree.alpha, tree.series_one]
    assert repo.descendants(tree.alpha) == {tree.series_one, tree.series_two, tree.ada, tree.bath, tree.york}
    with pytest.raises(EntityNotFound):
        repo.children(tree.ada)  # an asset has no children listing


def test_rejects_duplicate_refs_unknown_parents_and_rootless_assets() -> None:
    repo = Repository()
    tree = build_tree(repo)
    with pytest.raises(EntityConflict):
        repo.add_folder("again", ref=tree.alpha.upper())
    with pytest.raises(EntityNotFound):
        repo.add_folder("orphan", parent="00000000-0000-4000-8000-000000000000")
    with pytest.raises(EntityNotFound):
        repo.add_asset("under an asset", parent=tree.ada)
    with pytest.raises(RepositoryError, match="UUID"):
        repo.add_folder("bad ref", ref="not-a-uuid")


def test_identifier_index_follows_add_update_delete() -> None:
    repo = Repository()
    tree = build_tree(repo)
    assert [e.ref for e in repo.find_by_identifier("code", "C-1")] == [tree.ada]
    added = repo.add_identifier(tree.york, "code", "C-1")
    assert {e.ref for e in repo.find_by_identifier("code", "C-1")} == {tree.ada, tree.york}
    assert {e.ref for e in repo.find_by_identifier(None, "C-1")} == {tree.ada, tree.york}
    repo.update_identifier(tree.york, added.api_id, "code", "C-9")
    assert [e.ref for e in repo.find_by_identifier("code", "C-1")] == [tree.ada]
    assert [e.ref for e in repo.find_by_identifier("code", "C-9")] == [tree.york]
    assert repo.refs_with_identifier_value("c-9") == {tree.york}
    repo.delete_identifier(tree.york, added.api_id)
    assert repo.find_by_identifier("code", "C-9") == []
    assert repo.refs_with_identifier_value("c-9") == set()
    with pytest.raises(EntityNotFound):
        repo.delete_identifier(tree.york, added.api_id)


def test_move_refuses_cycles_and_delete_removes_subtree_and_index() -> None:
    repo = Repository()
    tree = build_tree(repo)
    with pytest.raises(RepositoryError, match="below itself"):
        repo.move(tree.alpha, tree.series_one)
    repo.move(tree.series_two, tree.beta)
    assert repo.children(tree.beta) == [tree.series_two, tree.bob]  # creation order
    assert repo.ancestors(tree.york) == [tree.beta, tree.series_two]
    version = repo.version
    assert repo.delete(tree.alpha) == 4
    assert repo.version > version
    assert repo.get(tree.ada) is None and repo.find_by_identifier("code", "C-1") == []
    assert repo.children(None) == [tree.beta]


def test_store_blob_streams_bytes_to_disk_with_fixities(tmp_path: Path) -> None:
    repo = Repository(data_dir=tmp_path)
    tree = build_tree(repo)
    payload = b"preservation master\n" * 1000
    co = repo.add_bitstream_file(tree.ada, io.BytesIO(payload), "master.txt")
    assert co.kind == CO and co.parent == tree.ada
    assert repo.require(tree.ada).representations[0].content_objects == [co.ref]
    bitstream = co.generations[0].bitstreams[0]
    assert bitstream.size == len(payload)
    assert bitstream.fixities["SHA256"] == hashlib.sha256(payload).hexdigest()
    assert bitstream.fixities["MD5"] == hashlib.md5(payload).hexdigest()
    path = repo.blob_path(bitstream)
    assert path is not None and path.parent == tmp_path / "blobs" and path.read_bytes() == payload
    assert repo.delete(tree.ada) == 2  # the asset and its content object


def test_memory_only_repository_uses_a_temporary_blob_dir_removed_on_close() -> None:
    repo = Repository()
    blob_dir = repo.blob_dir
    assert blob_dir.is_dir()
    repo.close()
    assert not blob_dir.exists()


def test_persists_as_json_lines_and_reloads(tmp_path: Path) -> None:
    state = SandboxState(data_dir=tmp_path)
    tree = build_tree(state.repository)
    state.repository.add_metadata(tree.ada, "urn:s", "<x xmlns='urn:s'/>")
    state.repository.move(tree.series_two, tree.beta)  # a parent later in the file than its child
    state.close()
    lines = (tmp_path / "repository.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["format"] == "preservica-sandbox-repository"
    assert len(lines) == 1 + 8

    again = SandboxState(data_dir=tmp_path).repository
    assert again.children(tree.beta) == [tree.series_two, tree.bob]
    assert again.require(tree.ada).metadata[0].schema == "urn:s"
    assert [e.ref for e in again.find_by_identifier("code", "C-3")] == [tree.york]
    hits = engine_for(again).search(parse_query('{"q": "letter"}'))
    assert {e.ref for e in hits} == {tree.ada, tree.bob}
    assert again.save() is False  # nothing changed since loading


def test_generator_is_deterministic_and_realistic() -> None:
    first = [(e.ref, e.kind, e.title, e.security_tag, e.parent) for e in generate(500, random_seed=9)]
    second = [(e.ref, e.kind, e.title, e.security_tag, e.parent) for e in generate(500, random_seed=9)]
    other = [e.ref for e in generate(500, random_seed=10)]
    assert first == second and [r for r, *_ in first] != other
    repo = Repository()
    repo.insert_entities(list(generate(3000, random_seed=9)))
    assets = repo.entities((IO,))
    assert len(assets) == 3000
    tags = {tag: sum(1 for a in assets if a.security_tag == tag) for tag in ("open", "public", "closed")}
    assert all(count > 0 for count in tags.values()), tags
    depths = {len(repo.ancestors(a.ref)) for a in assets}
    assert depths == {3}  # collection > series > file > asset
    types = {i.type for a in assets for i in a.identifiers}
    assert {"code", "catalogue-ref", "isbn"} <= types
    assert all(a.created > repo.require(a.parent or "").created for a in assets)


def test_seed_file_tree_and_records(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(
        json.dumps(
            {
                "folders": [
                    {
                        "title": "Estate records",
                        "ref": "11111111-1111-4111-8111-111111111111",
                        "identifiers": {"catalogue-ref": "EST"},
                        "folders": [
                            {
                                "title": "Deeds",
                                "assets": [
                                    {
                                        "title": "Deed of sale, 1820",
                                        "security_tag": "closed",
                                        "created": "1999-01-01T00:00:00.000Z",
                                        "identifiers": [{"type": "code", "value": "EST-1"}],
                                        "metadata": [{"schema": "urn:d", "xml": "<d:x xmlns:d='urn:d'>1</d:x>"}],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    repo = Repository()
    result = repo.seed(file=seed_file, assets=20, random_seed=1)
    assert result["added"]["assets"] == 21 and result["added"]["folders"] >= 2 + 3
    assert result["repository"]["assets"] == 21
    deed = repo.find_by_identifier("code", "EST-1")[0]
    assert deed.security_tag == "closed" and deed.created.startswith("1999")
    assert deed.metadata[0].xml == '<d:x xmlns:d="urn:d">1</d:x>'
    assert repo.ancestors(deed.ref)[0] == "11111111-1111-4111-8111-111111111111"

    records = tmp_path / "records.jsonl"
    records.write_text(
        "\n".join(json.dumps(r) for r in repo.to_records() if r["type"] == SO or r["title"].startswith("Deed")),
        encoding="utf-8",
    )
    copy = Repository()
    copy.seed(file=records)
    assert len(copy.entities((IO,))) == 1 and copy.find_by_identifier("code", "EST-1")[0].ref == deed.ref

    (tmp_path / "bad.json").write_text('{"folders": [{"title": "x", "assets": [{"ref": "nope"}]}]}')
    with pytest.raises(RepositoryError):
        copy.seed(file=tmp_path / "bad.json", replace=False)
    assert len(copy.entities((IO,))) == 1  # nothing changed


def test_server_and_cli_seed_options(tmp_path: Path) -> None:
    args = _parser().parse_args(["--seed-assets", "25", "--seed-random", "3", "--seed-file", "x.json"])
    assert (args.seed_assets, args.seed_random, args.seed_file) == (25, 3, Path("x.json"))
    server = SandboxServer(port=0, seed_assets=25, seed_random=3, data_dir=tmp_path)
    assert server.state.repository.counts()["assets"] == 25
    assert (tmp_path / "repository.jsonl").exists()  # seeding saves at once with a data dir


def test_seed_100k_assets_timing() -> None:
    """Figures, not pass/fail: building 100,000 assets and searching them."""
    repo = Repository()
    began = time.perf_counter()
    result = repo.seed(assets=100_000, random_seed=42)
    seeded = time.perf_counter() - began
    assert result["repository"]["assets"] == 100_000
    engine = engine_for(repo)
    began = time.perf_counter()
    total, page = engine.page(
        parse_query('{"q": "%", "fields": [{"name": "xip.document_type", "values": ["IO"]}]}'), 0, 100
    )
    searched = time.perf_counter() - began
    began = time.perf_counter()
    engine.page(parse_query('{"q": "%", "fields": [{"name": "xip.document_type", "values": ["IO"]}]}'), 50_000, 100)
    cached = time.perf_counter() - began
    assert total == 100_000 and len(page) == 100
    print(
        f"\nseeded 100,000 assets + {result['added']['folders']} folders in {seeded:.2f} s; "
        f"first search page {searched * 1000:.0f} ms, a later page {cached * 1000:.2f} ms"
    )
