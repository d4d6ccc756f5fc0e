"""Fixtures for the SQLite DLQ tests: real files, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from missive.messages import Message
from missive_sqlite_dlq import SQLiteDLQ

HERE = Path(__file__).resolve().parent

#: Seconds any child process may take before a test fails.
PROCESS_TIMEOUT = 60


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "dlq.db"


@pytest.fixture
def dlq(db_path: Path) -> Iterator[SQLiteDLQ[Message]]:
    store: SQLiteDLQ[Message] = SQLiteDLQ(db_path)
    yield store
    store.close()


def missive_script() -> str:
    """The ``missive`` console script installed next to this interpreter."""
    script = Path(sys.executable).parent / "missive"
    assert script.exists(), f"the missive console script is not installed: {script}"
    return str(script)


def run_missive(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``missive`` command and return what it did."""
    return subprocess.run(
        [missive_script(), *map(str, args)],
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


def helper_command(script: str, *args: str | os.PathLike[str]) -> list[str]:
    """The command line running one of this folder's helper scripts."""
    return [sys.executable, str(HERE / script), *map(str, args)]
