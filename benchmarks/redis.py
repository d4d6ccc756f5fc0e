"""Consumption through the Redis adapters against raw redis-py loops.

Both sides read from the same Redis server (``MISSIVE_BENCH_REDIS_URL``, else
``redis://127.0.0.1:6379/0``) in the same run, with a handler that only acks.

- Pub/Sub: messages are published from a second connection as one burst of
  pre-packed commands; the rate is messages handled per second from that
  write until the last one arrives.  The baseline is a ``PubSub.get_message`` loop.
- Streams: a stream pre-filled with entries is drained by a consumer group.
  The baseline reads with XREADGROUP and acks each batch with one pipelined
  XACK, with the adapter's batch size.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

import redis

from benchmarks.harness import Comparison, compare, rate
from missive import HandlingContext, Processor, RawMessage
from missive_redis import RedisPubSubAdapter, RedisStreamAdapter

URL = os.environ.get("MISSIVE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PAYLOAD = b'{"order": 12345, "status": "paid", "amount": "19.99"}'
BATCH_SIZE = 100
#: No round waits longer than this for its messages.
ROUND_TIMEOUT = 60.0


def run(quick: bool) -> list[Comparison]:
    client = redis.Redis.from_url(URL)
    client.ping()
    prefix = f"missive-bench:{uuid.uuid4().hex[:8]}:"
    pubsub_count, stream_count, rounds = (
        (5_000, 5_000, 2) if quick else (20_000, 50_000, 5)
    )
    try:
        return [
            compare(
                "redis pub/sub consume, acking handler",
                baseline_name="redis-py PubSub.get_message loop",
                candidate=lambda n: _pubsub_missive(client, prefix, n),
                baseline=lambda n: _pubsub_raw(client, prefix, n),
                count=pubsub_count,
                rounds=rounds,
                target=0.8,
            ),
            compare(
                "redis streams consume, acking handler",
                baseline_name=f"XREADGROUP COUNT {BATCH_SIZE} + pipelined XACK",
                candidate=lambda n: _streams_missive(client, prefix, n),
                baseline=lambda n: _streams_raw(client, prefix, n),
                count=stream_count,
                rounds=rounds,
                target=0.8,
                note=f"batch size {BATCH_SIZE} on both sides",
            ),
        ]
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


# --- Pub/Sub ------------------------------------------------------------------


class _Publisher:
    """Publishes a pre-packed burst on a connection of its own.

    The replies are not read until the round is over, so the publisher takes
    no CPU from the consumer while it runs.
    """

    def __init__(self, client: redis.Redis, channel: str, count: int) -> None:
        pool = client.connection_pool
        self.connection: Any = pool.connection_class(**pool.connection_kwargs)
        self.connection.connect()
        chunks = self.connection.pack_commands([("PUBLISH", channel, PAYLOAD)] * count)
        self.burst = b"".join(bytes(chunk) for chunk in chunks)

    def publish(self) -> float:
        """Send the burst; return when sending started."""
        started = time.perf_counter()
        self.connection.send_packed_command([self.burst], check_health=False)
        return started

    def close(self) -> None:
        self.connection.disconnect()


def _wait_subscribed(client: redis.Redis, channel: str) -> None:
    deadline = time.monotonic() + ROUND_TIMEOUT
    while client.pubsub_numsub(channel)[0][1] < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the subscriber never subscribed")
        time.sleep(0.005)


def _pubsub_raw(client: redis.Redis, prefix: str, count: int) -> float:
    channel = prefix + "raw"
    done = threading.Event()
    finished: list[float] = []

    def subscriber() -> None:
        untyped: Any = client
        pubsub = untyped.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel)
        received = 0
        deadline = time.monotonic() + ROUND_TIMEOUT
        while received < count and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "message":
                received += len(message["data"]) > 0
        finished.append(time.perf_counter())
        pubsub.close()
        done.set()

    thread = threading.Thread(target=subscriber)
    thread.start()
    publisher = _Publisher(client, channel, count)
    _wait_subscribed(client, channel)
    started = publisher.publish()
    done.wait(ROUND_TIMEOUT + 5)
    thread.join(5)
    publisher.close()
    return count / (finished[0] - started)


def _pubsub_missive(client: redis.Redis, prefix: str, count: int) -> float:
    channel = prefix + "missive"
    processor: Processor[RawMessage] = Processor()
    handled = [0]
    finished: list[float] = []
    adapter = RedisPubSubAdapter(RawMessage, processor, channel, url=URL)

    @processor.handle_for(lambda message: True)
    def ack(message: RawMessage, ctx: HandlingContext[RawMessage]) -> None:
        ctx.ack()
        handled[0] += 1
        if handled[0] == count:
            finished.append(time.perf_counter())
            adapter.stop()

    publisher = _Publisher(client, channel, count)
    thread = threading.Thread(target=adapter.run)
    thread.start()
    _wait_subscribed(client, channel)
    started = publisher.publish()
    thread.join(ROUND_TIMEOUT)
    publisher.close()
    if not finished:
        adapter.stop()
        thread.join(5)
        raise RuntimeError(f"Missive handled {handled[0]} of {count} messages")
    return count / (finished[0] - started)


# --- Streams ------------------------------------------------------------------


def _fill_stream(client: redis.Redis, stream: str, count: int) -> None:
    client.delete(stream)
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd(stream, {"data": PAYLOAD})
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    client.xgroup_create(stream, "bench", id="0")


def _streams_raw(client: redis.Redis, prefix: str, count: int) -> float:
    stream = prefix + "raw-stream"
    _fill_stream(client, stream, count)
    handled = 0
    deadline = time.monotonic() + ROUND_TIMEOUT
    started = time.perf_counter()
    while handled < count and time.monotonic() < deadline:
        response: Any = client.xreadgroup(
            "bench", "raw", {stream: ">"}, count=BATCH_SIZE, block=1000
        )
        for _, entries in response:
            ids = []
            for entry_id, fields in entries:
                handled += len(fields[b"data"]) > 0
                ids.append(entry_id)
            pipe = client.pipeline(transaction=False)
            pipe.xack(stream, "bench", *ids)
            pipe.execute()
    elapsed_rate = rate(handled, started)
    if handled < count:
        raise RuntimeError(f"the raw loop handled {handled} of {count} entries")
    return elapsed_rate


def _streams_missive(client: redis.Redis, prefix: str, count: int) -> float:
    stream = prefix + "missive-stream"
    _fill_stream(client, stream, count)
    processor: Processor[RawMessage] = Processor()
    handled = [0]
    adapter = RedisStreamAdapter(
        RawMessage,
        processor,
        stream,
        group="bench",
        consumer="missive",
        url=URL,
        batch_size=BATCH_SIZE,
    )

    @processor.handle_for(lambda message: True)
    def ack(message: RawMessage, ctx: HandlingContext[RawMessage]) -> None:
        ctx.ack()
        handled[0] += 1
        if handled[0] == count:
            adapter.stop()

    timer = threading.Timer(ROUND_TIMEOUT, adapter.stop)
    timer.start()
    started = time.perf_counter()
    try:
        adapter.run()
    finally:
        timer.cancel()
    elapsed_rate = rate(handled[0], started)
    if handled[0] < count:
        raise RuntimeError(f"Missive handled {handled[0]} of {count} entries")
    if client.xpending(stream, "bench")["pending"]:
        raise RuntimeError("Missive left entries unacknowledged")
    return elapsed_rate
