"""Issue 7, test 2: a SIGKILL on either side of the DLQ commit loses nothing.

The processor kills itself (SIGKILL, once per message) at the chosen point
for each poisoned entry: after the handler failed but before the DLQ write,
or after the DLQ write committed but before the XACK.  Restarted each time,
it must end with every entry handled or dead-lettered, exactly one DLQ row
per transport id, and an empty pending list.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from reliability_testing import (
    Figures,
    PersistentRedis,
    Record,
    dead_letter_ids,
    pending_count,
    publish_numbered,
    start_missive_run,
    stop_process,
    wait_until,
)

from missive_sqlite_dlq import SQLiteDLQ

GROUP = "kill-windows"
MESSAGES = 60
POISONED = frozenset({3, 17, 18, 40, 59})


@pytest.mark.parametrize("kill_point", ["before-dlq-commit", "after-dlq-commit"])
def test_kill_around_the_dlq_commit_loses_nothing_and_stores_each_entry_once(
    kill_point: str,
    shared_private_redis: PersistentRedis,
    tmp_path: Path,
    figures: Figures,
) -> None:
    client = shared_private_redis.client()
    stream = f"reliability:kill-window:{kill_point}:{time.time_ns()}"
    dlq_path = tmp_path / "dlq.db"
    SQLiteDLQ(dlq_path).close()
    record = Record(tmp_path / "record")
    published = publish_numbered(
        client, stream, range(MESSAGES), poison=lambda n: n in POISONED
    )
    poisoned = {m for m, n in published.items() if n in POISONED}
    lives: list[int] = []
    process: subprocess.Popen[bytes] | None = None

    def start() -> subprocess.Popen[bytes]:
        return start_missive_run(
            "reliability_apps:stream_processor",
            "redis-streams",
            {
                "streams": stream,
                "group": GROUP,
                "consumer": "worker",
                "url": shared_private_redis.url,
                "batch_size": 10,
                "block_ms": 100,
            },
            env={
                "MISSIVE_REL_RECORD": str(record.path),
                "MISSIVE_REL_DLQ": str(dlq_path),
                "MISSIVE_REL_KILL": kill_point,
            },
            log=tmp_path / "processor.log",
        )

    def finished() -> bool:
        done = set(record.refresh().handled) | set(dead_letter_ids(dlq_path))
        return done >= set(published) and pending_count(client, stream, GROUP) == 0

    try:
        # Restart after each self-kill until everything is settled.
        for _ in range(len(POISONED) + 1):
            process = start()
            wait_until(
                lambda: process.poll() is not None or finished(),  # noqa: B023
                timeout=60,
                interval=0.05,
            )
            lives.append(process.returncode if process.poll() is not None else 0)
            if process.poll() is None:
                break
        assert process is not None
        exit_status = stop_process(process)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        client.delete(stream)
        client.close()

    handled = record.refresh().handled
    dead = dead_letter_ids(dlq_path)
    kills = record.of("K")
    connection = sqlite3.connect(dlq_path)
    rows_per_transport_id = connection.execute(
        "SELECT transport_id, count(*) FROM dead_letters GROUP BY transport_id"
    ).fetchall()
    connection.close()
    figures["kill_point"] = kill_point
    figures["self_kills"] = len(kills)
    figures["lost"] = len(set(published) - set(handled) - set(dead))
    figures["dlq_rows"] = len(dead)
    figures["dlq_attempts"] = sorted(attempts for _, attempts in dead.values())

    assert len(kills) == len(POISONED)
    assert lives == [-9] * len(POISONED) + [0]
    assert exit_status == 0
    assert set(published) - set(handled) - set(dead) == set()
    assert set(dead) == poisoned
    assert all(count == 1 for _, count in rows_per_transport_id)
    assert len(rows_per_transport_id) == len(POISONED)
    # Killed after the commit, an entry is stored again on redelivery: the
    # same row, one more attempt.  A kill also repeats dead letters whose
    # acks were still waiting in the batch, never more than once per kill.
    attempts = [count for _, count in dead.values()]
    assert all(1 <= count <= 1 + len(kills) for count in attempts)
    if kill_point == "after-dlq-commit":
        assert all(count >= 2 for count in attempts)
