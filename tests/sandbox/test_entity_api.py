"""Entity API XML over HTTP: namespaces, 404s, children paging, identifiers, folders, metadata."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
from preservica_sandbox import SandboxServer
from preservica_sandbox.repository import Repository

from tests.support.repository_tree import Tree, build_tree

E77 = "{http://preservica.com/EntityAPI/v7.7}"
X77 = "{http://preservica.com/XIP/v7.7}"
XIP_77 = "http://preservica.com/XIP/v7.7"
DC = "http://purl.org/dc/elements/1.1/"


@pytest.fixture
def tree(repository: Repository) -> Tree:
    return build_tree(repository)


def get_xml(server: SandboxServer, auth: dict[str, str], path: str, **params: object) -> ET.Element:
    url = path if path.startswith("http") else f"{server.base_url}/api/entity{path}"
    response = requests.get(url, params=params, headers=auth, timeout=10)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.content)


def test_asset_in_the_namespaces_of_the_configured_version(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str]
) -> None:
    root = get_xml(sandbox, auth, f"/information-objects/{tree.ada}")
    assert root.tag == f"{E77}EntityResponse"
    io = root.find(f"{X77}InformationObject")
    assert io is not None
    assert io.findtext(f"{X77}Ref") == tree.ada
    assert io.findtext(f"{X77}Title") == "Letter from Ada"
    assert io.findtext(f"{X77}Description") == "About the analytical engine"
    assert io.findtext(f"{X77}SecurityTag") == "open"
    assert io.findtext(f"{X77}Parent") == tree.series_one
    info = root.find(f"{E77}AdditionalInformation")
    assert info is not None
    assert info.findtext(f"{E77}Self") == f"{sandbox.base_url}/api/entity/information-objects/{tree.ada}"
    assert info.findtext(f"{E77}Parent") == f"{sandbox.base_url}/api/entity/structural-objects/{tree.series_one}"
    assert info.findtext(f"{E77}Representations", "").endswith(f"/information-objects/{tree.ada}/representations")

    sandbox.state.update_config({"version": "6.1.2"})
    old = get_xml(sandbox, auth, f"/structural-objects/{tree.alpha}")
    assert old.tag == "{http://preservica.com/EntityAPI/v6.0}EntityResponse"
    assert old.findtext("{http://preservica.com/XIP/v6.0}StructuralObject/{http://preservica.com/XIP/v6.0}Title") == (
        "Alpha collection"
    )


def test_versioned_prefix_pins_namespaces_and_links(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    root = get_xml(sandbox, auth, f"/v6.5/structural-objects/{tree.alpha}")
    assert root.tag == "{http://preservica.com/EntityAPI/v6.5}EntityResponse"
    so = root.find("{http://preservica.com/XIP/v6.5}StructuralObject")
    assert so is not None and so.findtext("{http://preservica.com/XIP/v6.5}Parent") is None  # a root folder
    self_url = root.findtext("{http://preservica.com/EntityAPI/v6.5}AdditionalInformation/"
                             "{http://preservica.com/EntityAPI/v6.5}Self")  # fmt: skip
    assert self_url == f"{sandbox.base_url}/api/entity/v6.5/structural-objects/{tree.alpha}"


def test_unknown_wrong_kind_and_malformed_refs_are_404(
    sandbox: SandboxServer, tree: Tree, auth: dict[str, str]
) -> None:
    for path in (
        f"/information-objects/{uuid.uuid4()}",
        f"/structural-objects/{tree.ada}",
        f"/content-objects/{tree.ada}",
        "/information-objects/not-a-ref",
        f"/v7.7/information-objects/{uuid.uuid4()}",
        f"/structural-objects/{uuid.uuid4()}/children",
        f"/information-objects/{uuid.uuid4()}/identifiers",
    ):
        response = requests.get(f"{sandbox.base_url}/api/entity{path}", headers=auth, timeout=10)
        assert response.status_code == 404, path
        assert response.json()["success"] is False
    assert requests.get(f"{sandbox.base_url}/api/entity/information-objects/{tree.ada}", timeout=10).status_code == 401


def test_content_object_has_its_asset_as_parent_and_a_generations_link(
    sandbox: SandboxServer, repository: Repository, tree: Tree, auth: dict[str, str]
) -> None:
    co = repository.add_content_object(tree.ada, "page 1")
    root = get_xml(sandbox, auth, f"/content-objects/{co.ref}")
    assert root.findtext(f"{X77}ContentObject/{X77}Parent") == tree.ada
    assert root.findtext(f"{E77}AdditionalInformation/{E77}Generations", "").endswith(f"{co.ref}/generations")


@pytest.mark.parametrize("prefix", ["", "/v7.7"])
def test_children_paging_follows_absolute_next_links(
    sandbox: SandboxServer, repository: Repository, tree: Tree, auth: dict[str, str], prefix: str
) -> None:
    made = [repository.add_asset(f"Item {n:02d}", tree.beta).ref for n in range(24)]
    expected = [tree.bob, *made]
    seen: list[str] = []
    url: str | None = f"{sandbox.base_url}/api/entity{prefix}/structural-objects/{tree.beta}/children?start=0&max=10"
    pages = 0
    while url:
        root = get_xml(sandbox, auth, url)
        assert root.tag == f"{E77}ChildrenResponse"
        children = root.findall(f"{E77}Children/{E77}Child")
        assert all(c.get("type") == "IO" and c.get("title") for c in children)
        assert all(
            c.text == f"{sandbox.base_url}/api/entity{prefix}/information-objects/{c.get('ref')}" for c in children
        )
        seen.extend(c.get("ref", "") for c in children)
        assert root.findtext(f"{E77}Paging/{E77}TotalResults") == "25"
        url = root.findtext(f"{E77}Paging/{E77}Next")
        if url:
            assert url.startswith(f"{sandbox.base_url}/api/entity{prefix}/structural-objects/{tree.beta}/children?")
        pages += 1
    assert pages == 3 and seen == expected


def test_root_children_and_defaults(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    root = get_xml(sandbox, auth, "/root/children")
    children = root.findall(f"{E77}Children/{E77}Child")
    assert [(c.get("ref"), c.get("type"), c.get("title")) for c in children] == [
        (tree.alpha, "SO", "Alpha collection"),
        (tree.beta, "SO", "Beta collection"),
    ]
    assert root.find(f"{E77}Paging/{E77}Next") is None
    bad = requests.get(f"{sandbox.base_url}/api/entity/root/children", params={"max": 0}, headers=auth, timeout=10)
    assert bad.status_code == 400


def test_identifiers_crud_and_lookup(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    base = f"{sandbox.base_url}/api/entity/structural-objects/{tree.beta}/identifiers"
    body = (
        f'<Identifier xmlns="{XIP_77}"><Type>accession</Type><Value>ACC 1</Value>'
        f"<Entity>{tree.beta}</Entity></Identifier>"
    )
    added = requests.post(base, data=body, headers=auth, timeout=10)
    assert added.status_code == 200, added.text
    api_id = ET.fromstring(added.content).findtext(f".//{X77}ApiId")
    assert api_id and len(api_id) == 32

    listed = get_xml(sandbox, auth, f"/structural-objects/{tree.beta}/identifiers")
    identifiers = listed.findall(f"{E77}Identifiers/{X77}Identifier")
    assert [(i.findtext(f"{X77}Type"), i.findtext(f"{X77}Value"), i.findtext(f"{X77}Entity")) for i in identifiers] == [
        ("accession", "ACC 1", tree.beta)
    ]

    found = get_xml(sandbox, auth, "/entities/by-identifier", type="accession", value="ACC 1")
    entities = found.findall(f"{E77}Entities/{E77}Entity")
    assert [(e.get("ref"), e.get("type"), e.get("title")) for e in entities] == [(tree.beta, "SO", "Beta collection")]
    assert found.findtext(f"{E77}Paging/{E77}TotalResults") == "1"
    assert (
        get_xml(sandbox, auth, "/entities/by-identifier", type="accession", value="acc 1").find(
            f"{E77}Entities/{E77}Entity"
        )
        is None
    )  # exact match

    changed = body.replace("ACC 1", "ACC 2")
    updated = requests.put(f"{base}/{api_id}", data=changed, headers=auth, timeout=10)
    assert updated.status_code == 200 and ET.fromstring(updated.content).findtext(f".//{X77}Value") == "ACC 2"
    assert not get_xml(sandbox, auth, "/entities/by-identifier", type="accession", value="ACC 1").findall(
        f"{E77}Entities/{E77}Entity"
    )
    assert requests.delete(f"{base}/{api_id}", headers=auth, timeout=10).status_code == 204
    assert requests.delete(f"{base}/{api_id}", headers=auth, timeout=10).status_code == 404
    assert not get_xml(sandbox, auth, f"/structural-objects/{tree.beta}/identifiers").findall(
        f"{E77}Identifiers/{X77}Identifier"
    )
    wrong_entity = body.replace(tree.beta, tree.alpha)
    assert requests.post(base, data=wrong_entity, headers=auth, timeout=10).status_code == 400
    no_value = f'<Identifier xmlns="{XIP_77}"><Type>x</Type></Identifier>'
    assert requests.post(base, data=no_value, headers=auth, timeout=10).status_code == 400


def test_create_folder_with_client_ref_then_update(
    sandbox: SandboxServer, repository: Repository, tree: Tree, auth: dict[str, str]
) -> None:
    ref = str(uuid.uuid4())
    body = (
        f'<StructuralObject xmlns="{XIP_77}"><Ref>{ref}</Ref><Title>Accessions 2024</Title>'
        f"<Description>New deposits</Description><SecurityTag>closed</SecurityTag><Parent>{tree.alpha}</Parent>"
        "</StructuralObject>"
    )
    url = f"{sandbox.base_url}/api/entity/structural-objects"
    created = requests.post(url, data=body, headers=auth, timeout=10)
    assert created.status_code == 200, created.text
    so = ET.fromstring(created.content).find(f"{X77}StructuralObject")
    assert so is not None and so.findtext(f"{X77}Ref") == ref and so.findtext(f"{X77}Parent") == tree.alpha
    assert repository.children(tree.alpha)[-1] == ref
    assert requests.post(url, data=body, headers=auth, timeout=10).status_code == 409

    orphan = body.replace(tree.alpha, str(uuid.uuid4())).replace(ref, str(uuid.uuid4()))
    assert requests.post(url, data=orphan, headers=auth, timeout=10).status_code == 404
    assert requests.post(url, data=b"<StructuralObject>", headers=auth, timeout=10).status_code == 400
    doctype = b'<!DOCTYPE x [<!ENTITY a "b">]><StructuralObject><Title>&a;</Title></StructuralObject>'
    assert requests.post(url, data=doctype, headers=auth, timeout=10).status_code == 400
    root_folder = requests.post(
        url, data=f'<StructuralObject xmlns="{XIP_77}"><Title>Top</Title></StructuralObject>', headers=auth, timeout=10
    )
    assert root_folder.status_code == 200
    new_ref = ET.fromstring(root_folder.content).findtext(f".//{X77}Ref")
    assert repository.children(None)[-1] == new_ref
    assert repository.require(new_ref or "").security_tag == "open"

    update = (
        f'<StructuralObject xmlns="{XIP_77}"><Ref>{ref}</Ref><Title>Accessions 2025</Title>'
        f"<Description>Renamed</Description><SecurityTag>open</SecurityTag><Parent>{tree.beta}</Parent>"
        "</StructuralObject>"
    )
    updated = requests.put(f"{url}/{ref}", data=update, headers=auth, timeout=10)
    assert updated.status_code == 200
    folder = repository.require(ref)
    assert (folder.title, folder.description) == ("Accessions 2025", "Renamed")
    assert (folder.security_tag, folder.parent) == ("closed", tree.alpha)  # not changed by an update
    assert requests.put(f"{url}/{tree.alpha}", data=update, headers=auth, timeout=10).status_code == 400
    as_asset = update.replace("StructuralObject", "InformationObject")
    assert requests.put(f"{url}/{ref}", data=as_asset, headers=auth, timeout=10).status_code == 400


def test_metadata_fragments_add_read_replace_delete(sandbox: SandboxServer, tree: Tree, auth: dict[str, str]) -> None:
    entity_url = f"{sandbox.base_url}/api/entity/information-objects/{tree.york}"
    document = (
        f'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="{DC}">'
        "<dc:title>Map</dc:title></oai_dc:dc>"
    )
    container = (
        f'<xip:MetadataContainer schemaUri="{DC}" xmlns:xip="{XIP_77}"><xip:Entity>{tree.york}</xip:Entity>'
        f"<xip:Content>{document}</xip:Content></xip:MetadataContainer>"
    )
    assert requests.post(f"{entity_url}/metadata", data=container, headers=auth, timeout=10).status_code == 200
    fragments = get_xml(sandbox, auth, entity_url).findall(f"{E77}AdditionalInformation/{E77}Metadata/{E77}Fragment")
    assert [f.get("schema") for f in fragments] == [DC]
    fragment_url = fragments[0].text or ""
    assert fragment_url.startswith(f"{entity_url}/metadata/")

    read = get_xml(sandbox, auth, fragment_url)
    assert read.tag == f"{E77}MetadataResponse"
    content = read.find(f"{X77}MetadataContainer/{X77}Content")
    assert content is not None and content[0].tag == "{http://www.openarchives.org/OAI/2.0/oai_dc/}dc"
    assert content[0].findtext(f"{{{DC}}}title") == "Map"
    assert read.find(f"{X77}MetadataContainer").get("schemaUri") == DC  # type: ignore[union-attr]

    mref = fragment_url.rsplit("/", 1)[1]
    replacement = container.replace("<xip:Entity>", f"<xip:Ref>{mref}</xip:Ref><xip:Entity>").replace(">Map<", ">Plan<")
    assert requests.put(fragment_url, data=replacement, headers=auth, timeout=10).status_code == 200
    assert get_xml(sandbox, auth, fragment_url).findtext(f".//{{{DC}}}title") == "Plan"
    wrong_ref = replacement.replace(mref, str(uuid.uuid4()))
    assert requests.put(fragment_url, data=wrong_ref, headers=auth, timeout=10).status_code == 400

    assert requests.delete(fragment_url, headers=auth, timeout=10).status_code == 204
    assert requests.get(fragment_url, headers=auth, timeout=10).status_code == 404
    assert not get_xml(sandbox, auth, entity_url).findall(f".//{E77}Fragment")
    empty = container.replace(document, "")
    assert requests.post(f"{entity_url}/metadata", data=empty, headers=auth, timeout=10).status_code == 400
