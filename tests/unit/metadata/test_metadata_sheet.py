"""Reading a corrections sheet: what each row asks for, and bad rows named with their fix before any write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_preservica.metadata.model import ROOT
from airflow_provider_preservica.metadata.sheet import SheetError, parse_sheet, read_sheet, sheet_from_records
from airflow_provider_preservica.metadata.xmlcompare import same_xml

REF = "8a7f1c52-0b7e-4f0e-9d2c-1e6b5a4c3d21"
FOLDER = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
DC = '<dc xmlns="http://purl.org/dc/elements/1.1/"><title>Minutes</title></dc>'


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_row_becomes_the_wanted_state_and_empty_cells_leave_properties_alone(tmp_path):
    sheet = read_sheet(
        write(
            tmp_path,
            "fix.csv",
            "reference,title,description,security_tag,parent,identifier:catalogue,metadata\n"
            f'{REF.upper()},"Minutes, 1921",,closed,{FOLDER},MS-1,"{DC.replace(chr(34), chr(34) * 2)}"\n',
        )
    )
    assert not sheet.problems
    (row,) = sheet.changes
    assert row.row == 2 and row.ref == REF  # references are compared in lower case, as Preservica issues them
    assert row.title == "Minutes, 1921" and row.description is None
    assert row.security_tag == "closed" and row.parent == FOLDER
    assert row.identifiers == {"catalogue": "MS-1"}
    (fragment,) = row.fragments
    assert fragment.schema == "http://purl.org/dc/elements/1.1/" and fragment.mode == "replace"


def test_excel_bom_and_identifier_lookup(tmp_path):
    sheet = read_sheet(write(tmp_path, "fix.csv", "\ufeffidentifier_type,identifier_value,title\ncode,ACC-1,New\n"))
    (row,) = sheet.changes
    assert row.ref is None and row.lookup == ("code", "ACC-1") and row.locator == "code=ACC-1"


def test_unknown_column_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(SheetError) as error:
        read_sheet(write(tmp_path, "fix.csv", f"reference,titel\n{REF},x\n"))
    message = str(error.value)
    assert "'titel'" in message and "did you mean 'title'" in message and "line 1" in message


def test_every_bad_row_is_named_with_its_fix(tmp_path):
    text = "\n".join(
        [
            "reference,identifier_type,identifier_value,title,metadata,metadata_mode,entity_type,parent",
            f"{REF},,,ok,,,,",
            "not-a-ref,,,x,,,,",
            f"{REF},code,A,x,,,,",
            f"{REF},,,,,,,",
            f'{REF},,,,"<dc><unclosed></dc>",,,',
            f'{REF},,,,"<plain>no namespace</plain>",,,',
            f"{REF},,,x,,merge,,",
            f"{REF},,,x,,,box,",
            f"{REF},,,,,,IO,@root@",
            ",code,,x,,,,",
        ]
    )
    sheet = read_sheet(write(tmp_path, "fix.csv", text + "\n"))
    assert [c.row for c in sheet.changes] == [2]
    problems = {p.row: p.message for p in sheet.problems}
    assert set(problems) == set(range(3, 12))
    assert "is not a Preservica reference" in problems[3]
    assert "not both" in problems[4]
    assert "changes nothing" in problems[5]
    assert "not well-formed XML" in problems[6] and "metadata" in problems[6]
    assert "needs a namespace" in problems[7]
    assert "'merge' is not 'replace' or 'add'" in problems[8]
    assert "'box' is not SO" in problems[9]
    assert "cannot be moved to the root" in problems[10]
    assert "identifier_type and identifier_value" in problems[11]


def test_metadata_file_is_read_relative_to_the_sheet_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "dc.xml").write_text(DC, encoding="utf-8")
    sheet = read_sheet(
        write(tmp_path, "fix.csv", f"reference,metadata_file,metadata_file:ead\n{REF},xml/dc.xml,\n{REF},,gone.xml\n")
    )
    assert sheet.changes[0].fragments[0].xml == DC
    (problem,) = sheet.problems
    assert problem.row == 3 and "'gone.xml' does not exist" in problem.message


def test_two_fragments_of_one_schema_cannot_both_replace(tmp_path):
    other = DC.replace("Minutes", "Other")
    sheet = sheet_from_records([{"reference": REF, "metadata": [DC, other]}])
    assert "two fragments of schema http://purl.org/dc/elements/1.1/" in sheet.problems[0].message
    sheet = sheet_from_records([{"reference": REF, "metadata": [DC, other], "metadata_mode": "add"}])
    assert not sheet.problems and len(sheet.changes[0].fragments) == 2


def test_json_lines_identifiers_object_null_removes_and_root_parent(tmp_path):
    lines = [
        {"reference": FOLDER, "entity_type": "folder", "parent": "@root@", "identifiers": {"old": None, "new": "N"}},
        {"reference": REF, "description": ""},
    ]
    sheet = read_sheet(write(tmp_path, "fix.jsonl", "\n".join(json.dumps(line) for line in lines)))
    first, second = sheet.changes
    assert first.entity_type == "SO" and first.parent == ROOT and first.identifiers == {"old": None, "new": "N"}
    assert second.description == ""  # JSON can clear a description; an empty CSV cell leaves it


def test_json_lines_syntax_error_names_the_line(tmp_path):
    with pytest.raises(SheetError, match=r"line 2: not JSON"):
        read_sheet(write(tmp_path, "fix.jsonl", json.dumps({"reference": REF, "title": "x"}) + "\n{oops\n"))


def test_missing_sheet_and_empty_sheet(tmp_path):
    with pytest.raises(SheetError, match="does not exist"):
        read_sheet(str(tmp_path / "nowhere.csv"))
    with pytest.raises(SheetError, match="no rows"):
        parse_sheet("reference,title\n", "fix.csv")


def test_xml_equality_ignores_prefixes_attribute_order_and_layout():
    a = '<dc:dc xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title a="1" b="2">Minutes</dc:title></dc:dc>'
    b = (
        '<ns0:dc xmlns:ns0="http://purl.org/dc/elements/1.1/">\n'
        '  <ns0:title b="2" a="1"> Minutes </ns0:title>\n</ns0:dc>'
    )
    assert same_xml(a, b)
    assert not same_xml(a, a.replace("Minutes", "Minute"))
    assert not same_xml(a, a.replace('a="1"', 'a="3"'))
    assert not same_xml(a, a.replace("http://purl.org/dc/elements/1.1/", "urn:other"))


def test_identifier_values_are_compared_as_preservica_returns_them(tmp_path):
    sheet = read_sheet(write(tmp_path, "fix.csv", f"reference,identifier:catalogue \n{REF}, PC/2/14 \n"))
    assert sheet.changes[0].identifiers == {"catalogue": "PC/2/14"}  # a stray space would rewrite it on every run
    sheet = sheet_from_records([{"reference": REF, "identifiers": {"catalogue": "  "}}])
    assert "identifier value cannot be empty" in sheet.problems[0].message


# -- untrusted fragments: DTDs, files outside the sheet's folder, size ------------------------------------------
ENTITY_DC = (
    '<!DOCTYPE dc [<!ENTITY who "Clerk">]><dc xmlns="http://purl.org/dc/elements/1.1/"><title>&who;</title></dc>'
)
XXE_DC = (
    '<?xml version="1.0"?>\n<!DOCTYPE dc [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    '<dc xmlns="http://purl.org/dc/elements/1.1/"><title>&xxe;</title></dc>'
)


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def test_a_dtd_or_entity_declaration_is_refused_with_the_row_and_the_fix(tmp_path):
    (tmp_path / "xxe.xml").write_text(XXE_DC, encoding="utf-8")
    (tmp_path / "bare.xml").write_text('<!DOCTYPE dc SYSTEM "http://example.org/dc.dtd">' + DC, encoding="utf-8")
    text = (
        "reference,metadata,metadata_file\n"
        f"{REF},{_csv_cell(DC)},\n"
        f"{REF},{_csv_cell(ENTITY_DC)},\n"
        f"{REF},,xxe.xml\n"
        f"{REF},,bare.xml\n"
    )
    sheet = read_sheet(write(tmp_path, "fix.csv", text))
    assert [c.row for c in sheet.changes] == [2]
    problems = {p.row: p.message for p in sheet.problems}
    assert set(problems) == {3, 4, 5}
    for message in problems.values():
        assert "DTD" in message and "remove the <!DOCTYPE" in message
    assert "metadata" in problems[3] and "xxe.xml" in problems[4] and "bare.xml" in problems[5]
    lines = [{"reference": REF, "metadata": {"xml": ENTITY_DC, "mode": "add"}}]
    assert "DTD" in sheet_from_records(lines).problems[0].message  # JSON Lines / records in code: the same


def test_metadata_files_outside_the_sheets_folder_are_refused_unless_allowed(tmp_path):
    sheets = tmp_path / "sheets"
    (sheets / "xml").mkdir(parents=True)
    (sheets / "xml" / "dc.xml").write_text(DC, encoding="utf-8")
    outside = tmp_path / "outside.xml"
    outside.write_text(DC, encoding="utf-8")
    (sheets / "link.xml").symlink_to(outside)  # a link inside the folder that leads out of it
    (sheets / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    (sheets / "inside-link.xml").symlink_to(sheets / "xml" / "dc.xml")  # a link that stays inside is fine
    cells = ["xml/dc.xml", "../outside.xml", str(outside), "link.xml", "elsewhere/outside.xml", "inside-link.xml"]
    text = "reference,metadata_file\n" + "".join(f"{REF},{cell}\n" for cell in cells)
    source = write(sheets, "fix.csv", text)

    sheet = read_sheet(source)
    assert [c.row for c in sheet.changes] == [2, 7]
    problems = {p.row: p.message for p in sheet.problems}
    assert set(problems) == {3, 4, 5, 6}
    for message in problems.values():
        assert "is outside" in message and str(sheets) in message and "metadata_root=" in message
    assert "'../outside.xml'" in problems[3] and "'link.xml'" in problems[5]

    allowed = read_sheet(source, metadata_root=tmp_path)  # the operator's and the hook's metadata_root=
    assert not allowed.problems and allowed.changes[1].fragments[0].xml == DC


def test_an_oversized_fragment_is_refused_without_reading_it_whole(tmp_path):
    import tracemalloc

    big = tmp_path / "big.xml"
    with big.open("wb") as handle:  # 50 MB of well-formed XML, written in 1 MiB pieces
        handle.write(b'<dc xmlns="http://purl.org/dc/elements/1.1/"><description>')
        for _ in range(50):
            handle.write(b"x" * 1048576)
        handle.write(b"</description></dc>")
    source = write(tmp_path, "fix.csv", f"reference,metadata_file\n{REF},big.xml\n{REF},xml-free.xml\n")
    (tmp_path / "xml-free.xml").write_text(DC, encoding="utf-8")
    tracemalloc.start()
    try:
        sheet = read_sheet(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (problem,) = sheet.problems
    assert problem.row == 2 and "'big.xml' is larger than 4 MiB" in problem.message
    assert "max_fragment_bytes" in problem.message
    assert peak < 16 * 1024 * 1024, f"reading the sheet took {peak / 1048576:.0f} MiB"

    small = read_sheet(source, max_fragment_bytes=len(DC) - 1)  # the cap is configurable, inline cells too
    assert {p.row for p in small.problems} == {2, 3}
    inline = sheet_from_records([{"reference": REF, "metadata": DC}], max_fragment_bytes=10)
    assert "is larger than 10 bytes" in inline.problems[0].message


def test_object_storage_sheets_keep_metadata_files_inside_their_folder(tmp_path):
    (tmp_path / "sheets" / "xml").mkdir(parents=True)
    (tmp_path / "sheets" / "xml" / "dc.xml").write_text(DC, encoding="utf-8")
    (tmp_path / "outside.xml").write_text(DC, encoding="utf-8")
    (tmp_path / "sheets" / "link.xml").symlink_to(tmp_path / "outside.xml")
    cells = [
        "xml/dc.xml",
        "../outside.xml",
        f"file://{tmp_path}/outside.xml",
        "link.xml",
        str(tmp_path / "outside.xml"),
    ]
    write(tmp_path / "sheets", "fix.csv", "reference,metadata_file\n" + "".join(f"{REF},{c}\n" for c in cells))
    url = f"file://{tmp_path}/sheets/fix.csv"
    sheet = read_sheet(url)
    assert [c.row for c in sheet.changes] == [2]
    assert all("is outside" in p.message for p in sheet.problems) and len(sheet.problems) == 4
    allowed = read_sheet(url, metadata_root=f"file://{tmp_path}")
    assert [c.row for c in allowed.changes] == [2, 3, 4, 5]  # an absolute local path is not an object key
