"""Issue 7, test 5: a Pub/Sub subscriber black-holed, then overrun by a burst.

The subscriber reaches a private Redis through the fault proxy.  First the
link is black-holed: the adapter's health check must find the silent link,
and once healed it must subscribe again and log the gap with its start and
end.  Then a burst is published faster than the handler can go: Redis drops
the subscriber when its output buffer passes the limit, and the adapter
must subscribe again, log that gap too, and keep its own memory bounded.

Pub/Sub is at-most-once, so the check is on what did arrive: no message
twice, none invented, in publication order, and the missing ones in no more
contiguous runs than there were gaps logged.
"""

from __future__ import annotations

import datetime
import re
import time
from pathlib import Path
from typing import Any

from fault_proxy import FaultProxy
from reliability_testing import (
    SCALE,
    Figures,
    PersistentRedis,
    Record,
    rss_kib,
    start_missive_run,
    stop_process,
    wait_until,
)

CHANNEL = "reliability:pubsub"
#: Quiet seconds before the adapter PINGs, and how long it waits for PONG.
HEALTH_CHECK = 2.0
READ_TIMEOUT = 1.0
#: The server drops a subscriber whose pending output passes this.
BUFFER_LIMIT = "pubsub 1mb 512kb 2"
#: Growth of the subscriber's resident memory allowed, in KiB.
MEMORY_BOUND_KIB = 30 * 1024
#: How late the adapter may place the start of a silent link's gap: its
#: 0.5 s poll, and a second for a loaded machine.  Placed at the failed
#: PING instead, it would be HEALTH_CHECK + READ_TIMEOUT = 3 s late.
POLL_SLACK = 1.5
PAYLOAD_PADDING = b"x" * 2000

_GAP = re.compile(r"gap from (\S+) to (\S+) \(([0-9.]+) s\)")


def _missing_runs(received: list[int], published: int) -> int:
    """How many contiguous runs of numbers below ``published`` are missing."""
    seen = set(received)
    runs, inside = 0, False
    for number in range(published):
        if number in seen:
            inside = False
        elif not inside:
            runs, inside = runs + 1, True
    return runs


def test_subscriber_resubscribes_logs_each_gap_and_stays_bounded(
    redis_factory: Any, tmp_path: Path, figures: Figures
) -> None:
    server: PersistentRedis = redis_factory(
        persistent=False, extra=("--client-output-buffer-limit", BUFFER_LIMIT)
    )
    proxy = FaultProxy(server.port).start()
    record = Record(tmp_path / "record")
    log_path = tmp_path / "subscriber.log"
    publisher = server.client()
    published = 0

    def publish(count: int) -> None:
        nonlocal published
        pipe = publisher.pipeline(transaction=False)
        for number in range(published, published + count):
            pipe.publish(CHANNEL, b"%d-%s" % (number, PAYLOAD_PADDING))
        pipe.execute()
        published += count

    def subscribed_again(count: int) -> bool:
        # A probe a second: received means the subscription is back.
        if len(_GAP.findall(log_path.read_text(errors="replace"))) < count:
            return False
        before = len(record.refresh().handled_payloads)
        publish(1)
        return wait_until(
            lambda: len(record.refresh().handled_payloads) > before, timeout=5
        )

    process = start_missive_run(
        "reliability_apps:pubsub_processor",
        "redis",
        {
            "channels": CHANNEL,
            "url": proxy.url,
            "health_check_interval": HEALTH_CHECK,
            "read_timeout": READ_TIMEOUT,
            "connect_timeout": READ_TIMEOUT,
            "reconnect_min_delay": 0.05,
            "reconnect_max_delay": 0.5,
        },
        env={"MISSIVE_REL_RECORD": str(record.path), "MISSIVE_REL_SLEEP": "0.0005"},
        log=log_path,
    )
    memory: list[int] = []
    try:
        wait_until(lambda: "subscribed to channels" in log_path.read_text(), timeout=30)
        publish(100)
        wait_until(lambda: len(record.refresh().handled_payloads) >= 100, timeout=30)
        baseline = rss_kib(process.pid)

        # The black hole: found by the health check, healed, subscribed again.
        with proxy.black_holed():
            holed_wall = datetime.datetime.now(datetime.UTC)
            holed_at = time.monotonic()
            heal_at = holed_at + SCALE.black_hole_seconds
            while time.monotonic() < heal_at:
                publish(10)
                time.sleep(0.1)
        detected_in_log = "lost the Pub/Sub connection" in log_path.read_text()
        wait_until(lambda: subscribed_again(1), timeout=30, interval=0.5)
        recovered = time.monotonic() - heal_at
        healed_wall = holed_wall + datetime.timedelta(seconds=heal_at - holed_at)

        # The burst: faster than the handler, past the server's buffer limit.
        burst_started = time.monotonic()
        for _ in range(SCALE.pubsub_burst // 1000):
            publish(1000)
            memory.append(rss_kib(process.pid))
        burst_seconds = time.monotonic() - burst_started
        wait_until(lambda: subscribed_again(2), timeout=60, interval=0.5)
        memory.append(rss_kib(process.pid))
        exit_status = stop_process(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        publisher.close()
        proxy.close()

    log = log_path.read_text(errors="replace")
    received = [int(p.split("-")[0]) for p in record.refresh().handled_payloads]
    gaps = _GAP.findall(log)
    losses = log.count("lost the Pub/Sub connection")
    figures["published"] = published
    figures["received"] = len(received)
    figures["burst_messages"] = SCALE.pubsub_burst
    figures["burst_publish_seconds"] = round(burst_seconds, 2)
    figures["gaps_logged"] = [
        {"start": start, "end": end, "seconds": float(seconds)}
        for start, end, seconds in gaps
    ]
    figures["missing_runs"] = _missing_runs(received, published)
    figures["seconds_to_resubscribe_after_heal"] = round(recovered, 2)
    figures["rss_baseline_kib"] = baseline
    figures["rss_max_kib"] = max(memory)

    assert exit_status == 0
    assert detected_in_log
    assert len(received) == len(set(received)), "a message arrived twice"
    assert received == sorted(received), "messages arrived out of order"
    assert set(received) <= set(range(published))
    assert len(gaps) >= 2
    # The first gap covers the black hole: from when the subscriber last
    # heard from the server (polled every 0.5 s) to after the heal.
    first_start, first_end = (datetime.datetime.fromisoformat(t) for t in gaps[0][:2])
    assert first_start <= holed_wall + datetime.timedelta(seconds=POLL_SLACK)
    assert first_end >= healed_wall
    assert losses == len(gaps), "a gap was opened and never closed in the log"
    assert _missing_runs(received, published) <= len(gaps)
    assert max(memory) - baseline < MEMORY_BOUND_KIB
