"""Core on its own: run by ``tox -e core``, where no plugin is installed."""

from __future__ import annotations

import os

import pytest

import missive.adapters
import missive.dlq
import missive.messages

pytestmark = pytest.mark.skipif(
    os.environ.get("MISSIVE_EXPECT_CORE_ONLY") != "1",
    reason="needs an environment with missive-core alone (tox -e core runs it)",
)


def test_only_cores_builtins_are_installed():
    assert missive.adapters.names() == ["stdin"]
    assert missive.messages.names() == ["dict", "json", "raw"]
    assert missive.dlq.names() == ["memory"]


def test_core_works_and_imports_nothing_optional(run_python):
    result = run_python(
        "import sys, missive, missive.adapters, missive.dlq, missive.messages\n"
        "p = missive.Processor()\n"
        "p.handle_for(lambda m: True)(lambda m, ctx: ctx.ack())\n"
        "with p.test_client() as c:\n"
        "    c.send(missive.messages.load('json')(b'{}'))\n"
        "missive.adapters.load('stdin'); missive.dlq.load('memory')\n"
        "optional = ('redis', 'hiredis', 'sqlite3', 'gunicorn', 'wsgiref')\n"
        "print(len(c.acked), sorted(m for m in sys.modules"
        " if m.split('.')[0] in optional or m.startswith('missive_')))\n"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1) == ["1", "[]\n"]


def test_documented_plugin_import_paths_say_what_to_install():
    with pytest.raises(ImportError, match="pip install missive-redis"):
        from missive.adapters.redis import RedisPubSubAdapter  # noqa: F401
    with pytest.raises(ImportError, match="pip install missive-sqlite-dlq"):
        from missive.dlq.sqlite import SQLiteDLQ  # noqa: F401
