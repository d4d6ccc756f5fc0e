"""Every hook specification is in the hook reference and has a test of its own.

The hooks are listed from :mod:`missive.plugins.hookspecs` itself, so a new
hook fails these tests until it is documented and tested.
"""

from __future__ import annotations

import html
import inspect
import re
from pathlib import Path

import pytest
from docs_sources import REPO

from missive.plugins import hookspecs

HOOKS = sorted(
    name
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    # pluggy marks a specification with the attribute "<project>_spec".
    if hasattr(function, "missive_spec")
)

#: Where tests live: every test folder, and the example plugin's.
TEST_MODULES = sorted(
    path
    for path in [
        *(REPO / "tests").rglob("test_*.py"),
        *(REPO / "examples").glob("*/tests/test_*.py"),
    ]
    if path != Path(__file__).resolve()
)


def test_the_hook_specifications_are_found() -> None:
    assert {"missive_adapters", "missive_message_outcome"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_the_hook_reference_documents_it(built_docs: Path, hook: str) -> None:
    page = html.unescape((built_docs / "reference" / "hooks.html").read_text())
    docstring = inspect.getdoc(getattr(hookspecs, hook)) or ""
    # The summary line as rendered: reST roles and literals lose their marks.
    summary = re.sub(r":\w+:`~?([^`]*)`", r"\1", docstring.splitlines()[0])
    summary = summary.replace("`", "")
    text = re.sub(r"<[^>]+>", "", page)

    assert f'id="missive.plugins.hookspecs.{hook}"' in page
    assert " ".join(summary.split()) in " ".join(text.split())


@pytest.mark.parametrize("hook", HOOKS)
def test_a_test_module_names_it(hook: str) -> None:
    naming = [
        path.relative_to(REPO)
        for path in TEST_MODULES
        if re.search(rf"\b{hook}\b", path.read_text())
        and re.search(r"^\s*def test_", path.read_text(), re.MULTILINE)
    ]

    assert naming, f"no test module names the hook {hook}"
