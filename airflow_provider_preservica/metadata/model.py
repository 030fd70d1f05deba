"""What a sheet asks for (``RowChange``) and what became of it (``RowOutcome``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

ROOT = "@root@"  # ``parent`` of a folder moved to the top of the repository


class Outcome(str, Enum):
    CHANGED = "changed"
    WOULD_CHANGE = "would change"  # dry run
    UNCHANGED = "unchanged"
    PENDING = "pending"  # submitted; Preservica is still applying it
    NOT_FOUND = "not found"
    AMBIGUOUS = "ambiguous identifier"
    INVALID = "invalid"  # the row itself is wrong (checked before any write)
    REJECTED = "rejected"  # Preservica refused a write, or its background work failed
    NOT_APPLIED = "not applied"  # a good row held back because other rows were bad (allow_partial=False)

    @property
    def failed(self) -> bool:
        return self in FAILURES


FAILURES = frozenset({Outcome.NOT_FOUND, Outcome.AMBIGUOUS, Outcome.INVALID, Outcome.REJECTED})


@dataclass(frozen=True)
class FragmentChange:
    """A descriptive metadata document to hold on the entity, filed under its root element's namespace.

    ``replace``: afterwards exactly one fragment of that schema exists, equal to this document.
    ``add``: this document is added unless an equal fragment of that schema is already there.
    """

    xml: str
    schema: str
    mode: str = "replace"
    source: str = "metadata"  # the column or file it came from, for messages


@dataclass(frozen=True)
class RowChange:
    """One row: which entity, and the state it should be in. ``None`` means "leave as it is"."""

    row: int  # the line a person finds it on (CSV: the header is line 1)
    ref: str | None = None
    lookup: tuple[str, str] | None = None  # (identifier type, value) when the row names no reference
    entity_type: str | None = None  # SO or IO; looked up when None
    title: str | None = None
    description: str | None = None
    security_tag: str | None = None
    parent: str | None = None  # folder ref, or ROOT
    identifiers: dict[str, str | None] = field(default_factory=dict)  # type -> value (None: remove that type)
    fragments: tuple[FragmentChange, ...] = ()

    @property
    def locator(self) -> str:
        if self.ref:
            return self.ref
        assert self.lookup is not None
        return f"{self.lookup[0]}={self.lookup[1]}"


@dataclass
class RowOutcome:
    row: int
    locator: str
    outcome: Outcome
    ref: str = ""
    changes: list[str] = field(default_factory=list)
    message: str = ""

    def to_json(self) -> list[Any]:
        return [self.row, self.locator, self.outcome.value, self.ref, self.changes, self.message]

    @classmethod
    def from_json(cls, value: list[Any]) -> RowOutcome:
        row, locator, outcome, ref, changes, message = value
        return cls(int(row), str(locator), Outcome(outcome), str(ref), [str(c) for c in changes], str(message))
