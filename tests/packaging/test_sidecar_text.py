"""An asset sidecar without descriptive metadata is written as text: the very bytes of the element-tree path."""

from __future__ import annotations

import itertools
import random

import pytest

from airflow_provider_preservica.files.fixity import FixityRecord
from airflow_provider_preservica.ingest.packaging import opex
from airflow_provider_preservica.ingest.packaging.opex import OpexProperties, asset_sidecar, read_opex

AWKWARD = ["", "a", "&", "<b>", 'say "hi"', "it's", "tab\there", "line\nbreak", "cr\rlf\r\n", "]]>", "é ✓ 𝄞", " pad "]


def _cases() -> list[tuple[OpexProperties, tuple[FixityRecord, ...]]]:
    chosen = random.Random(20)
    cases = []
    for title, text in itertools.product(AWKWARD[1:], AWKWARD):
        identifiers = tuple((chosen.choice(AWKWARD[1:]), chosen.choice(AWKWARD)) for _ in range(chosen.randrange(3)))
        props = OpexProperties(
            source_id=chosen.choice(AWKWARD),
            title=title,
            security_tag=chosen.choice(["open", "closed", text or "x"]),
            description=text or None,
            identifiers=identifiers,
        )
        fixities = tuple(FixityRecord(chosen.choice(["SHA-256", text]), text) for _ in range(1 + chosen.randrange(2)))
        cases.append((props, fixities))
    return cases


@pytest.mark.parametrize(("props", "fixities"), _cases())
def test_a_plain_sidecar_is_byte_for_byte_the_element_tree_document(props, fixities):
    written = asset_sidecar(props, fixities)
    assert written == opex._document(props, fixities=fixities)
    document = read_opex(written)
    assert [(f.algorithm, f.value) for f in document.fixities] == [(f.algorithm, f.value) for f in fixities]
