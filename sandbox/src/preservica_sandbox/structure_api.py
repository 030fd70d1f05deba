"""The asset structure walk (Entity API, XML) and bitstream content, as pyPreservica 4.2.2 reads them.

Routes (each also under ``/api/entity/v{M}.{m}``; links in responses keep the request's prefix):

- ``GET /api/entity/information-objects/{ref}/representations`` -> ``RepresentationsResponse``:
  ``Representations/Representation[@type][@name]`` whose text is ``.../representations/{Type}/{n}``
  (``n`` counts representations of that type from 1).
- ``GET .../representations/{Type}/{n}`` -> ``RepresentationResponse``: ``xip:Representation``
  (``xip:InformationObject``, ``xip:Name``, ``xip:Type``, ``xip:ContentObjects/xip:ContentObject`` refs)
  and ``ContentObjects/ContentObject[@ref][@title][@type="CO"]`` entity URLs.
- ``GET /api/entity/content-objects/{co}/generations`` -> ``GenerationsResponse``:
  ``Generations/Generation[@active]`` = ``.../generations/{g}`` (``g`` from 1, oldest first).
- ``GET .../generations/{g}`` -> ``GenerationResponse``: ``xip:Generation[@original][@active]``
  (``xip:ContentObject``, ``xip:FormatGroup``, ``xip:EffectiveDate``, ``xip:Formats/xip:Format[@valid]``,
  ``xip:Bitstreams/xip:Bitstream`` filenames) and ``Bitstreams/Bitstream[@filename]`` =
  ``.../bitstreams/{b}``.
- ``GET .../generations/{g}/bitstreams/{b}`` -> ``BitstreamResponse``: ``xip:Bitstream`` (``xip:Filename``,
  ``xip:FileSize``, ``xip:Fixities/xip:Fixity`` with ``xip:FixityAlgorithmRef`` then ``xip:FixityValue``)
  and ``AdditionalInformation/Self`` and ``AdditionalInformation/Content`` (the download URL).
- ``GET|HEAD .../bitstreams/{b}/content`` -> the bytes, with ``Range``/206/416 (``file_responses``);
  a bitstream recorded without stored bytes is 404.

Unknown refs, refs of another kind, representation types other than ``Preservation``/``Access`` and
indexes out of range are 404.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Request, Response

from . import entity_xml as xml
from .entities import REPRESENTATION_TYPES, Bitstream, Entity, Generation, Representation
from .errors import SandboxHTTPError
from .file_responses import file_response
from .route_helpers import lookup, versioned_route, xml_response
from .security import StateDep, TokenSession

router = APIRouter(tags=["entity structure"])


def _el(tag: str, text: str | None) -> str:
    return f"<{tag}>{escape(text)}</{tag}>" if text else ""


def _representation(asset: Entity, rep_type: str, index: int) -> Representation:
    if rep_type not in REPRESENTATION_TYPES:
        raise SandboxHTTPError(404, f"no representation type {rep_type} (Preservation or Access)")
    matching = [r for r in asset.representations if r.type == rep_type]
    if not 1 <= index <= len(matching):
        raise SandboxHTTPError(404, f"asset {asset.ref} has no {rep_type} representation {index}")
    return matching[index - 1]


def _generation(co: Entity, index: int) -> Generation:
    if not 1 <= index <= len(co.generations):
        raise SandboxHTTPError(404, f"content object {co.ref} has no generation {index}")
    return co.generations[index - 1]


def _bitstream(generation: Generation, co: Entity, index: int) -> Bitstream:
    if not 1 <= index <= len(generation.bitstreams):
        raise SandboxHTTPError(404, f"this generation of content object {co.ref} has no bitstream {index}")
    return generation.bitstreams[index - 1]


def _bool(value: bool) -> str:
    return "true" if value else "false"


@versioned_route(router, "GET", "/information-objects/{ref}/representations")
async def representations(ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    repo = state.repository
    ctx = xml.context(request, state.version)
    with repo.lock:
        asset = lookup(repo, "information-objects", ref)
        base = f"{ctx.url(asset)}/representations"
        parts = [ctx.open("RepresentationsResponse"), "<Representations>"]
        counts: dict[str, int] = {}
        for rep in asset.representations:
            counts[rep.type] = counts.get(rep.type, 0) + 1
            url = f"{base}/{rep.type}/{counts[rep.type]}"
            parts.append(
                f"<Representation type={quoteattr(rep.type)} name={quoteattr(rep.name)}>{escape(url)}</Representation>"
            )
        parts.append(f"</Representations><AdditionalInformation>{_el('Self', base)}</AdditionalInformation>")
        parts.append("</RepresentationsResponse>")
    return xml_response("".join(parts))


@versioned_route(router, "GET", "/information-objects/{ref}/representations/{rep_type}/{index}")
async def representation(
    ref: str, rep_type: str, index: int, request: Request, state: StateDep, _: TokenSession
) -> Response:
    repo = state.repository
    ctx = xml.context(request, state.version)
    with repo.lock:
        asset = lookup(repo, "information-objects", ref)
        rep = _representation(asset, rep_type, index)
        parts = [ctx.open("RepresentationResponse"), "<xip:Representation>", _el("xip:InformationObject", asset.ref)]
        parts += [_el("xip:Name", rep.name), _el("xip:Type", rep.type), "<xip:ContentObjects>"]
        parts += [_el("xip:ContentObject", co) for co in rep.content_objects]
        parts.append("</xip:ContentObjects></xip:Representation><ContentObjects>")
        for co_ref in rep.content_objects:
            co = repo.get(co_ref)
            if co is not None:
                parts.append(
                    f"<ContentObject ref={quoteattr(co.ref)} title={quoteattr(co.title)} "
                    f'type="CO">{escape(ctx.url(co))}</ContentObject>'
                )
        self_url = f"{ctx.url(asset)}/representations/{rep.type}/{index}"
        parts.append(f"</ContentObjects><AdditionalInformation>{_el('Self', self_url)}</AdditionalInformation>")
        parts.append("</RepresentationResponse>")
    return xml_response("".join(parts))


@versioned_route(router, "GET", "/content-objects/{ref}/generations")
async def generations(ref: str, request: Request, state: StateDep, _: TokenSession) -> Response:
    repo = state.repository
    ctx = xml.context(request, state.version)
    with repo.lock:
        co = lookup(repo, "content-objects", ref)
        base = f"{ctx.url(co)}/generations"
        parts = [ctx.open("GenerationsResponse"), "<Generations>"]
        for index, generation in enumerate(co.generations, start=1):
            parts.append(f'<Generation active="{_bool(generation.active)}">{escape(base)}/{index}</Generation>')
        parts.append(f"</Generations><AdditionalInformation>{_el('Self', base)}</AdditionalInformation>")
        parts.append("</GenerationsResponse>")
    return xml_response("".join(parts))


@versioned_route(router, "GET", "/content-objects/{ref}/generations/{index}")
async def generation(ref: str, index: int, request: Request, state: StateDep, _: TokenSession) -> Response:
    repo = state.repository
    ctx = xml.context(request, state.version)
    with repo.lock:
        co = lookup(repo, "content-objects", ref)
        gen = _generation(co, index)
        self_url = f"{ctx.url(co)}/generations/{index}"
        parts = [
            ctx.open("GenerationResponse"),
            f'<xip:Generation original="{_bool(gen.original)}" active="{_bool(gen.active)}">',
            _el("xip:ContentObject", co.ref),
            _el("xip:FormatGroup", gen.format_group),
            _el("xip:EffectiveDate", gen.effective_date),
            "<xip:Bitstreams>",
            *(_el("xip:Bitstream", b.filename) for b in gen.bitstreams),
            "</xip:Bitstreams>",
        ]
        if gen.formats:
            parts.append("<xip:Formats>")
            for fmt in gen.formats:
                valid = str(fmt.get("valid", fmt.get("Valid", "true"))).lower()
                parts.append(f"<xip:Format valid={quoteattr(valid)}>")
                for key in ("PUID", "Priority", "IdentificationMethod", "FormatName", "FormatVersion"):
                    value = fmt.get(key)
                    parts.append(_el(f"xip:{key}", None if value is None else str(value)))
                parts.append("</xip:Format>")
            parts.append("</xip:Formats>")
        parts.append("</xip:Generation><Bitstreams>")
        for number, bitstream in enumerate(gen.bitstreams, start=1):
            parts.append(
                f"<Bitstream filename={quoteattr(bitstream.filename)}>"
                f"{escape(self_url)}/bitstreams/{number}</Bitstream>"
            )
        parts.append(f"</Bitstreams><AdditionalInformation>{_el('Self', self_url)}</AdditionalInformation>")
        parts.append("</GenerationResponse>")
    return xml_response("".join(parts))


@versioned_route(router, "GET", "/content-objects/{ref}/generations/{index}/bitstreams/{number}")
async def bitstream(ref: str, index: int, number: int, request: Request, state: StateDep, _: TokenSession) -> Response:
    repo = state.repository
    ctx = xml.context(request, state.version)
    with repo.lock:
        co = lookup(repo, "content-objects", ref)
        item = _bitstream(_generation(co, index), co, number)
        self_url = f"{ctx.url(co)}/generations/{index}/bitstreams/{number}"
        parts = [
            ctx.open("BitstreamResponse"),
            "<xip:Bitstream>",
            _el("xip:Filename", item.filename),
            f"<xip:FileSize>{item.size}</xip:FileSize>",
            "<xip:Fixities>",
        ]
        for algorithm, value in sorted(item.fixities.items()):
            parts.append(
                f"<xip:Fixity>{_el('xip:FixityAlgorithmRef', algorithm)}{_el('xip:FixityValue', value)}</xip:Fixity>"
            )
        parts.append("</xip:Fixities></xip:Bitstream><AdditionalInformation>")
        parts += [_el("Self", self_url), _el("Content", f"{self_url}/content"), "</AdditionalInformation>"]
        parts.append("</BitstreamResponse>")
    return xml_response("".join(parts))


async def _content(ref: str, index: int, number: int, request: Request, state: StateDep) -> Response:
    repo = state.repository
    with repo.lock:
        co = lookup(repo, "content-objects", ref)
        item = _bitstream(_generation(co, index), co, number)
        path = repo.blob_path(item)
    if path is None:
        raise SandboxHTTPError(404, f"bitstream {item.filename} of content object {co.ref} has no stored content")
    return file_response(request, path, filename=item.filename)


@versioned_route(router, "GET", "/content-objects/{ref}/generations/{index}/bitstreams/{number}/content")
async def bitstream_content(
    ref: str, index: int, number: int, request: Request, state: StateDep, _: TokenSession
) -> Response:
    return await _content(ref, index, number, request, state)


@versioned_route(router, "HEAD", "/content-objects/{ref}/generations/{index}/bitstreams/{number}/content")
async def bitstream_content_head(
    ref: str, index: int, number: int, request: Request, state: StateDep, _: TokenSession
) -> Response:
    return await _content(ref, index, number, request, state)
