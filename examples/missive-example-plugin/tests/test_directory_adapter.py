"""What the dirwatch adapter does beyond the conformance kit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from missive_dirwatch import DirectoryAdapter, drop

import missive.adapters
from missive import HandlingContext, Processor, RawMessage
from missive.dlq.memory import MemoryDLQ


def recording_processor(
    decide: str = "ack",
) -> tuple[Processor[Any], list[RawMessage]]:
    processor: Processor[Any] = Processor()
    seen: list[RawMessage] = []

    @processor.handle_for(lambda message: True)
    def record(message: RawMessage, ctx: HandlingContext[Any]) -> None:
        seen.append(message)
        if decide == "ack":
            ctx.ack()
        elif decide == "nack":
            ctx.nack()
        else:
            raise RuntimeError("handler failed on purpose")

    return processor, seen


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_the_entry_point_finds_the_adapter_by_name() -> None:
    assert missive.adapters.load("dirwatch") is DirectoryAdapter
    assert "dirwatch" in missive.adapters.names()


def test_once_handles_every_file_oldest_first_then_returns(tmp_path: Path) -> None:
    first = drop(tmp_path, b"one")
    second = drop(tmp_path, b"two")
    processor, seen = recording_processor()

    DirectoryAdapter(RawMessage, processor, tmp_path, once=True).run()

    assert [m.raw_data for m in seen] == [b"one", b"two"]
    assert [m.message_id for m in seen] == [first.encode(), second.encode()]
    assert names(tmp_path / "done") == sorted([first, second])
    assert names(tmp_path / "incoming") == []


def test_hidden_files_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / ".half-written.tmp").write_bytes(b"partial")
    processor, seen = recording_processor()

    DirectoryAdapter(RawMessage, processor, tmp_path, once=True).run()

    assert seen == []
    assert names(tmp_path / "incoming") == [".half-written.tmp"]


def test_a_file_always_nacked_is_dead_lettered_after_max_deliveries(
    tmp_path: Path,
) -> None:
    name = drop(tmp_path, b"poison")
    processor, seen = recording_processor("nack")
    dlq: MemoryDLQ[RawMessage] = MemoryDLQ()
    processor.set_dlq(dlq)
    adapter = DirectoryAdapter(
        RawMessage, processor, tmp_path, retry_delay=0, max_deliveries=3, once=True
    )

    adapter.run()

    assert [m.attributes["delivery_count"] for m in seen] == [1, 2, 3]
    [(message, reason)] = dlq.values()
    assert message.raw_data == b"poison"
    assert reason == "delivered 4 times, more than max_deliveries=3"
    assert names(tmp_path / "done") == [name]


def test_a_failure_without_a_dlq_moves_the_file_to_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = drop(tmp_path, b"breaks")
    processor, _ = recording_processor("raise")

    DirectoryAdapter(RawMessage, processor, tmp_path, once=True).run()

    assert names(tmp_path / "failed") == [name]
    assert names(tmp_path / "done") == []
    assert "no DLQ is set" in caplog.text


def test_a_file_over_max_bytes_moves_to_failed_unread(tmp_path: Path) -> None:
    name = drop(tmp_path, b"x" * 11)
    processor, seen = recording_processor()

    DirectoryAdapter(RawMessage, processor, tmp_path, max_bytes=10, once=True).run()

    assert seen == []
    assert names(tmp_path / "failed") == [name]


def test_files_left_in_processing_by_a_dead_process_are_delivered_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "processing").mkdir()
    (tmp_path / "processing" / "orphan").write_bytes(b"left behind")
    processor, seen = recording_processor()

    DirectoryAdapter(RawMessage, processor, tmp_path, once=True).run()

    assert [m.raw_data for m in seen] == [b"left behind"]
    assert names(tmp_path / "done") == ["orphan"]


def test_drop_refuses_names_that_are_not_plain_visible_files(tmp_path: Path) -> None:
    for bad in (".hidden", "a/b"):
        with pytest.raises(ValueError, match="plain, visible file name"):
            drop(tmp_path, b"x", name=bad)


def test_bad_options_are_refused_at_construction(tmp_path: Path) -> None:
    processor, _ = recording_processor()

    with pytest.raises(ValueError, match="on_nack"):
        DirectoryAdapter(RawMessage, processor, tmp_path, on_nack="drop")
    with pytest.raises(TypeError, match="unknown option"):
        DirectoryAdapter.from_options(RawMessage, processor, {"colour": "red"})
    with pytest.raises(TypeError, match="directory"):
        DirectoryAdapter.from_options(RawMessage, processor, {})


def test_missive_run_drives_the_adapter_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "orders.py").write_text(
        "from missive import Processor\n"
        "processor = Processor()\n"
        "@processor.handle_for(lambda m: m.get_json()['type'] == 'order')\n"
        "def record(message, ctx):\n"
        "    print('order', message.get_json()['id'], flush=True)\n"
        "    ctx.ack()\n"
    )
    spool = tmp_path / "spool"
    drop(spool, b'{"type": "order", "id": 7}')

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "missive",
            "run",
            "orders:processor",
            "--adapter",
            "dirwatch",
            "--message",
            "json",
            "-o",
            f"directory={spool}",
            "-o",
            "once=true",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "order 7\n"
    assert len(names(spool / "done")) == 1
