"""Reading the documentation's sources: its pages and their code blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


@dataclass(frozen=True)
class CodeBlock:
    """One ``.. code-block::`` of a reStructuredText page, or a Markdown fence."""

    path: Path
    line: int
    language: str
    name: str | None
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def pages() -> list[Path]:
    """Every source page of the site, reStructuredText and Markdown."""
    return sorted(
        path
        for path in DOCS.rglob("*")
        if path.suffix in (".rst", ".md") and "_build" not in path.parts
    )


_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block:: *(\S+)\s*$")
_OPTION = re.compile(r"^\s*:(\w[\w-]*):\s*(.*)$")
_FENCE = re.compile(r"^```\s*(\w+)?\s*$")


def code_blocks(path: Path) -> list[CodeBlock]:
    """The code blocks of one page, in order."""
    lines = path.read_text().splitlines()
    if path.suffix == ".md":
        return _fenced_blocks(path, lines)
    blocks = []
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        index += 1
        if match is None:
            continue
        indent, language, name = len(match.group(1)), match.group(2), None
        while index < len(lines) and (option := _OPTION.match(lines[index])):
            if option.group(1) == "name":
                name = option.group(2).strip()
            index += 1
        start = index
        body: list[str] = []
        while index < len(lines) and (
            not lines[index].strip()
            or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            body.append(lines[index])
            index += 1
        code = _dedent(body)
        blocks.append(CodeBlock(path, start + 1, language, name, code))
    return blocks


def _fenced_blocks(path: Path, lines: list[str]) -> list[CodeBlock]:
    blocks = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        index += 1
        if match is None:
            continue
        start = index
        while index < len(lines) and not lines[index].startswith("```"):
            index += 1
        code = "\n".join(lines[start:index]) + "\n"
        blocks.append(CodeBlock(path, start + 1, match.group(1) or "", None, code))
        index += 1
    return blocks


def _dedent(body: list[str]) -> str:
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    width = min(
        (len(line) - len(line.lstrip()) for line in body if line.strip()), default=0
    )
    return "\n".join(line[width:] for line in body) + "\n"
