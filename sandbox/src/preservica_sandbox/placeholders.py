"""Placeholder content: what an asset with no stored bitstream bytes (every seeded asset) is exported as.

One deterministic file, ``Representation_Preservation/<uuid5(asset ref)>/Generation_1/<asset-ref>.txt``,
holding ``Preservica sandbox placeholder for asset <ref>\\nTitle: <title>\\n`` (UTF-8), declared in the
export's XIP with its size and fixities like any other bitstream, so exports of seeded data still carry
content that can be verified. ``GET /api/content/download`` serves the same bytes.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from .entities import FIXITY_ALGORITHMS, Entity

#: Namespace of the placeholder content-object refs and of the synthetic event refs of exports.
PLACEHOLDER_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4b7a-9a57-2c2f3f0e4d11")


@dataclass(frozen=True)
class Placeholder:
    co_ref: str
    filename: str
    data: bytes

    def fixities(self) -> tuple[tuple[str, str], ...]:
        """``(algorithm, hex)`` of every algorithm the repository records, sorted by algorithm."""
        return tuple(sorted((alg, hashlib.new(py, self.data).hexdigest()) for alg, py in FIXITY_ALGORITHMS.items()))


def placeholder(asset: Entity) -> Placeholder:
    """The deterministic stand-in content of an asset with no stored bytes (see the module docstring)."""
    text = f"Preservica sandbox placeholder for asset {asset.ref}\nTitle: {asset.title}\n"
    return Placeholder(str(uuid.uuid5(PLACEHOLDER_NAMESPACE, asset.ref)), f"{asset.ref}.txt", text.encode("utf-8"))
