"""Issue 7, test 1: a stream processor SIGKILLed again and again loses nothing.

Numbered entries are published up front; a real ``missive run --adapter
redis-streams`` process is killed with SIGKILL at random points of its
progress and started again, with the same consumer name or a new one each
time.  Afterwards every number must have been handled or dead-lettered, and
the group's pending list must empty shortly after the last restart.
"""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_testing import (
    SCALE,
    Figures,
    PersistentRedis,
    Record,
    dead_letter_ids,
    pending_count,
    publish_numbered,
    start_missive_run,
    stop_process,
    wait_for_progress,
    wait_until,
)

from missive_sqlite_dlq import SQLiteDLQ

GROUP = "crash-loop"
BATCH_SIZE = 50
POISON_EVERY = 500
#: How long the pending list may take to empty after the last restart.
DRAIN_TIMEOUT = 120.0


def _processor(
    server: PersistentRedis,
    stream: str,
    consumer: str,
    tmp_path: Path,
    *,
    claim_idle_ms: int,
) -> subprocess.Popen[bytes]:
    return start_missive_run(
        "reliability_apps:stream_processor",
        "redis-streams",
        {
            "streams": stream,
            "group": GROUP,
            "consumer": consumer,
            "url": server.url,
            "batch_size": BATCH_SIZE,
            "block_ms": 200,
            "claim_idle_ms": claim_idle_ms,
            "claim_interval_ms": 200,
            "ack_delay_ms": 200,
            "reconnect_max_delay": 1,
        },
        env={
            "MISSIVE_REL_RECORD": str(tmp_path / "record"),
            "MISSIVE_REL_DLQ": str(tmp_path / "dlq.db"),
            "MISSIVE_REL_CONSUMER": consumer,
            "MISSIVE_REL_SLEEP": "0.0005",
        },
        log=tmp_path / "processor.log",
    )


@pytest.mark.parametrize("names", ["same-name", "new-names"])
def test_sigkill_loop_loses_nothing_and_the_pending_list_drains(
    names: str,
    shared_private_redis: PersistentRedis,
    tmp_path: Path,
    figures: Figures,
) -> None:
    server = shared_private_redis
    client = server.client()
    stream = f"reliability:crash:{names}:{time.time_ns()}"
    rng = random.Random(f"{names}-{SCALE.name}")
    total, kills = SCALE.crash_messages, SCALE.crash_kills
    SQLiteDLQ(tmp_path / "dlq.db").close()
    record = Record(tmp_path / "record")
    # Orphaned entries of a killed consumer name are claimed after this idle.
    claim_idle_ms = 60_000 if names == "same-name" else 1_000
    published = publish_numbered(
        client, stream, range(total), poison=lambda n: n % POISON_EVERY == 7
    )
    poisoned = {m for m, n in published.items() if n % POISON_EVERY == 7}
    consumers: list[str] = []
    processes: list[subprocess.Popen[bytes]] = []

    def start(index: int) -> subprocess.Popen[bytes]:
        name = "worker" if names == "same-name" else f"worker-{index}"
        consumers.append(name)
        process = _processor(
            server, stream, name, tmp_path, claim_idle_ms=claim_idle_ms
        )
        processes.append(process)
        return process

    try:
        # Kill at random points of progress, leaving work for later kills.
        process = start(0)
        kill_points: list[int] = []
        for index in range(kills):
            remaining = total - len(record.refresh().handled)
            step = rng.randint(1, max(1, remaining // (kills - index + 1)))
            wait_for_progress(record, record.count("H") + step, process)
            process.kill()
            process.wait(timeout=10)
            kill_points.append(record.count("H"))
            process = start(index + 1)
        last_restart = time.monotonic()

        def drained() -> bool:
            done = set(record.refresh().handled) | set(
                dead_letter_ids(tmp_path / "dlq.db")
            )
            return done >= set(published) and pending_count(client, stream, GROUP) == 0

        wait_until(drained, timeout=DRAIN_TIMEOUT, interval=0.1)
        drain_seconds = time.monotonic() - last_restart
        exit_status = stop_process(process)
    finally:
        for started in processes:
            if started.poll() is None:
                started.kill()
                started.wait(timeout=10)
        client.delete(stream)
        client.close()

    handled = record.refresh().handled
    dead = dead_letter_ids(tmp_path / "dlq.db")
    lost = set(published) - set(handled) - set(dead)
    duplicates = sum(count - 1 for count in handled.values())
    over_delivered = {m for m, (reason, _) in dead.items() if "delivered" in reason}
    figures["consumer_names"] = names
    figures["published"] = total
    figures["kills"] = kills
    figures["lost"] = len(lost)
    figures["duplicates"] = duplicates
    figures["duplicates_per_kill"] = round(duplicates / kills, 1)
    figures["dead_lettered"] = len(dead)
    figures["dead_lettered_for_max_deliveries"] = len(over_delivered)
    figures["drain_seconds_after_last_restart"] = round(drain_seconds, 2)
    figures["kill_points_handled_lines"] = kill_points

    assert lost == set()
    assert exit_status == 0, _tail(tmp_path / "processor.log")
    assert set(dead) - over_delivered == poisoned
    assert not poisoned & set(handled)
    assert not set(handled) & set(dead) - over_delivered
    # Each kill can only repeat what was handled since the last ack flush.
    assert duplicates <= kills * BATCH_SIZE
    assert len(set(consumers)) == (1 if names == "same-name" else kills + 1)


def _tail(path: Path, size: int = 4000) -> Any:
    return path.read_text(errors="replace")[-size:]
