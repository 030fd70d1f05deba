"""A small hand-built repository whose every hit the tests can name.

Alpha collection (SO, open, catalogue-ref ALPHA)
  Series one (SO)
    Letter from Ada        (IO, open,   code C-1, isbn 9780000000001, 2019-03-04)
    Photograph of Bath     (IO, closed, code C-2,                     2020-01-15)
  Series two (SO)
    Map of York            (IO, public, code C-3,                     2020-05-01)
Beta collection (SO, closed)
  Letter to Bob            (IO, open,   code C-4, no description,    2021-12-31)
"""

from __future__ import annotations

from dataclasses import dataclass

from preservica_sandbox.repository import Repository


@dataclass(frozen=True)
class Tree:
    alpha: str
    series_one: str
    series_two: str
    beta: str
    ada: str
    bath: str
    york: str
    bob: str

    @property
    def assets(self) -> set[str]:
        return {self.ada, self.bath, self.york, self.bob}

    @property
    def folders(self) -> set[str]:
        return {self.alpha, self.series_one, self.series_two, self.beta}


def build_tree(repo: Repository) -> Tree:
    alpha = repo.add_folder(
        "Alpha collection", "Papers of the Alpha family", created="2018-01-01T00:00:00.000Z",
        identifiers=[("catalogue-ref", "ALPHA")],
    )  # fmt: skip
    one = repo.add_folder("Series one", "Correspondence", parent=alpha.ref, created="2018-02-01T00:00:00.000Z")
    two = repo.add_folder("Series two", "Maps", parent=alpha.ref, created="2018-03-01T00:00:00.000Z")
    beta = repo.add_folder("Beta collection", "", "closed", created="2018-04-01T00:00:00.000Z")
    ada = repo.add_asset(
        "Letter from Ada", one.ref, "About the analytical engine", "open", created="2019-03-04T10:00:00.000Z",
        identifiers=[("code", "C-1"), ("isbn", "9780000000001")],
    )  # fmt: skip
    bath = repo.add_asset(
        "Photograph of Bath", one.ref, "Pulteney Bridge in snow", "closed", created="2020-01-15T08:30:00.000Z",
        identifiers=[("code", "C-2")],
    )  # fmt: skip
    york = repo.add_asset(
        "Map of York", two.ref, "Ordnance survey sheet", "public", created="2020-05-01T12:00:00.000Z",
        identifiers=[("code", "C-3")],
    )  # fmt: skip
    bob = repo.add_asset(
        "Letter to Bob", beta.ref, "", "open", created="2021-12-31T23:59:59.000Z", identifiers=[("code", "C-4")]
    )
    return Tree(alpha.ref, one.ref, two.ref, beta.ref, ada.ref, bath.ref, york.ref, bob.ref)
