"""Compare a row with what Preservica holds and list only the writes that are still needed.

This is what makes a sheet safe to run twice, or again after a crash half way: a property already in the
wanted state makes no step, so a re-run of the same sheet writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_preservica.client.entities import Entity, EntityService, EntityType, Identifier
from airflow_provider_preservica.metadata.model import ROOT, RowChange
from airflow_provider_preservica.metadata.xmlcompare import same_xml


@dataclass(frozen=True)
class Step:
    """One write: ``EntityService.<method>(*args)``. Background steps return Preservica's progress token."""

    what: str
    method: str
    args: tuple[Any, ...]
    background: bool = False

    def run(self, service: EntityService) -> Any:
        return getattr(service, self.method)(*self.args)


@dataclass
class EntityState:
    """What the row's entity holds now: always the entity; identifiers and fragment documents when the row
    touches them (``documents``: fragment URL -> XML, only of the schemas the row names)."""

    entity: Entity
    identifiers: list[Identifier] | None = None
    documents: dict[str, str] = field(default_factory=dict)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _text_steps(change: RowChange, entity: Entity) -> list[Step]:
    title = change.title.strip() if change.title is not None else None
    description = change.description.strip() if change.description is not None else None
    parts = []
    if title is not None and title != entity.title:
        parts.append(f"title {_short(entity.title)} -> {_short(title)}")
    else:
        title = None
    if description is not None and description != entity.description:
        parts.append(f"description {_short(entity.description)} -> {_short(description)}")
    else:
        description = None
    if not parts:
        return []
    return [Step("; ".join(parts), "update_text", (entity, title, description))]


def _identifier_steps(change: RowChange, entity: Entity, existing: list[Identifier]) -> list[Step]:
    kind: EntityType = entity.entity_type  # type: ignore[assignment]
    steps: list[Step] = []
    for id_type, wanted in change.identifiers.items():
        have = [i for i in existing if i.type == id_type]
        if wanted is None:
            for old in have:
                steps.append(
                    Step(
                        f"identifier {id_type} {_short(old.value)} removed",
                        "delete_identifier",
                        (entity.ref, kind, old.api_id),
                    )
                )
            continue
        keep = next((i for i in have if i.value == wanted), None)
        if keep is None and have:
            keep = have[0]
            steps.append(
                Step(
                    f"identifier {id_type} {_short(keep.value)} -> {_short(wanted)}",
                    "update_identifier",
                    (entity.ref, kind, keep.api_id, id_type, wanted),
                )
            )
        elif keep is None:
            steps.append(
                Step(
                    f"identifier {id_type} {_short(wanted)} added",
                    "add_identifier",
                    (entity.ref, kind, id_type, wanted),
                )
            )
        for extra in have:
            if extra is not keep:
                steps.append(
                    Step(
                        f"duplicate identifier {id_type} {_short(extra.value)} removed",
                        "delete_identifier",
                        (entity.ref, kind, extra.api_id),
                    )
                )
    return steps


def _fragment_steps(change: RowChange, state: EntityState) -> list[Step]:
    entity = state.entity
    kind: EntityType = entity.entity_type  # type: ignore[assignment]
    steps: list[Step] = []
    for fragment in change.fragments:
        urls = [link.url for link in entity.fragments if link.schema == fragment.schema]
        equal = [url for url in urls if same_xml(state.documents.get(url, ""), fragment.xml)]
        if equal and fragment.mode == "add":
            continue
        if fragment.mode == "add" or not urls:
            steps.append(Step(f"fragment {fragment.schema} added", "add_metadata", (entity.ref, kind, fragment.xml)))
            continue
        # replace: afterwards exactly one fragment of the schema, equal to this one
        keep = equal[0] if equal else urls[0]
        if not equal:
            steps.append(
                Step(f"fragment {fragment.schema} replaced", "replace_metadata", (entity.ref, keep, fragment.xml))
            )
        steps.extend(
            Step(f"extra fragment {fragment.schema} removed", "delete_metadata", (url,)) for url in urls if url != keep
        )
    return steps


def _background_steps(change: RowChange, entity: Entity) -> list[Step]:
    kind: EntityType = entity.entity_type  # type: ignore[assignment]
    steps: list[Step] = []
    tag = change.security_tag
    if tag is not None and tag != entity.security_tag:
        steps.append(
            Step(
                f"security tag {entity.security_tag or '(none)'} -> {tag}",
                "start_security_tag",
                (entity.ref, kind, tag),
                background=True,
            )
        )
    if change.parent is not None:
        wanted = None if change.parent == ROOT else change.parent
        if wanted != entity.parent_ref:
            steps.append(
                Step(
                    f"moved from {entity.parent_ref or ROOT} to {wanted or ROOT}",
                    "start_move",
                    (entity.ref, kind, wanted),
                    background=True,
                )
            )
    return steps


def plan_row(change: RowChange, state: EntityState) -> list[Step]:
    """The writes that bring ``state`` to what ``change`` asks for, quick ones first, background work last."""
    entity = state.entity
    return [
        *_text_steps(change, entity),
        *_identifier_steps(change, entity, state.identifiers or []),
        *_fragment_steps(change, state),
        *_background_steps(change, entity),
    ]
