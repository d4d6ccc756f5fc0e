"""Issue 7, test 7: many processes write one SQLite DLQ while it is read.

Eight writer processes store dead letters as fast as they can, every write
its own committed transaction, while a reader runs ``missive dlq list`` and
``missive dlq replay`` (with a processor that fails again, so that replay
writes too) in a loop.  No write may fail with "database is locked", every
row must be there exactly once, and the file must pass ``integrity_check``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from reliability_testing import HERE, SCALE, Figures, percentile

from missive_sqlite_dlq import SQLiteDLQ

REPLAY_PROCESSOR = """
from missive import Processor

processor = Processor()


@processor.handle_for(lambda message: True)
def fail_again(message, ctx):
    raise RuntimeError("still failing")
"""

#: The longest the whole run may take.
RUN_TIMEOUT = 600.0


def _missive(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "missive"
    return subprocess.run(
        [str(script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_eight_writers_and_a_reader_never_see_a_locked_database(
    tmp_path: Path, figures: Figures
) -> None:
    db_path = tmp_path / "dlq.db"
    SQLiteDLQ(db_path).close()
    (tmp_path / "replay_target.py").write_text(REPLAY_PROCESSOR)
    go = tmp_path / "go"
    processes, writes = SCALE.sqlite_processes, SCALE.sqlite_writes
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "sqlite_writer.py"),
                str(db_path),
                f"writer{index}",
                str(writes),
                str(go),
                str(tmp_path / f"latencies-{index}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"writer-{index}.log").open("wb"),
        )
        for index in range(processes)
    ]
    reader_outputs: list[str] = []
    reads = replays = 0
    try:
        go.touch()
        started = time.monotonic()
        deadline = started + RUN_TIMEOUT
        # Read and replay until every writer is done.
        while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
            listed = _missive(
                "dlq", "list", db_path, "--newer-than", "5s", cwd=tmp_path
            )
            reads += 1
            reader_outputs.append(listed.stderr)
            assert listed.returncode == 0, listed.stderr
            ids = [line.split()[0] for line in listed.stdout.splitlines()[1:6]]
            if ids:
                replayed = _missive(
                    "dlq",
                    "replay",
                    db_path,
                    *ids,
                    "--processor",
                    "replay_target:processor",
                    cwd=tmp_path,
                )
                replays += 1
                reader_outputs.append(replayed.stdout + replayed.stderr)
                assert replayed.returncode == 3, replayed.stdout + replayed.stderr
        statuses = [w.wait(timeout=60) for w in writers]
        elapsed = time.monotonic() - started
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait(timeout=10)

    writer_logs = [(tmp_path / f"writer-{i}.log").read_text() for i in range(processes)]
    latencies = [
        float(line)
        for index in range(processes)
        for line in (tmp_path / f"latencies-{index}").read_text().split()
    ]
    dlq: SQLiteDLQ[object] = SQLiteDLQ(db_path, create=False)  # type: ignore[type-var]
    rows = len(dlq)
    integrity = dlq.integrity_check()
    dlq.close()
    total = processes * writes
    figures["processes"] = processes
    figures["writes_per_process"] = writes
    figures["rows"] = rows
    figures["seconds"] = round(elapsed, 2)
    figures["writes_per_second"] = round(total / elapsed)
    figures["p50_write_ms"] = round(percentile(latencies, 0.50) * 1000, 2)
    figures["p99_write_ms"] = round(percentile(latencies, 0.99) * 1000, 2)
    figures["max_write_ms"] = round(max(latencies) * 1000, 2)
    figures["reader_lists"] = reads
    figures["reader_replays"] = replays
    figures["synchronous"] = "FULL"

    assert statuses == [0] * processes, writer_logs
    assert not any("locked" in text for text in writer_logs + reader_outputs)
    assert len(latencies) == total
    assert rows == total
    assert integrity == ["ok"]
    assert reads > 0 and replays > 0
