"""What every benchmark's ``main()`` shares: the argument parser, the working folder, the sandbox, the report's
end (checks, total time, JSON), fixed-width and Markdown tables, and ratios.

A benchmark is a module run from the repository's root (``python -m benchmarks.<name>``)::

    parser = harness.parser(__doc__, keep="the temporary directory (files, logs)", child=True)
    parser.add_argument("--rows", type=int, default=1000, help="...")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with harness.workdir("preservica-bench-x-", keep=args.keep) as tmp, harness.sandbox(tmp, USER) as box:
        ...
    print(report)
    total_s = harness.conclude(args, started, checks=checks, kept=tmp)
    harness.write_json(args.json, {"benchmark": "x", "total_s": total_s, ...})
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.sandbox_process import SandboxProcess


def parser(
    doc: str | None,
    *,
    json_help: str | None = "also write the results as JSON to PATH",
    keep: str | None = None,
    child: bool = False,
) -> argparse.ArgumentParser:
    """The benchmark's parser: described by the first paragraph of ``doc``, with ``--json PATH`` (unless
    ``json_help`` is None), ``--keep`` (when ``keep`` says what is kept) and the hidden ``--child SPEC`` of a
    measured child process (``child``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)  # run as ``python -m benchmarks.<name>``
    prog = f"python -m {spec.name}" if spec is not None and spec.name.startswith("benchmarks.") else None
    result = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    if json_help is not None:
        result.add_argument("--json", type=Path, metavar="PATH", help=json_help)
    if keep is not None:
        result.add_argument("--keep", action="store_true", help=f"keep {keep}")
    if child:
        result.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    return result


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder for the run, removed at the end (also after a failure) unless ``keep``."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def sandbox_process(tmp: Path, user: dict[str, str]) -> SandboxProcess:
    """The sandbox as its own process (not started yet), with its data and log in ``tmp``, knowing ``user``."""
    return SandboxProcess(tmp / "sandbox-data", tmp / "sandbox.log", user)


@contextlib.contextmanager
def sandbox(tmp: Path, user: dict[str, str], config: dict[str, Any] | None = None) -> Iterator[SandboxProcess]:
    """:func:`sandbox_process` started (with ``config`` posted) for the block, stopped at its end."""
    server = sandbox_process(tmp, user)
    try:
        server.start()
        if config:
            server.control("POST", "/config", config)
        yield server
    finally:
        server.stop()


def print_checks(checks: Sequence[str]) -> None:
    """What the run checked, as one wrapped paragraph after an empty line."""
    print("")
    print(textwrap.fill("Checks: " + "; ".join(checks), width=120, subsequent_indent="  "))


def conclude(
    args: argparse.Namespace,
    started: float,
    *,
    checks: Sequence[str] | None = None,
    note: str = "",
    kept: Path | None = None,
    kept_what: str = "Files",
) -> float:
    """The end of a report: the checks, ``Whole benchmark: N s`` (`` (note)``), where ``--keep`` kept the files.

    Returns the whole run's seconds (since ``started``, a ``time.perf_counter()``), for the JSON.
    """
    if checks is not None:
        print_checks(checks)
    total_s = time.perf_counter() - started
    print(f"Whole benchmark: {total_s:.1f} s" + (f" ({note})" if note else ""))
    if kept is not None and getattr(args, "keep", False):
        print(f"{kept_what} kept in {kept}")
    return total_s


def write_json(path: Path | None, payload: Any, *, say: bool = True) -> None:
    """Write ``payload`` to ``path`` (``--json``; nothing when None), indented, and say so unless ``say`` is False."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if say:
        print(f"JSON written to {path}")


def ratio(numerator: float | None, denominator: float | None) -> str:
    """``numerator / denominator`` to 3 significant digits; ``n/a`` when either is missing or the divisor 0."""
    if numerator is None or not denominator:
        return "n/a"
    return f"{numerator / denominator:.3g}"


@dataclass(frozen=True)
class Column:
    """A column of a fixed-width table: its title, width, alignment (``<`` or ``>``) and value format."""

    title: str
    width: int
    align: str = ">"
    format: str = ""


class Table:
    """A fixed-width text table: a header, a rule as wide as the header, one line per row (single spaces)."""

    def __init__(self, *columns: Column) -> None:
        self.columns = columns

    def header(self) -> str:
        return " ".join(f"{c.title:{c.align}{c.width}}" for c in self.columns)

    def rule(self) -> str:
        return "-" * len(self.header())

    def row(self, *values: Any) -> str:
        return " ".join(f"{v:{c.align}{c.width}{c.format}}" for c, v in zip(self.columns, values, strict=True))

    def lines(self, rows: Sequence[Sequence[Any]]) -> list[str]:
        return [self.header(), self.rule(), *(self.row(*values) for values in rows)]


def markdown_table(header: Sequence[str], aligns: str, rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; ``aligns`` has one letter a column: ``l`` (left) or ``r`` (right)."""
    rule = "|" + "|".join("---" if a == "l" else "---:" for a in aligns) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(str(v) for v in values) + " |" for values in rows]
    return "\n".join(lines)


def run(main: Any) -> None:
    """``if __name__ == "__main__": harness.run(main)``: the exit status is what ``main()`` returns."""
    sys.exit(main())
