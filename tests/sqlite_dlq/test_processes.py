"""Several real processes writing one file, forked and killed writers."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from missive.messages import Message, RawMessage
from missive_sqlite_dlq import SQLiteDLQ

from .conftest import PROCESS_TIMEOUT, helper_command

WRITERS = 4
WRITES_PER_WRITER = 1000
KILL_ROUNDS = 12


def test_four_processes_write_a_thousand_each_and_nothing_is_lost(
    tmp_path: Path, db_path: Path
) -> None:
    SQLiteDLQ(db_path).close()
    go = tmp_path / "go"
    logs = [tmp_path / f"writer-{n}.out" for n in range(WRITERS)]
    writers = []
    for number, log in enumerate(logs):
        with open(log, "w") as output:
            writers.append(
                subprocess.Popen(
                    helper_command(
                        "_writer.py", db_path, f"w{number}", str(WRITES_PER_WRITER), go
                    ),
                    stdout=output,
                    stderr=subprocess.PIPE,
                )
            )

    go.touch()
    failures = []
    for writer in writers:
        try:
            _, stderr = writer.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            writer.kill()
            _, stderr = writer.communicate()
        if writer.returncode != 0:
            failures.append(stderr.decode(errors="replace"))

    assert failures == []
    for log in logs:
        assert len(log.read_text().split()) == WRITES_PER_WRITER
    dlq: SQLiteDLQ[Message] = SQLiteDLQ(db_path)
    assert dlq.integrity_check() == ["ok"]
    assert len(dlq) == WRITERS * WRITES_PER_WRITER
    expected = {
        f"w{writer}-{number}".encode()
        for writer in range(WRITERS)
        for number in range(WRITES_PER_WRITER)
    }
    assert set(dlq) == expected
    for message_id in random.Random(5).sample(sorted(expected), 50):
        message, _ = dlq[message_id]
        assert message.raw_data == b"payload " + message_id


def test_writer_killed_with_sigkill_leaves_every_reported_write(
    db_path: Path,
) -> None:
    rng = random.Random(20240601)
    reported: list[str] = []

    for round_number in range(KILL_ROUNDS):
        writer = subprocess.Popen(
            helper_command("_writer.py", db_path, f"k{round_number}", "100000"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert writer.stdout is not None
        lines: list[bytes] = []
        reader = threading.Thread(
            target=lambda out=writer.stdout, into=lines: into.extend(out)
        )
        reader.start()

        # Kill it at a random moment once it is writing.
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while not lines and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.15))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=PROCESS_TIMEOUT)
        reader.join(timeout=PROCESS_TIMEOUT)

        assert writer.returncode == -signal.SIGKILL
        assert not reader.is_alive()
        assert lines, f"round {round_number}: the writer reported no write"
        reported.extend(line.decode().strip() for line in lines if line.endswith(b"\n"))

        dlq: SQLiteDLQ[Message] = SQLiteDLQ(db_path)
        assert dlq.integrity_check() == ["ok"]
        stored = set(dlq)
        missing = [
            message_id for message_id in reported if message_id.encode() not in stored
        ]
        assert missing == [], f"round {round_number}: committed writes lost"
        dlq.close()

    dlq = SQLiteDLQ(db_path)
    for message_id in rng.sample(reported, 20):
        message, _ = dlq[message_id.encode()]
        assert message.raw_data == b"payload " + message_id.encode()


def _write_in_child(dlq: SQLiteDLQ[Message], prefix: str, count: int) -> None:
    for number in range(count):
        message_id = f"{prefix}-{number}".encode()
        dlq[message_id] = (RawMessage(message_id, message_id), "from a child")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_children_write_through_the_parents_instance(
    dlq: SQLiteDLQ[Message],
) -> None:
    dlq[b"parent-before"] = (RawMessage(b"x", b"parent-before"), "opened here")
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_write_in_child, args=(dlq, f"child{n}", 200))
        for n in range(2)
    ]

    for child in children:
        child.start()
    _write_in_child(dlq, "parent", 200)
    for child in children:
        child.join(timeout=PROCESS_TIMEOUT)

    assert [child.exitcode for child in children] == [0, 0]
    assert len(dlq) == 1 + 3 * 200
    assert b"child1-199" in dlq
    assert dlq.integrity_check() == ["ok"]
