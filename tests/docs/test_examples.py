"""Every code example of the docs runs, and every command line parses.

The Python blocks of a page run in order, in one namespace and in a fresh
directory, as a reader following the page would run them: a later block may
use what an earlier one defined.  Blocks run with ``__name__`` other than
``"__main__"``, so an ``if __name__ == "__main__":`` guard keeps a processor
from waiting on standard input.  ``missive`` command lines of console blocks
are parsed by the real parser (the subcommand and every option must exist);
they are not run, since most of them need a server or a file to process.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from docs_sources import REPO, CodeBlock, code_blocks, pages

from missive import cli

#: The languages a code block may declare; only Python is executed.
LANGUAGES = {"python", "console", "text", "toml", "sh"}

PYTHON_PAGES = [
    page
    for page in pages()
    if any(block.language == "python" for block in code_blocks(page))
]
COMMANDS = [
    (block, line)
    for page in pages()
    for block in code_blocks(page)
    if block.language == "console"
    for line in block.code.splitlines()
    if line.startswith("$ ") and re.search(r"(^|\| )missive ", line[2:])
]


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_page_id)
def test_every_python_example_of_the_page_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_example"}

    for block in code_blocks(page):
        if block.language != "python":
            continue
        try:
            exec(compile(block.code, block.where, "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"the example at {block.where} raised {exc!r}", pytrace=False)


@pytest.mark.parametrize(
    ("block", "line"), COMMANDS, ids=[f"{b.where}-{line[2:40]}" for b, line in COMMANDS]
)
def test_every_missive_command_line_parses(block: CodeBlock, line: str) -> None:
    command = line[2:].rsplit("| ", 1)[-1]
    argv = shlex.split(command)[1:]

    try:
        cli.build_parser(argv).parse_args(argv)
    except SystemExit as exit:
        pytest.fail(
            f"{block.where}: `{command}` does not parse ({exit})", pytrace=False
        )


def test_there_are_examples_to_run() -> None:
    assert len(PYTHON_PAGES) >= 8
    assert len(COMMANDS) >= 5


def test_every_literal_block_declares_a_known_language() -> None:
    for page in pages():
        if page.suffix != ".rst":
            continue
        for number, text in enumerate(page.read_text().splitlines(), start=1):
            # "Paragraph::" starts a literal block whose language is unknown.
            if text.rstrip().endswith("::") and not text.lstrip().startswith(".."):
                pytest.fail(f"{_page_id(page)}:{number}: use .. code-block:: LANGUAGE")
        for block in code_blocks(page):
            assert block.language in LANGUAGES, block.where
