"""A third-party distribution, pip-installed from its wheel, found by name.

``missive-listfeed`` (next to this file) declares an adapter and an observer
through entry points and uses only Missive's public API.  The test
environment installs it like any other distribution; nothing here registers
it by hand.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import missive
import missive.adapters


def test_the_distribution_is_installed_not_registered_by_hand():
    dist = importlib.metadata.distribution("missive-listfeed")

    names = {ep.name for ep in dist.entry_points if ep.group == "missive.adapters"}
    assert names == {"listfeed"}


def test_load_finds_the_third_party_adapter_by_name():
    adapter_cls = missive.adapters.load("listfeed")

    assert adapter_cls.__name__ == "ListFeedAdapter"
    assert adapter_cls.__module__ == "missive_listfeed"
    assert "listfeed" in missive.adapters.names()


def test_the_third_party_adapter_runs_a_processor_and_its_observer_counts():
    from missive_listfeed.counter import outcomes

    before = outcomes.copy()
    processor = missive.Processor()
    processor.handle_for(lambda m: m.raw_data == b"yes")(lambda m, ctx: ctx.ack())
    processor.set_dlq({})
    adapter_cls = missive.adapters.load("listfeed")

    adapter = adapter_cls(missive.RawMessage, processor, [b"yes", b"no"])
    adapter.run()

    assert adapter.acked == [b"yes", b"no"]
    assert outcomes["acked"] - before["acked"] == 1
    assert outcomes["dead-lettered"] - before["dead-lettered"] == 1


def test_missive_run_switches_to_the_third_party_adapter_without_code_changes(
    tmp_path,
):
    (tmp_path / "app.py").write_text(
        "import missive\n"
        "processor = missive.Processor()\n"
        "@processor.handle_for(lambda m: True)\n"
        "def handle(message, ctx):\n"
        "    print('handled', message.raw_data.decode())\n"
        "    ctx.ack()\n"
    )

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "missive",
            "run",
            "app:processor",
            "--adapter",
            "listfeed",
            "-o",
            "payloads=a,b",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "handled a",
        "listfeed acked a",
        "handled b",
        "listfeed acked b",
    ]


def test_plugins_command_lists_the_third_party_distribution():
    result = subprocess.run(
        [sys.executable, "-m", "missive", "plugins", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["adapter", "listfeed", "missive-listfeed", "1.0.0", "ok"] in rows
    assert ["observer", "listfeed-counter", "missive-listfeed", "1.0.0", "ok"] in rows
