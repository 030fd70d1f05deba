"""``GET|HEAD /api/content/download``: the bytes of an asset's access copy (or of one content object).

``GET /api/content/download?id=sdb:IO|<ref>`` streams an asset's access copy: the first bitstream of the
latest active generation of the first content object of the ``Access`` representation, else of the
``Preservation`` one (``sdb:CO|<ref>`` streams that content object's). An asset with no stored
bitstream at all answers with its deterministic placeholder (``placeholders.placeholder``), the same
bytes an export of it contains; a folder id is 400, an unknown ref 404.
Answers stream with ``Range`` support (``file_responses``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response

from .entities import CO, IO, SO, Entity, RepositoryError, check_ref
from .errors import SandboxHTTPError
from .file_responses import bytes_response, file_response
from .placeholders import placeholder
from .repository import Repository
from .security import StateDep, TokenSession

router = APIRouter(tags=["content"])


def stored_bitstream(repo: Repository, entity: Entity) -> tuple[Path, str] | None:
    """(file, filename) of what a download of an asset or content object serves, if bytes are stored.

    Asset: its ``Access`` representations first, then ``Preservation``; in each, content objects in
    order; per content object the latest active generation (else the latest); its first stored bitstream.
    """
    if entity.kind == IO:
        cos = [
            co_ref
            for rep_type in ("Access", "Preservation")
            for rep in entity.representations
            if rep.type == rep_type
            for co_ref in rep.content_objects
        ]
    else:
        cos = [entity.ref]
    for co_ref in cos:
        co = repo.get(co_ref, CO)
        if co is None or not co.generations:
            continue
        active = [g for g in co.generations if g.active]
        generation = (active or co.generations)[-1]
        for bitstream in generation.bitstreams:
            path = repo.blob_path(bitstream)
            if path is not None:
                return path, bitstream.filename
    return None


# --------------------------------------------------------------------------- /api/content/download
@router.api_route("/api/content/download", methods=["GET", "HEAD"])
async def download(request: Request, state: StateDep, _: TokenSession, id: str = "") -> Response:
    kind, _sep, raw_ref = id.removeprefix("sdb:").partition("|")
    if kind not in (SO, IO, CO) or not raw_ref:
        raise SandboxHTTPError(400, f"id must look like sdb:IO|<reference>, not {id!r}")
    if kind == SO:
        raise SandboxHTTPError(400, f"folders have no content to download: {id}")
    try:
        ref = check_ref(raw_ref)
    except RepositoryError:
        ref = ""
    repo = state.repository
    with repo.lock:
        entity = repo.get(ref, kind) if ref else None
        if entity is None:
            raise SandboxHTTPError(404, f"The requested reference is not found in the repository: {id}")
        found = stored_bitstream(repo, entity)
        stand_in = placeholder(entity) if found is None and kind == IO else None
    if found is not None:
        return file_response(request, found[0], filename=found[1])
    if stand_in is None:
        raise SandboxHTTPError(404, f"content object {ref} has no stored bitstream")
    return bytes_response(request, stand_in.data, filename=stand_in.filename, media_type="text/plain; charset=utf-8")
