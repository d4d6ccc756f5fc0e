"""What importing Missive costs: the heavy standard modules stay unloaded.

The start-up budget itself is measured by ``benchmarks/startup.py``; these
tests pin down the structure that keeps within it, in a fresh interpreter.
"""

from __future__ import annotations

HEAVY = (
    "typing",
    "logging",
    "enum",
    "re",
    "signal",
    "traceback",
    "threading",
    "contextlib",
    "collections",
    "pluggy",
    "importlib.metadata",
)


def _loaded_after(code, run_python):
    result = run_python(
        f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_missive_loads_none_of_the_heavy_standard_modules(run_python):
    assert _loaded_after("import missive", run_python) == "[]"


def test_loading_builtins_by_name_loads_none_of_them_either(run_python):
    code = (
        "import missive.adapters, missive.messages\n"
        "missive.adapters.load('stdin'); missive.messages.load('json')"
    )

    assert _loaded_after(code, run_python) == "[]"


def test_processor_subscripts_at_run_time_like_a_typing_generic(run_python):
    result = run_python(
        "import missive\n"
        "p = missive.Processor[missive.JSONMessage]()\n"
        "json_processor: missive.Processor[missive.JSONMessage] = p\n"
        "print(type(p).__name__, missive.Processor[missive.JSONMessage])"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "Processor",
        "missive.processor.Processor[missive.messages.JSONMessage]",
    ]


def test_warnings_reach_stderr_even_when_nobody_imported_logging(run_python):
    result = run_python(
        "import missive\n"
        "p = missive.Processor()\n"
        "p.set_dlq({})\n"
        "with p.test_client() as client:\n"
        "    client.send(missive.RawMessage(b'stray'))\n"
    )

    assert result.returncode == 0, result.stderr
    assert "dead-lettering message" in result.stderr
    assert "no matching handlers" in result.stderr


def test_debug_records_are_logged_once_logging_is_configured(run_python):
    result = run_python(
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)\n"
        "import missive.adapters\n"
        "missive.adapters.load('stdin')\n"
    )

    assert result.returncode == 0, result.stderr
    assert "loaded adapter 'stdin'" in result.stdout
