"""The ``missive plugins`` output the docs show is the command's real output.

The docs show it for Missive's test environment: every first-party
distribution, ``missive-dirwatch`` and ``missive-listfeed`` installed.
"""

from __future__ import annotations

import subprocess
import sys

from docs_sources import DOCS, code_blocks


def test_the_documented_missive_plugins_output_is_the_real_one() -> None:
    [documented] = [
        block
        for block in code_blocks(DOCS / "guide" / "plugins.rst")
        if block.name == "missive-plugins-output"
    ]

    result = subprocess.run(
        [sys.executable, "-m", "missive", "plugins"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert documented.code == result.stdout
