"""``missive_add_commands``: a plugin's subcommand joins the ``missive`` CLI.

The drift test of the hook specifications found this hook without a test
naming it (``missive dlq`` exercised it only indirectly); this is its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def test_missive_add_commands_adds_a_subcommand_that_runs(tmp_path: Path) -> None:
    dist_info = tmp_path / "missive_greet-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: missive-greet\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[missive.commands]\ngreet = missive_greet\n"
    )
    (tmp_path / "missive_greet.py").write_text(
        textwrap.dedent(
            """
            from missive.plugins import hookimpl

            @hookimpl
            def missive_add_commands(subparsers):
                parser = subparsers.add_parser("greet", help="say hello")
                parser.add_argument("name")
                parser.set_defaults(handler=lambda args: print("hello", args.name))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    result = subprocess.run(
        [sys.executable, "-m", "missive", "greet", "cal"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    listed = subprocess.run(
        [sys.executable, "-m", "missive", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello cal\n"
    assert "(from missive-greet)" in listed.stdout
