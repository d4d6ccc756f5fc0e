"""The missive command line, run as the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def missive_command() -> list[str]:
    script = shutil.which("missive", path=str(Path(sys.executable).parent))
    assert script, "the missive console script is not installed"
    return [script]


def run_missive(*args: str, stdin: str = "", cwd: Path = REPO, env=None):
    return subprocess.run(
        [*missive_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_plugins_lists_cores_builtins_with_distribution_and_version():
    result = run_missive("plugins")

    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["KIND", "NAME", "DISTRIBUTION", "VERSION"]
    version = (REPO / "VERSION").read_text().strip()
    assert ["adapter", "stdin", "missive-core", version] in rows
    assert ["message", "format", "json", "missive-core", version] in rows
    assert ["DLQ", "backend", "memory", "missive-core", version] in rows


def test_plugins_json_is_machine_readable():
    result = run_missive("plugins", "--json", "--check")

    rows = json.loads(result.stdout)
    stdin = next(row for row in rows if row["name"] == "stdin")
    assert stdin["kind"] == "adapter"
    assert stdin["distribution"] == "missive-core"
    assert stdin["error"] == ""


def test_run_a_processor_with_the_stdin_adapter():
    messages = (REPO / "examples" / "orders.jsonl").read_text()

    result = run_missive(
        "run",
        "examples.orders_processor:processor",
        "--adapter",
        "stdin",
        "--message",
        "json",
        stdin=messages,
    )

    assert result.returncode == 0, result.stderr
    assert "order-created  -> record_order: order 1" in result.stdout
    assert "dead letters: 3" in result.stdout
    assert "no matching handlers" in result.stdout
    assert "could not decode message" in result.stdout


def test_run_reads_a_file_with_the_path_option():
    result = run_missive(
        "run",
        "examples.orders_processor:processor",
        "--adapter=stdin",
        "--message=json",
        "-o",
        "path=examples/orders.jsonl",
    )

    assert result.returncode == 0, result.stderr
    assert "dead letters: 3" in result.stdout


def test_run_an_adapter_object_as_it_is():
    result = run_missive(
        "run", "hello_processor:stdin_processor", stdin="Hello\n", cwd=REPO / "examples"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello whoever you are\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no_such_module:processor", "--adapter", "stdin"], "cannot import"),
        (
            ["run", "examples.orders_processor:nope", "--adapter", "stdin"],
            "no attribute",
        ),
        (["run", "examples.orders_processor"], "not MODULE:ATTR"),
        (["run", "examples.orders_processor:processor"], "--adapter stdin"),
        (
            ["run", "examples.orders_processor:processor", "--adapter", "pigeon"],
            "no installed distribution provides the adapter 'pigeon'",
        ),
        (
            [
                "run",
                "examples.orders_processor:processor",
                "--adapter",
                "stdin",
                "-o",
                "colour=blue",
            ],
            "bad options for adapter 'stdin'",
        ),
        (
            [
                "run",
                "examples.orders_processor:processor",
                "--adapter",
                "stdin",
                "-o",
                "novalue",
            ],
            "not KEY=VALUE",
        ),
        (["run", "examples.orders_processor:dead_letters"], "not a missive Processor"),
    ],
)
def test_errors_are_one_clear_line_and_a_nonzero_exit(args, expected):
    result = run_missive(*args)

    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1


@pytest.mark.parametrize("args", [[], ["plugins"], ["run"]])
def test_help_everywhere(args):
    result = run_missive(*args, "--help")

    assert result.returncode == 0
    assert "usage: missive" in result.stdout


def test_python_dash_m_missive_is_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "missive", "plugins"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0
    assert "stdin" in result.stdout
