"""Sphinx directives of Missive's documentation.

- ``.. missive-help:: [SUBCOMMAND ...]`` runs the installed ``missive`` command
  with ``--help`` and shows what it printed, so the CLI reference is the real
  parser's, plugin subcommands included;
- ``.. optional-toctree::`` is a ``toctree`` that leaves out the entries whose
  document does not exist (pages that other tools write, such as
  ``reliability.md``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from docutils import nodes  # type: ignore[import-untyped]
from docutils.statemachine import StringList  # type: ignore[import-untyped]
from sphinx.application import Sphinx
from sphinx.directives.other import TocTree
from sphinx.util.docutils import SphinxDirective

#: The width argparse wraps help to, so that the output does not depend on
#: the terminal the docs are built in.
HELP_COLUMNS = "88"


def missive_help(arguments: list[str]) -> str:
    """Return what ``missive ARGUMENTS --help`` prints."""
    result = subprocess.run(
        [sys.executable, "-m", "missive", *arguments, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": HELP_COLUMNS},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"missive {' '.join(arguments)} --help exited with "
            f"{result.returncode}: {result.stderr.strip()}"
        )
    return result.stdout


class MissiveHelp(SphinxDirective):
    """Show the real ``--help`` of ``missive`` or one of its subcommands."""

    optional_arguments = 10

    def run(self) -> list[nodes.Node]:
        try:
            text = missive_help(list(self.arguments))
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            raise self.error(str(exc)) from exc
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


class OptionalTocTree(TocTree):
    """A ``toctree`` of the entries whose document exists."""

    def run(self) -> list[nodes.Node]:
        found = self.env.found_docs
        # Typed loosely: docutils, which defines ``content``, has no types.
        directive: Any = self
        kept = [line for line in directive.content if line.strip() in found]
        directive.content = StringList(kept, source=directive.content.source(0))
        result: list[nodes.Node] = super().run()
        return result


def _show_typing_generic(
    app: Sphinx, name: str, obj: object, options: object, bases: list[type]
) -> None:
    """Show core's run-time stand-in for ``typing.Generic`` as what it stands
    for (see ``missive/_typing.py``)."""
    import typing

    from missive import _typing

    bases[:] = [
        typing.Generic if getattr(base, "__origin__", base) is _typing.Generic else base
        for base in bases
    ]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-bases", _show_typing_generic)
    app.add_directive("missive-help", MissiveHelp)
    app.add_directive("optional-toctree", OptionalTocTree)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
