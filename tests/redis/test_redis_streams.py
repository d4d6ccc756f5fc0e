"""The ``redis-streams`` adapter against a real server: consumer groups."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis_testing import running, wait_until

from missive import HandlingContext, Message, Processor, RawMessage
from missive_redis import ConsumerGroupLost, RedisStreamAdapter


class Recorder:
    """A processor that records each delivery; ``decide`` settles it."""

    def __init__(
        self, decide: Callable[[Message, HandlingContext[Any]], None] | None = None
    ) -> None:
        self.deliveries: list[tuple[Message, float]] = []
        self.lock = threading.Lock()
        self.decide = decide
        self.processor: Processor[Any] = Processor()
        self.processor.handle_for(lambda message: True)(self.handle)

    def handle(self, message: Message, ctx: HandlingContext[Any]) -> None:
        with self.lock:
            self.deliveries.append((message, time.monotonic()))
        if self.decide is None:
            ctx.ack()
        else:
            self.decide(message, ctx)

    def ids(self) -> list[bytes]:
        with self.lock:
            return [m.message_id for m, _ in self.deliveries]


def adapter_for(
    recorder: Recorder, redis_url: str, stream: str, **kwargs: Any
) -> RedisStreamAdapter[RawMessage]:
    options: dict[str, Any] = {"group": "workers", "consumer": "c1", "block_ms": 100}
    options.update(kwargs)
    return RedisStreamAdapter(
        RawMessage, recorder.processor, stream, url=redis_url, **options
    )


def message_key(stream: str, entry_id: Any) -> bytes:
    """The message id the adapter gives an entry: ``b"<stream>/<entry id>"``."""
    return stream.encode() + b"/" + bytes(entry_id)


def pending_count(client: redis.Redis, stream: str, group: str = "workers") -> int:
    return int(client.xpending(stream, group)["pending"])


def test_ack_removes_the_entry_from_the_pending_list_after_handling(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    stream = prefix + "orders"
    seen_pending: list[int] = []

    def check_then_ack(message: Message, ctx: HandlingContext[Any]) -> None:
        # While the handler runs, the entry must still be pending.
        seen_pending.append(pending_count(redis_client, stream))
        ctx.ack()

    recorder = Recorder(check_then_ack)
    entry_id: Any = redis_client.xadd(stream, {"data": b"order-1", "source": b"web"})

    with running(adapter_for(recorder, redis_url, stream)) as errors:
        wait_until(lambda: recorder.deliveries)
        wait_until(lambda: pending_count(redis_client, stream) == 0)

    assert errors == []
    assert seen_pending == [1]
    [(message, _)] = recorder.deliveries
    assert message.raw_data == b"order-1"
    assert message.message_id == message_key(stream, entry_id)
    assert message.attributes["stream"] == stream
    assert message.attributes["transport_id"] == entry_id.decode()
    assert message.attributes["delivery_count"] == 1
    assert message.attributes["fields"][b"source"] == b"web"


def test_nack_leaves_the_entry_pending_and_it_is_delivered_again(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    stream = prefix + "orders"

    def nack_first(message: Message, ctx: HandlingContext[Any]) -> None:
        if message.attributes["delivery_count"] == 1:
            ctx.nack()
        else:
            ctx.ack()

    recorder = Recorder(nack_first)
    redis_client.xadd(stream, {"data": b"x"})

    with running(adapter_for(recorder, redis_url, stream)):
        wait_until(lambda: len(recorder.deliveries) >= 2)
        wait_until(lambda: pending_count(redis_client, stream) == 0)

    counts = [m.attributes["delivery_count"] for m, _ in recorder.deliveries]
    assert counts == [1, 2]
    assert len(set(recorder.ids())) == 1


def test_poison_message_lands_in_dlq_after_exactly_max_deliveries(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    stream = prefix + "orders"

    def nack_poison(message: Message, ctx: HandlingContext[Any]) -> None:
        if message.raw_data == b"poison":
            ctx.nack()
        else:
            ctx.ack()

    recorder = Recorder(nack_poison)
    dlq: dict[bytes, tuple[Message, str]] = {}
    recorder.processor.set_dlq(dlq)
    poison_id = redis_client.xadd(stream, {"data": b"poison"})
    redis_client.xadd(stream, {"data": b"fine"})
    expected_key = message_key(stream, poison_id)

    with running(adapter_for(recorder, redis_url, stream, max_deliveries=3)):
        wait_until(lambda: expected_key in dlq)
        wait_until(lambda: pending_count(redis_client, stream) == 0)

    poison_deliveries = [m for m, _ in recorder.deliveries if m.raw_data == b"poison"]
    assert [m.attributes["delivery_count"] for m in poison_deliveries] == [1, 2, 3]
    message, reason = dlq[expected_key]
    assert message.raw_data == b"poison"
    assert reason == "delivered 4 times, more than max_deliveries=3"
    assert list(dlq) == [expected_key]


def test_poison_message_without_dlq_stays_pending_and_is_logged_critical(
    redis_url: str,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = prefix + "orders"
    recorder = Recorder(lambda message, ctx: ctx.nack())
    redis_client.xadd(stream, {"data": b"poison"})

    with (
        caplog.at_level(logging.INFO, "missive_redis"),
        running(adapter_for(recorder, redis_url, stream, max_deliveries=2)),
    ):
        wait_until(lambda: any(r.levelno == logging.CRITICAL for r in caplog.records))
        time.sleep(0.3)

    assert len(recorder.deliveries) == 2
    assert pending_count(redis_client, stream) == 1
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1
    assert "max_deliveries=2" in critical[0].getMessage()


def test_entry_without_the_payload_field_goes_to_the_dlq_with_a_reason(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    stream = prefix + "orders"
    recorder = Recorder()
    dlq: dict[bytes, tuple[Message, str]] = {}
    recorder.processor.set_dlq(dlq)
    bad_id = redis_client.xadd(stream, {"body": b"misplaced"})
    redis_client.xadd(stream, {"body": b"x", "payload": b"right"})

    with running(adapter_for(recorder, redis_url, stream, payload_field="payload")):
        wait_until(lambda: len(dlq) == 1 and recorder.deliveries)
        wait_until(lambda: pending_count(redis_client, stream) == 0)

    [(message, reason)] = dlq.values()
    assert message.message_id == message_key(stream, bad_id)
    assert reason == "entry has no 'payload' field (its fields: body)"
    assert [m.raw_data for m, _ in recorder.deliveries] == [b"right"]


def test_restarted_consumer_reprocesses_its_own_pending_entries_first(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    stream = prefix + "orders"
    redis_client.xgroup_create(stream, "workers", id="0", mkstream=True)
    old = [redis_client.xadd(stream, {"data": b"old-%d" % n}) for n in range(3)]
    # A first life of consumer c1 read these and died before acking.
    redis_client.xreadgroup("workers", "c1", {stream: ">"}, count=10)
    new = [redis_client.xadd(stream, {"data": b"new-%d" % n}) for n in range(2)]
    recorder = Recorder()

    with running(adapter_for(recorder, redis_url, stream)):
        wait_until(lambda: len(recorder.deliveries) == 5)
        wait_until(lambda: pending_count(redis_client, stream) == 0)

    expected = [message_key(stream, i) for i in old + new]
    assert recorder.ids() == expected
    counts = [m.attributes["delivery_count"] for m, _ in recorder.deliveries]
    assert counts == [2, 2, 2, 1, 1]


def test_second_consumer_claims_a_dead_consumers_entries_after_idle_time(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    stream = prefix + "orders"
    redis_client.xgroup_create(stream, "workers", id="0", mkstream=True)
    ids = [redis_client.xadd(stream, {"data": b"job-%d" % n}) for n in range(5)]
    redis_client.xreadgroup("workers", "dead", {stream: ">"}, count=10)
    abandoned_at = time.monotonic()
    recorder = Recorder()
    adapter = adapter_for(
        recorder,
        redis_url,
        stream,
        consumer="alive",
        claim_idle_ms=600,
        claim_interval_ms=50,
    )

    with running(adapter):
        wait_until(lambda: len(recorder.deliveries) == 5)
        wait_until(lambda: pending_count(redis_client, stream) == 0)

    assert recorder.ids() == [message_key(stream, i) for i in ids]
    first_handled = min(at for _, at in recorder.deliveries)
    assert first_handled - abandoned_at >= 0.6
    assert all(m.attributes["delivery_count"] == 2 for m, _ in recorder.deliveries)
    consumers = {c["name"]: c for c in redis_client.xinfo_consumers(stream, "workers")}
    assert consumers[b"dead"]["pending"] == 0


def test_entries_trimmed_while_pending_are_reported(
    redis_url: str,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = prefix + "orders"
    redis_client.xgroup_create(stream, "workers", id="0", mkstream=True)
    ids = [redis_client.xadd(stream, {"data": b"%d" % n}) for n in range(4)]
    redis_client.xreadgroup("workers", "c1", {stream: ">"}, count=10)
    redis_client.xtrim(stream, maxlen=1, approximate=False)
    recorder = Recorder()
    dlq: dict[bytes, tuple[Message, str]] = {}
    recorder.processor.set_dlq(dlq)

    with (
        caplog.at_level(logging.ERROR, "missive_redis"),
        running(adapter_for(recorder, redis_url, stream)),
    ):
        wait_until(lambda: len(recorder.deliveries) == 1)
        wait_until(lambda: pending_count(redis_client, stream) == 0)

    trimmed = {message_key(stream, i) for i in ids[:3]}
    assert set(dlq) == trimmed
    assert all("trimmed" in reason for _, reason in dlq.values())
    logged = [r.getMessage() for r in caplog.records if "trimmed" in r.getMessage()]
    assert len(logged) == 3
    assert [m.raw_data for m, _ in recorder.deliveries] == [b"3"]


def test_a_vanished_group_is_a_fatal_error_and_is_not_recreated(
    redis_url: str,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = prefix + "orders"
    recorder = Recorder()
    redis_client.xadd(stream, {"data": b"1"})

    with (
        caplog.at_level(logging.INFO, "missive_redis"),
        running(adapter_for(recorder, redis_url, stream)) as errors,
    ):
        wait_until(lambda: recorder.deliveries)
        redis_client.xgroup_destroy(stream, "workers")
        wait_until(lambda: errors)

    [error] = errors
    assert isinstance(error, ConsumerGroupLost)
    assert "workers" in str(error)
    assert redis_client.xinfo_groups(stream) == []
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)


@pytest.mark.parametrize(
    ("start_id", "expected"), [("0", [b"old", b"new"]), ("$", [b"new"])]
)
def test_start_id_decides_where_a_new_group_begins(
    redis_url: str,
    redis_client: redis.Redis,
    prefix: str,
    start_id: str,
    expected: list[bytes],
) -> None:
    stream = prefix + "orders"
    redis_client.xadd(stream, {"data": b"old"})
    recorder = Recorder()

    with running(adapter_for(recorder, redis_url, stream, start_id=start_id)):
        wait_until(lambda: redis_client.xinfo_groups(stream))
        redis_client.xadd(stream, {"data": b"new"})
        wait_until(lambda: b"new" in [m.raw_data for m, _ in recorder.deliveries])

    assert [m.raw_data for m, _ in recorder.deliveries] == expected


def test_reads_several_streams_and_acks_in_batches(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    streams = [prefix + "a", prefix + "b"]
    pipe = redis_client.pipeline()
    for n in range(250):
        pipe.xadd(streams[n % 2], {"data": b"%d" % n})
    pipe.execute()
    recorder = Recorder()
    adapter = RedisStreamAdapter(
        RawMessage,
        recorder.processor,
        streams,
        group="workers",
        consumer="c1",
        url=redis_url,
        batch_size=40,
        block_ms=100,
    )

    with running(adapter):
        wait_until(lambda: len(recorder.deliveries) == 250)
        wait_until(lambda: sum(pending_count(redis_client, s) for s in streams) == 0)

    assert sorted(int(m.raw_data) for m, _ in recorder.deliveries) == list(range(250))
    assert {m.attributes["stream"] for m, _ in recorder.deliveries} == set(streams)


def test_stop_flushes_acks_of_handled_entries(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    stream = prefix + "orders"
    for n in range(3):
        redis_client.xadd(stream, {"data": b"%d" % n})
    adapters: list[RedisStreamAdapter[RawMessage]] = []

    def ack_and_stop_at_last(message: Message, ctx: HandlingContext[Any]) -> None:
        ctx.ack()
        if message.raw_data == b"2":
            adapters[0].stop()

    recorder = Recorder(ack_and_stop_at_last)
    # Acks would wait for 60 s: only the flush on stop can send them in time.
    adapters.append(adapter_for(recorder, redis_url, stream, ack_delay_ms=60_000))

    with running(adapters[0]) as errors:
        wait_until(lambda: adapters[0].stopping and len(recorder.deliveries) == 3)

    assert errors == []
    assert pending_count(redis_client, stream) == 0


def test_reconnects_after_client_kill_and_loses_nothing(
    redis_url: str,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = prefix + "orders"
    name = prefix.replace(":", "-") + "streams"
    recorder = Recorder()
    adapter = adapter_for(
        recorder,
        redis_url,
        stream,
        client_name=name,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.2,
    )

    with caplog.at_level(logging.INFO, "missive_redis"), running(adapter) as errors:
        redis_client.xadd(stream, {"data": b"before"})
        wait_until(lambda: len(recorder.deliveries) == 1)
        [client] = [c for c in redis_client.client_list() if c["name"] == name]
        redis_client.client_kill_filter(_id=client["id"])
        redis_client.xadd(stream, {"data": b"after"})
        wait_until(lambda: len(recorder.deliveries) == 2)
        wait_until(lambda: pending_count(redis_client, stream) == 0)

    assert errors == []
    assert [m.raw_data for m, _ in recorder.deliveries] == [b"before", b"after"]
    assert any("reconnected" in r.getMessage() for r in caplog.records)
