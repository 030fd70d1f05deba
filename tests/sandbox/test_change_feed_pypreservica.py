"""pyPreservica 4.2.2, unchanged, reading the sandbox's change feed (``updated_entities``) and entity
events (``all_events``, ``all_ingest_events``, ``entity_events``, ``entity_from_event``): every change
the sandbox makes — ingest, title, identifiers, metadata, move, security tag, deletion — shows up."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pyPreservica
import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository
from pyPreservica.uploadAPI import simple_asset_package

from tests.support.repository_tree import Tree, build_tree

from .conftest import ARCHIVIST

DC = "http://purl.org/dc/elements/1.1/"
DC_DOC = f'<dc:dc xmlns:dc="{DC}"><dc:title>{{}}</dc:title></dc:dc>'


def _kwargs(server: SandboxServer) -> dict[str, str]:
    return {"username": ARCHIVIST[0], "password": ARCHIVIST[1], "server": server.server, "protocol": "http"}


class Clock:
    """The repository's clock, moved by hand: changes get timestamps the test chose."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(repository: Repository) -> Iterator[Clock]:
    clock = Clock(time.time() - 3600)  # an hour ago: inside pyPreservica's "previous day"
    previous = repository.clock
    repository.clock = clock
    yield clock
    repository.clock = previous


@pytest.fixture
def entity(sandbox: SandboxServer) -> pyPreservica.EntityAPI:
    sandbox.state.update_config({"entity_action_seconds": 0, "ingest_seconds": 0.1})
    return pyPreservica.EntityAPI(**_kwargs(sandbox))


def _feed(sandbox: SandboxServer, token: str, **params: str | int) -> requests.Response:
    return requests.get(
        f"{sandbox.base_url}/api/entity/entities/updated-since",
        params=params,
        headers={"Preservica-Access-Token": token},
        timeout=10,
    )


def _refs(response: requests.Response) -> list[str]:
    root = ET.fromstring(response.content)
    return [e.attrib["ref"] for e in root.iter() if e.tag.endswith("}Entity")]


def test_every_kind_of_change_appears_in_updated_entities_and_entity_events(
    sandbox: SandboxServer, repository: Repository, clock: Clock, entity: pyPreservica.EntityAPI
) -> None:
    tree: Tree = build_tree(repository)
    assert {e.reference for e in entity.updated_entities(previous_days=1)} >= tree.assets | tree.folders

    # Everything so far happened an hour ago; pyPreservica cannot ask for less than a day, so ask raw.
    clock.now += 60
    since = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(clock.now))
    assert _refs(_feed(sandbox, entity.token, date=since)) == []

    asset = entity.asset(tree.ada)
    asset.title = "Letter from Ada Lovelace"
    entity.save(asset)  # title
    clock.now += 1
    entity.add_identifier(entity.asset(tree.bath), "code", "C-22")  # identifier
    clock.now += 1
    entity.add_metadata(entity.asset(tree.york), DC, DC_DOC.format("York"))  # metadata
    clock.now += 1
    entity.move_sync(entity.asset(tree.bob), entity.folder(tree.series_two))  # move
    clock.now += 1
    entity.security_tag_sync(entity.folder(tree.series_one), "closed")  # security tag
    clock.now += 1
    repository.delete(tree.beta)  # deletion (the sandbox's own API for it belongs to another feature)

    response = _feed(sandbox, entity.token, date=since)
    assert response.status_code == 200, response.text
    # Oldest change first, each entity once, the deleted folder flagged as TNA's client reads it.
    assert _refs(response) == [tree.ada, tree.bath, tree.york, tree.bob, tree.series_one, tree.beta]
    assert f'ref="{tree.beta}" title="Beta collection" type="SO" deleted="true"' in response.text

    events = list(entity.all_events())
    kinds = [e["eventType"] for e in events]
    assert kinds[-6:] == ["Modified", "Modified", "Modified", "Moved", "SecurityChanged", "Deleted"]
    moved = next(e for e in events if e["eventType"] == "Moved")
    assert list(entity.entity_from_event(moved["Ref"])) == [
        {"EventType": "Moved", "Date": moved["Date"], "Entity": tree.bob}
    ]
    history = list(entity.entity_events(entity.asset(tree.bob)))
    assert [h["commandType"] for h in history] == ["MoveEntity", "AddEntity"]  # newest first


def test_updated_since_pages_and_reads_every_time_zone_form(
    sandbox: SandboxServer, repository: Repository, clock: Clock, entity: pyPreservica.EntityAPI
) -> None:
    folder = repository.add_folder("Many")
    refs = [folder.ref]
    for n in range(60):
        clock.now += 0.001
        refs.append(repository.add_asset(f"asset {n}", folder.ref).ref)
    # pyPreservica asks for 25 a page and follows Paging/Next: 61 entities = 3 pages.
    before = sandbox.state.stats()["requests"].get("GET /api/entity/entities/updated-since", 0)
    assert [e.reference for e in entity.updated_entities(previous_days=1)] == refs
    after = sandbox.state.stats()["requests"].get("GET /api/entity/entities/updated-since", 0)
    assert after - before == 3

    start = repository.require(refs[10]).modified  # "…T..:..:..mmmZ"
    end = repository.require(refs[20]).modified
    utc = _refs(_feed(sandbox, entity.token, date=start, endDate=end, max=100))
    assert utc == refs[10:20]  # date inclusive, endDate exclusive
    plus = start.replace("Z", "+00:00")
    nypl = start.replace("Z", "+0000")
    assert _refs(_feed(sandbox, entity.token, date=plus, endDate=end)) == utc
    assert _refs(_feed(sandbox, entity.token, date=nypl, endDate=end)) == utc
    # The same instant written in another zone is the same instant.
    hours, rest = int(start[11:13]), start[13:-1]
    shifted = f"{start[:11]}{(hours + 2) % 24:02d}{rest}+02:00" if hours < 22 else plus
    assert _refs(_feed(sandbox, entity.token, date=shifted, endDate=end)) == utc

    bad = _feed(sandbox, entity.token, date="yesterday")
    assert bad.status_code == 400 and "date='yesterday'" in bad.text
    assert _feed(sandbox, entity.token).status_code == 400


def test_an_ingest_is_one_event_naming_what_it_created(
    sandbox: SandboxServer, repository: Repository, entity: pyPreservica.EntityAPI, tmp_path: Path
) -> None:
    folder = repository.add_folder("Deposits")
    preservation = tmp_path / "letter.tif"
    preservation.write_bytes(os.urandom(500))
    package = simple_asset_package(
        preservation_file=str(preservation), parent_folder=folder.ref, export_folder=str(tmp_path), Title="Letter"
    )
    upload = pyPreservica.UploadAPI(**_kwargs(sandbox))
    token = upload.upload_zip_package(package, folder=folder.ref)
    deadline = time.monotonic() + 10
    while entity.get_async_progress(token) in ("ACTIVE", "PENDING"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    ref = Path(package).stem

    ingests = list(entity.all_ingest_events(previous_days=1))
    assert len(ingests) == 1 and ingests[0]["eventType"] == "Ingest"
    created = {a["Entity"] for a in entity.entity_from_event(ingests[0]["Ref"])}
    assert ref in created and len(created) == 2  # the asset and its content object
    assert ref in {e.reference for e in entity.updated_entities(previous_days=1)}
