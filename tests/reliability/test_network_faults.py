"""Issue 7, test 4: network faults between a stream processor and Redis.

The processor reaches Redis through :class:`fault_proxy.FaultProxy` while a
publisher adds numbered entries directly, at a steady rate.  The link gets
added latency, then a black hole, then connection resets.  At-least-once
must hold (every entry handled), the processor's memory must stay bounded,
and progress must resume after each fault.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fault_proxy import FaultProxy
from reliability_testing import (
    SCALE,
    Figures,
    PersistentRedis,
    Record,
    pending_count,
    rss_kib,
    start_missive_run,
    stop_process,
    wait_for_progress,
    wait_until,
)

from missive_sqlite_dlq import SQLiteDLQ

GROUP = "faults"
#: Entries per second the publisher adds.
RATE = 200
#: The adapter's read timeout: a silent link is declared dead after
#: ``BLOCK_MS`` plus this.
READ_TIMEOUT = 2.0
BLOCK_MS = 500
#: Growth of the processor's resident memory allowed over the run, in KiB.
MEMORY_BOUND_KIB = 40 * 1024


class _Publisher(threading.Thread):
    """Adds numbered entries at :data:`RATE` per second until stopped."""

    def __init__(self, server: PersistentRedis, stream: str, limit: int) -> None:
        super().__init__(name="publisher", daemon=True)
        self.client = server.client()
        self.stream = stream
        self.limit = limit
        self.published: dict[str, int] = {}
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            for number in range(self.limit):
                if self.stopped.wait(
                    max(0.0, started + number / RATE - time.monotonic())
                ):
                    return
                entry_id = self.client.xadd(self.stream, {"data": b"n-%d" % number})
                self.published[f"{self.stream}/{entry_id.decode()}"] = number
        except BaseException as exc:
            self.error = exc
        finally:
            self.client.close()


def test_latency_black_hole_and_resets_lose_nothing_and_progress_resumes(
    shared_private_redis: PersistentRedis, tmp_path: Path, figures: Figures
) -> None:
    stream = f"reliability:faults:{time.time_ns()}"
    proxy = FaultProxy(shared_private_redis.port).start()
    SQLiteDLQ(tmp_path / "dlq.db").close()
    record = Record(tmp_path / "record")
    log_path = tmp_path / "processor.log"
    publisher = _Publisher(shared_private_redis, stream, limit=100_000)
    process = start_missive_run(
        "reliability_apps:stream_processor",
        "redis-streams",
        {
            "streams": stream,
            "group": GROUP,
            "consumer": "worker",
            "url": proxy.url,
            "batch_size": 20,
            "block_ms": BLOCK_MS,
            "read_timeout": READ_TIMEOUT,
            "connect_timeout": READ_TIMEOUT,
            # A command held by the black hole may run after the heal and
            # deliver entries nobody reads: they are claimed after this.
            "claim_idle_ms": 3_000,
            "claim_interval_ms": 500,
            "reconnect_min_delay": 0.05,
            "reconnect_max_delay": 1,
        },
        env={
            "MISSIVE_REL_RECORD": str(record.path),
            "MISSIVE_REL_DLQ": str(tmp_path / "dlq.db"),
            "MISSIVE_REL_SLEEP": "0.001",
        },
        log=log_path,
    )
    memory: list[int] = []

    def recovery_seconds(timeout: float = 30) -> float:
        """Seconds until an entry published from now on is handled.

        Entries fetched before a fault may still be handled after it, so
        only a newer one shows that the link works again.
        """
        started = time.monotonic()
        newest = len(publisher.published)
        wait_until(
            lambda: any(
                int(payload[2:]) >= newest
                for payload in record.refresh().handled_payloads[-50:]
            ),
            timeout=timeout,
            interval=0.01,
        )
        memory.append(rss_kib(process.pid))
        return time.monotonic() - started

    def lost_count() -> int:
        return log_path.read_text(errors="replace").count("lost the connection")

    phase = SCALE.fault_seconds / 2
    try:
        wait_until(lambda: record.count("R") == 1, timeout=30)
        publisher.start()
        wait_for_progress(record, 100, process)
        memory.append(baseline := rss_kib(process.pid))

        # Latency: slower, but moving.
        proxy.set_latency(0.02)
        before = record.count("H")
        latency_end = time.monotonic() + phase
        wait_until(lambda: time.monotonic() > latency_end, timeout=phase + 5)
        handled_under_latency = record.count("H") - before
        proxy.set_latency(0.0)

        # Black hole: detected by the read timeout, then healed.
        losses = lost_count()
        with proxy.black_holed():
            holed_at = time.monotonic()
            wait_until(lambda: lost_count() > losses, timeout=BLOCK_MS / 1000 + 30)
            detected = time.monotonic() - holed_at
            heal_at = holed_at + SCALE.black_hole_seconds
            wait_until(lambda: time.monotonic() >= heal_at, timeout=60)
            memory.append(rss_kib(process.pid))
        recovered_from_black_hole = recovery_seconds()

        # Resets: the peer sees RST on every connection.
        reset_recoveries = []
        for _ in range(SCALE.resets):
            assert proxy.reset_all() > 0
            reset_recoveries.append(recovery_seconds())

        publisher.stopped.set()
        publisher.join(10)
        client = shared_private_redis.client()
        wait_until(
            lambda: (
                set(record.refresh().handled) >= set(publisher.published)
                and pending_count(client, stream, GROUP) == 0
            ),
            timeout=60,
            interval=0.1,
        )
        exit_status = stop_process(process)
    finally:
        publisher.stopped.set()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        proxy.close()
        cleanup = shared_private_redis.client()
        cleanup.delete(stream)
        cleanup.close()

    handled = record.refresh().handled
    lost = set(publisher.published) - set(handled)
    figures["published"] = len(publisher.published)
    figures["lost"] = len(lost)
    figures["duplicates"] = sum(count - 1 for count in handled.values())
    figures["handled_under_20ms_latency"] = handled_under_latency
    figures["black_hole_seconds"] = SCALE.black_hole_seconds
    figures["seconds_to_detect_black_hole"] = round(detected, 2)
    figures["seconds_to_progress_after_heal"] = round(recovered_from_black_hole, 2)
    figures["seconds_to_progress_after_each_reset"] = [
        round(s, 3) for s in reset_recoveries
    ]
    figures["rss_baseline_kib"] = baseline
    figures["rss_max_kib"] = max(memory)

    assert publisher.error is None
    assert lost == set()
    assert exit_status == 0
    assert handled_under_latency > 0
    assert detected < BLOCK_MS / 1000 + READ_TIMEOUT + 2
    assert max(memory) - baseline < MEMORY_BOUND_KIB
