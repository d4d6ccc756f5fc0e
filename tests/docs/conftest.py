"""Fixtures of the documentation tests: one real build of the site."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from docs_sources import DOCS


@pytest.fixture(scope="session")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML site, built as CI builds it: warnings are errors."""
    output = tmp_path_factory.mktemp("docs-html")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-n",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"the docs do not build cleanly:\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return output
