"""The stdin adapter, over real pipes and as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import missive
from missive.adapters.stdin import StdinAdapter

REPO = Path(__file__).resolve().parents[2]


def test_docs_quick_start_runs_verbatim_from_a_shell_pipe():
    result = subprocess.run(
        "printf 'Hello\\n' | python3 hello_processor.py",
        shell=True,
        cwd=REPO / "examples",
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        },
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello whoever you are\n"


def test_each_line_of_a_real_pipe_is_one_message_without_its_newline():
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as writer:
        writer.write(b"first\nsecond\r\n\nlast-without-newline")
    processor = missive.Processor()
    received = []

    @processor.handle_for(lambda m: True)
    def record(message, ctx):
        received.append(message.raw_data)
        ctx.ack()

    with os.fdopen(read_fd, "rb") as reader:
        adapter = StdinAdapter(missive.RawMessage, processor, reader)
        adapter.run()

    assert received == [b"first", b"second", b"", b"last-without-newline"]
    assert adapter.acked_count == 4


def test_stop_from_another_thread_ends_the_run_once_the_awaited_line_is_handled():
    read_fd, write_fd = os.pipe()
    processor = missive.Processor()
    received = []
    processor.handle_for(lambda m: True)(
        lambda message, ctx: (received.append(message.raw_data), ctx.ack())
    )
    reader = os.fdopen(read_fd, "rb")
    adapter = StdinAdapter(missive.RawMessage, processor, reader)
    runner = threading.Thread(target=adapter.run)

    with os.fdopen(write_fd, "wb", buffering=0) as writer:
        runner.start()
        writer.write(b"one\n")
        _wait_for(lambda: received == [b"one"])
        adapter.stop()
        # The adapter was already blocked reading: that line is still handled.
        writer.write(b"two\n")
        runner.join(timeout=10)
        writer.write(b"three\n")

    reader.close()
    assert not runner.is_alive()
    assert received == [b"one", b"two"]


def test_failed_line_goes_to_the_dlq_and_the_run_goes_on():
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as writer:
        writer.write(b"good\nbad\ngood\n")
    processor = missive.Processor()
    processor.handle_for(lambda m: m.raw_data == b"good")(lambda m, ctx: ctx.ack())
    dlq = {}
    processor.set_dlq(dlq)

    with os.fdopen(read_fd, "rb") as reader:
        adapter = StdinAdapter(missive.RawMessage, processor, reader)
        adapter.run()

    assert [reason for _, reason in dlq.values()] == ["no matching handlers"]
    assert adapter.acked_count == 3


SLOW_PROCESSOR = textwrap.dedent(
    """
    import sys, time
    import missive
    from missive.adapters.stdin import StdinAdapter

    processor = missive.Processor()

    @processor.handle_for(lambda m: True)
    def slow(message, ctx):
        print("start", message.raw_data.decode(), flush=True)
        time.sleep(float(sys.argv[1]))
        print("done", message.raw_data.decode(), flush=True)
        ctx.ack()

    @processor.after_processing
    def bye(ctx):
        print("after_processing", flush=True)

    StdinAdapter(missive.RawMessage, processor).run()
    """
)


@pytest.fixture
def slow_processor(tmp_path):
    script = tmp_path / "slow_processor.py"
    script.write_text(SLOW_PROCESSOR)

    def start(delay: float) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(script), str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start


def test_sigterm_while_waiting_for_input_exits_cleanly(slow_processor):
    process = slow_processor(0)
    process.stdin.write("a\n")
    process.stdin.flush()
    assert process.stdout.readline() == "start a\n"
    assert process.stdout.readline() == "done a\n"

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)

    assert process.returncode == 0, err
    assert out == "after_processing\n"


def test_sigterm_during_a_message_lets_it_finish_and_takes_no_more(slow_processor):
    process = slow_processor(1.0)
    process.stdin.write("a\nb\n")
    process.stdin.flush()
    assert process.stdout.readline() == "start a\n"

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)

    assert process.returncode == 0, err
    assert out == "done a\nafter_processing\n"


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
