"""The documentation builds, warnings as errors, with what it promises."""

from __future__ import annotations

from pathlib import Path

from docs_sources import DOCS


def test_the_docs_build_without_warnings_and_have_every_page(built_docs: Path) -> None:
    sources = {
        path.relative_to(DOCS).with_suffix(".html")
        for path in DOCS.rglob("*")
        if path.suffix in (".rst", ".md") and "_build" not in path.parts
    }

    built = {path.relative_to(built_docs) for path in built_docs.rglob("*.html")}
    assert sources <= built


def test_the_cli_reference_is_the_real_help_of_each_command(built_docs: Path) -> None:
    page = (built_docs / "reference" / "cli.html").read_text()

    for usage in (
        "usage: missive [-h]",
        "usage: missive plugins",
        "usage: missive run",
        "usage: missive dlq replay",
    ):
        assert usage in page
