"""Issue 7, test 3: Redis restarted under a running stream processor.

A private server with ``appendonly yes`` and ``appendfsync always`` is killed
(SIGKILL: no chance to save anything more) and started again on the same
port, several times while a processor works through numbered entries.  The
processor must reconnect by itself and lose nothing.  A consumer group
deleted under a running processor must stop it loudly instead.
"""

from __future__ import annotations

import re
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

GROUP = "restarts"
STREAM = "reliability:restarts"
#: The longest a reconnect may take once the server answers again.
RECONNECT_TIMEOUT = 30.0
#: How long each restart keeps the server down.
DOWN_SECONDS = 1.0


def _processor(
    url: str, tmp_path: Path, *, stream: str = STREAM
) -> subprocess.Popen[bytes]:
    return start_missive_run(
        "reliability_apps:stream_processor",
        "redis-streams",
        {
            "streams": stream,
            "group": GROUP,
            "consumer": "worker",
            "url": url,
            "batch_size": 50,
            "block_ms": 200,
            "read_timeout": 2,
            "reconnect_min_delay": 0.05,
            "reconnect_max_delay": 1,
        },
        env={
            "MISSIVE_REL_RECORD": str(tmp_path / "record"),
            "MISSIVE_REL_DLQ": str(tmp_path / "dlq.db"),
            "MISSIVE_REL_SLEEP": "0.001",
        },
        log=tmp_path / "processor.log",
    )


def test_processor_reconnects_after_each_redis_restart_and_loses_nothing(
    redis_factory: Any, tmp_path: Path, figures: Figures
) -> None:
    server: PersistentRedis = redis_factory(persistent=True)
    total, restarts = SCALE.restart_messages, SCALE.redis_restarts
    SQLiteDLQ(tmp_path / "dlq.db").close()
    record = Record(tmp_path / "record")
    setup = server.client()
    published = publish_numbered(setup, STREAM, range(total))
    setup.close()
    process = _processor(server.url, tmp_path)
    downtimes: list[float] = []
    reconnects: list[float] = []

    try:
        for index in range(restarts):
            # Restart at evenly spread points of progress.
            wait_for_progress(record, (index + 1) * total // (restarts + 2), process)
            killed_at = time.monotonic()
            server.kill()
            # The outage: a restart that loads a large AOF takes this long.
            time.sleep(DOWN_SECONDS)
            server.start()
            up_at = time.monotonic()
            downtimes.append(up_at - killed_at)
            handled_when_up = record.count("H")
            wait_for_progress(
                record, handled_when_up + 1, process, timeout=RECONNECT_TIMEOUT
            )
            reconnects.append(time.monotonic() - up_at)

        client = server.client()
        wait_until(
            lambda: (
                set(record.refresh().handled) >= set(published)
                and pending_count(client, STREAM, GROUP) == 0
            ),
            timeout=120,
            interval=0.1,
        )
        client.close()
        exit_status = stop_process(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    log = (tmp_path / "processor.log").read_text(errors="replace")
    handled = record.refresh().handled
    lost = set(published) - set(handled) - set(dead_letter_ids(tmp_path / "dlq.db"))
    duplicates = sum(count - 1 for count in handled.values())
    gaps = [float(s) for s in re.findall(r"reconnected to \S+ after ([0-9.]+) s", log)]
    figures["published"] = total
    figures["restarts"] = restarts
    figures["lost"] = len(lost)
    figures["duplicates"] = duplicates
    figures["server_down_seconds"] = [round(s, 3) for s in downtimes]
    figures["reconnect_seconds_after_server_up"] = [round(s, 3) for s in reconnects]
    figures["gaps_logged_by_adapter_seconds"] = gaps

    assert lost == set()
    assert exit_status == 0, log[-3000:]
    assert len(gaps) == restarts
    assert log.count("lost the connection to") == restarts
    assert max(reconnects) < RECONNECT_TIMEOUT


@pytest.mark.parametrize("removal", ["group-destroyed", "stream-deleted"])
def test_a_group_removed_under_a_running_processor_stops_it_loudly(
    removal: str,
    shared_private_redis: PersistentRedis,
    tmp_path: Path,
    figures: Figures,
) -> None:
    stream = f"reliability:group-lost:{time.time_ns()}"
    client = shared_private_redis.client()
    SQLiteDLQ(tmp_path / "dlq.db").close()
    record = Record(tmp_path / "record")
    publish_numbered(client, stream, range(20))
    process = _processor(shared_private_redis.url, tmp_path, stream=stream)
    try:
        # All handled: the processor now waits in a blocking read.
        wait_for_progress(record, 20, process)
        removed_at = time.monotonic()
        if removal == "group-destroyed":
            client.xgroup_destroy(stream, GROUP)
        else:
            client.delete(stream)
        exit_status = process.wait(timeout=30)
        stopped_after = time.monotonic() - removed_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        groups = client.xinfo_groups(stream) if client.exists(stream) else []
        client.delete(stream)
        client.close()

    log = (tmp_path / "processor.log").read_text(errors="replace")
    figures["removal"] = removal
    figures["seconds_to_stop"] = round(stopped_after, 2)

    assert exit_status == 1
    assert "CRITICAL missive_redis.streams: consumer group restarts vanished" in log
    assert "missive: error: consumer group 'restarts' no longer exists" in log
    assert "Traceback" not in log
    assert groups == [], "the adapter re-created the group"
