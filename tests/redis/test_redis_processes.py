"""``missive run --adapter redis-streams`` in real processes: crashes, sharing."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import redis
from redis_testing import start_missive, stop_process, wait_until

GROUP = "workers"


def run_consumer(
    redis_url: str,
    prefix: str,
    stream: str,
    consumer: str,
    log: Path,
    *,
    sleep: float = 0.0,
    batch_size: int = 50,
) -> subprocess.Popen[bytes]:
    return start_missive(
        [
            "run",
            "redis_test_app:streams_processor",
            "--adapter",
            "redis-streams",
            "--message",
            "raw",
            "-o",
            f"streams={stream}",
            "-o",
            f"group={GROUP}",
            "-o",
            f"consumer={consumer}",
            "-o",
            f"url={redis_url}",
            "-o",
            f"batch_size={batch_size}",
            "-o",
            "block_ms=200",
            "-o",
            "claim_idle_ms=60000",
        ],
        {
            "MISSIVE_TEST_PREFIX": prefix,
            "MISSIVE_TEST_REDIS_URL": redis_url,
            "MISSIVE_TEST_CONSUMER": consumer,
            "MISSIVE_TEST_SLEEP": str(sleep),
        },
        log=log,
    )


def fill(
    client: redis.Redis, stream: str, count: int, poison_every: int = 0
) -> list[bytes]:
    """Add ``count`` entries; return the message ids the adapter will give them."""
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        poisoned = poison_every and n % poison_every == poison_every - 1
        pipe.xadd(stream, {"data": b"poison-%d" % n if poisoned else b"msg-%d" % n})
    return [stream.encode() + b"/" + entry_id for entry_id in pipe.execute()]


def test_sigkill_mid_run_then_restart_loses_nothing(
    redis_url: str, redis_client: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    stream = prefix + "orders"
    batch_size = 50
    ids = fill(redis_client, stream, 10_000, poison_every=1000)
    poisoned = {i for n, i in enumerate(ids) if n % 1000 == 999}

    # First life: killed without warning a third of the way through.
    first = run_consumer(redis_url, prefix, stream, "w1", tmp_path / "1.log")
    try:
        wait_until(lambda: redis_client.hlen(prefix + "handled") >= 3000, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=15)
    handled_at_kill = redis_client.hlen(prefix + "handled")
    assert handled_at_kill < 9000, "the run finished before it could be killed"

    # Second life, same consumer name: it must finish everything.
    second = run_consumer(redis_url, prefix, stream, "w1", tmp_path / "2.log")
    try:
        wait_until(
            lambda: (
                redis_client.hlen(prefix + "handled")
                + redis_client.hlen(prefix + "dlq:reasons")
                >= len(ids)
            ),
            timeout=90,
            interval=0.1,
        )
        wait_until(lambda: redis_client.xpending(stream, GROUP)["pending"] == 0)
        status = stop_process(second)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()

    assert status == 0, (tmp_path / "2.log").read_text()[-3000:]
    handled = {k: int(v) for k, v in redis_client.hgetall(prefix + "handled").items()}
    dead = set(redis_client.hkeys(prefix + "dlq:reasons"))
    assert dead == poisoned
    assert set(handled) | dead == set(ids)
    assert not set(handled) & dead
    # Only entries handled but not yet acked at the kill come back: one batch.
    duplicates = [k for k, v in handled.items() if v > 1]
    assert len(duplicates) <= batch_size
    assert "re-processing" in (tmp_path / "2.log").read_text()


def test_two_processes_in_one_group_split_the_work_without_double_handling(
    redis_url: str, redis_client: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    stream = prefix + "orders"
    redis_client.xgroup_create(stream, GROUP, id="$", mkstream=True)
    workers = [
        run_consumer(
            redis_url,
            prefix,
            stream,
            name,
            tmp_path / f"{name}.log",
            sleep=0.001,
            batch_size=10,
        )
        for name in ("w1", "w2")
    ]
    try:
        wait_until(
            lambda: redis_client.exists(prefix + "ready:w1", prefix + "ready:w2") == 2,
            timeout=60,
        )
        ids = fill(redis_client, stream, 1000)
        wait_until(
            lambda: redis_client.hlen(prefix + "handled") >= len(ids), timeout=60
        )
        wait_until(lambda: redis_client.xpending(stream, GROUP)["pending"] == 0)
        statuses = [stop_process(worker) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    assert statuses == [0, 0]
    counts = {k: int(v) for k, v in redis_client.hgetall(prefix + "handled").items()}
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}
    by_w1 = redis_client.smembers(prefix + "by:w1")
    by_w2 = redis_client.smembers(prefix + "by:w2")
    assert by_w1 and by_w2
    assert not by_w1 & by_w2
    assert by_w1 | by_w2 == set(ids)
