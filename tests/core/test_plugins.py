"""The plugin layer: discovery, lazy loading, errors, hand registration."""

from __future__ import annotations

import json
import os

import pytest

import missive
import missive.adapters
import missive.dlq
import missive.messages
from missive.adapters.stdin import StdinAdapter
from missive.plugins import PluginRegistry, hookimpl, use_registry


def _python_with(fake_dists, code, run_python):
    """Run code in a fresh interpreter that also sees the fake distributions."""
    path = os.pathsep.join([str(fake_dists.root), os.environ.get("PYTHONPATH", "")])
    return run_python(code, env={"PYTHONPATH": path})


def test_builtins_load_by_name_through_entry_points():
    assert missive.adapters.load("stdin") is StdinAdapter
    assert missive.messages.load("raw") is missive.RawMessage
    assert missive.messages.load("json") is missive.JSONMessage
    assert missive.messages.load("dict") is missive.DictMessage
    assert {"stdin"} <= set(missive.adapters.names())
    assert {"raw", "json", "dict"} <= set(missive.messages.names())


def test_import_missive_scans_no_entry_points_and_imports_no_plugin(run_python):
    result = run_python(
        "import sys, missive\n"
        "loaded = [m for m in sys.modules if m.startswith(('importlib.metadata',"
        " 'pluggy', 'missive_', 'missive.plugins', 'redis', 'json'))]\n"
        "print(loaded)"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_loading_stdin_imports_no_other_plugin_or_their_dependencies(run_python):
    result = run_python(
        "import sys, missive.adapters\n"
        "missive.adapters.load('stdin')\n"
        "print(sorted(m for m in sys.modules if m.startswith('missive_')"
        " or m.split('.')[0] in ('redis', 'sqlite3', 'wsgiref', 'gunicorn')))"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_loading_a_plugin_imports_that_plugin_only(fake_dists, run_python):
    for name in ("alpha", "beta"):
        fake_dists.add(
            f"missive-{name}",
            {"missive.adapters": {name: f"missive_{name}"}},
            {
                f"missive_{name}": f"""
                from missive.plugins import hookimpl
                from missive.adapters.stdin import StdinAdapter

                class {name.title()}Adapter(StdinAdapter):
                    pass

                @hookimpl
                def missive_adapters():
                    return {{"{name}": {name.title()}Adapter}}
                """
            },
        )

    result = _python_with(
        fake_dists,
        "import sys, missive.adapters\n"
        "cls = missive.adapters.load('alpha')\n"
        "print(cls.__name__, 'missive_alpha' in sys.modules,"
        " 'missive_beta' in sys.modules)",
        run_python,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["AlphaAdapter", "True", "False"]


def test_unknown_name_is_a_lookup_error_listing_what_is_installed():
    with pytest.raises(missive.PluginNotFound) as raised:
        missive.adapters.load("carrier-pigeon")

    assert isinstance(raised.value, LookupError)
    assert "carrier-pigeon" in str(raised.value)
    assert "stdin" in str(raised.value)


def test_unknown_first_party_name_says_which_distribution_to_install():
    registry = PluginRegistry(discover=False)

    with pytest.raises(missive.PluginNotFound, match="pip install missive-redis"):
        registry.load("missive.adapters", "redis")


def test_broken_plugin_names_distribution_and_entry_point_and_others_still_load(
    fake_dists, run_python
):
    fake_dists.add(
        "missive-broken",
        {"missive.adapters": {"broken": "missive_broken"}},
        {"missive_broken": "raise RuntimeError('no config file')\n"},
    )

    result = _python_with(
        fake_dists,
        "import missive.adapters\n"
        "try:\n"
        "    missive.adapters.load('broken')\n"
        "except missive.PluginLoadError as exc:\n"
        "    print('ERROR', exc)\n"
        "    print('CAUSE', repr(exc.__cause__))\n"
        "print('NAMES', missive.adapters.names())\n"
        "print('STDIN', missive.adapters.load('stdin').__name__)\n",
        run_python,
    )

    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert "missive-broken" in lines["ERROR"]
    assert "broken = missive_broken" in lines["ERROR"]
    assert "no config file" in lines["CAUSE"]
    assert "'broken'" in lines["NAMES"] and "'stdin'" in lines["NAMES"]
    assert lines["STDIN"] == "StdinAdapter"


def test_two_distributions_claiming_one_name_is_an_error_naming_both(
    fake_dists, run_python
):
    for dist in ("missive-queue-a", "missive-queue-b"):
        module = dist.replace("-", "_")
        fake_dists.add(
            dist,
            {"missive.adapters": {"queue": module}},
            {module: "raise AssertionError('must not be imported')\n"},
        )

    result = _python_with(
        fake_dists,
        "import missive.adapters\n"
        "try:\n"
        "    missive.adapters.load('queue')\n"
        "except missive.DuplicatePlugin as exc:\n"
        "    print(exc)\n"
        "print(missive.adapters.load('stdin').__name__)\n",
        run_python,
    )

    assert result.returncode == 0, result.stderr
    error, stdin = result.stdout.splitlines()
    assert "missive-queue-a" in error and "missive-queue-b" in error
    assert stdin == "StdinAdapter"


def test_entry_point_whose_hook_does_not_provide_the_name_is_a_load_error(
    fake_dists, run_python
):
    fake_dists.add(
        "missive-liar",
        {"missive.adapters": {"liar": "missive_liar"}},
        {
            "missive_liar": """
            from missive.plugins import hookimpl

            @hookimpl
            def missive_adapters():
                return {}
            """
        },
    )

    result = _python_with(
        fake_dists,
        "import missive.adapters\n"
        "try:\n"
        "    missive.adapters.load('liar')\n"
        "except missive.PluginLoadError as exc:\n"
        "    print(exc)\n",
        run_python,
    )

    assert "registered no adapter named 'liar'" in result.stdout, result.stderr


def test_documented_plugin_import_path_resolves_to_the_plugin_module(
    fake_dists, run_python
):
    fake_dists.add(
        "missive-carrier",
        {"missive.dlq": {"carrier": "missive_carrier"}},
        {
            "missive_carrier": """
            from missive.plugins import hookimpl

            class CarrierDLQ(dict):
                pass

            @hookimpl
            def missive_dlq_backends():
                return {"carrier": CarrierDLQ}
            """
        },
    )

    result = _python_with(
        fake_dists,
        "from missive.dlq.carrier import CarrierDLQ\n"
        "import missive.dlq\n"
        "print(CarrierDLQ is missive.dlq.load('carrier'))\n",
        run_python,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_import_path_of_a_missing_plugin_says_what_to_install(run_python):
    result = run_python(
        "from missive.plugins import PluginRegistry, use_registry\n"
        "with use_registry(PluginRegistry(discover=False)):\n"
        "    try:\n"
        "        from missive.dlq.sqlite import SQLiteDLQ\n"
        "    except ImportError as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ModuleNotFoundError")
    assert "pip install missive-sqlite-dlq" in result.stdout


def test_real_submodules_are_not_shadowed_by_the_plugin_finder():
    import missive.adapters.stdin as stdin_module

    assert stdin_module.StdinAdapter is StdinAdapter


def test_hand_registered_plugin_is_found_without_a_distribution():
    class Plugin:
        @hookimpl
        def missive_message_formats(self):
            return {"upper": missive.RawMessage}

    registry = PluginRegistry(discover=False)
    registry.register(Plugin())

    with use_registry(registry):
        assert missive.messages.load("upper") is missive.RawMessage
        assert missive.messages.names() == ["upper"]


def test_two_plugins_providing_one_name_is_a_duplicate_error():
    class One:
        @hookimpl
        def missive_message_formats(self):
            return {"fmt": missive.RawMessage}

    class Two:
        @hookimpl
        def missive_message_formats(self):
            return {"fmt": missive.JSONMessage}

    registry = PluginRegistry(discover=False)
    registry.register(One())
    registry.register(Two())

    with pytest.raises(missive.DuplicatePlugin, match="'fmt'"):
        registry.load("missive.messages", "fmt")


def test_plugins_cli_lists_from_metadata_alone(fake_dists, run_python):
    fake_dists.add(
        "missive-broken",
        {"missive.adapters": {"broken": "missive_broken"}},
        {"missive_broken": "open('/nonexistent/imported', 'w')\n"},
    )

    result = _python_with(
        fake_dists,
        "import sys, missive.cli\n"
        "code = missive.cli.main(['plugins', '--json'])\n"
        "print('IMPORTED', 'missive_broken' in sys.modules, code)\n",
        run_python,
    )

    out, imported = result.stdout.rsplit("IMPORTED", 1)
    rows = json.loads(out)
    assert {"kind": "adapter", "name": "broken"}.items() <= rows[0].items()
    assert imported.split() == ["False", "0"]


def test_plugins_check_reports_a_broken_plugin_and_exits_1(fake_dists, run_python):
    fake_dists.add(
        "missive-broken",
        {"missive.adapters": {"broken": "missive_broken"}},
        {"missive_broken": "import missing_dependency_of_broken\n"},
    )

    result = _python_with(
        fake_dists,
        "import sys, missive.cli\nsys.exit(missive.cli.main(['plugins', '--check']))",
        run_python,
    )

    assert result.returncode == 1
    broken = [line for line in result.stdout.splitlines() if "broken" in line]
    assert "missing_dependency_of_broken" in broken[0]
    stdin = [line for line in result.stdout.splitlines() if "stdin" in line]
    assert stdin[0].rstrip().endswith("ok")
