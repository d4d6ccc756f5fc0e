"""The ``redis`` adapter against a real server: Pub/Sub, at-most-once."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_testing import (
    RedisServer,
    running,
    start_missive,
    stop_process,
    wait_until,
)

from missive import HandlingContext, JSONMessage, Message, Processor, RawMessage
from missive_redis import RedisPubSubAdapter


class Recorder:
    """A processor whose handler records every message it is given."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.processor: Processor[Any] = Processor()
        self.fail_on = fail_on
        self.processor.handle_for(lambda message: True)(self.handle)

    def handle(self, message: Message, ctx: HandlingContext[Any]) -> None:
        if self.fail_on is not None and message.raw_data == self.fail_on:
            raise ValueError("this payload always fails")
        with self.lock:
            self.messages.append(message)
        ctx.ack()

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [m.raw_data for m in self.messages if m.raw_data != b"probe"]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


def publish_until_received(
    client: redis.Redis, channel: str, recorder: Recorder, timeout: float = 15.0
) -> None:
    """Publish probes to ``channel`` until the adapter handled one.

    Probes handled earlier count too: clear the recorder first to wait for a
    new subscription.
    """

    def probe_arrived() -> bool:
        client.publish(channel, b"probe")
        with recorder.lock:
            return any(m.raw_data == b"probe" for m in recorder.messages)

    wait_until(probe_arrived, timeout=timeout, interval=0.05)


def test_receives_on_several_channels_and_a_pattern(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    recorder = Recorder()
    adapter = RedisPubSubAdapter(
        RawMessage,
        recorder.processor,
        [prefix + "orders", prefix + "invoices"],
        patterns=[prefix + "audit.*"],
        url=redis_url,
    )

    with running(adapter) as errors:
        publish_until_received(redis_client, prefix + "orders", recorder)
        publish_until_received(redis_client, prefix + "audit.probe", recorder)
        recorder.clear()
        redis_client.publish(prefix + "orders", b"o-1")
        redis_client.publish(prefix + "invoices", b"i-1")
        redis_client.publish(prefix + "audit.login", b"a-1")
        redis_client.publish(prefix + "elsewhere", b"never")
        wait_until(lambda: len(recorder.payloads()) >= 3)

    assert errors == []
    # A probe published before clear() may still arrive after it.
    by_payload = {m.raw_data: m for m in recorder.messages if m.raw_data != b"probe"}
    assert sorted(by_payload) == [b"a-1", b"i-1", b"o-1"]
    assert by_payload[b"o-1"].attributes["channel"] == prefix + "orders"
    assert by_payload[b"o-1"].attributes["transport_id"] == prefix + "orders"
    assert "pattern" not in by_payload[b"o-1"].attributes
    assert by_payload[b"i-1"].attributes["channel"] == prefix + "invoices"
    assert by_payload[b"a-1"].attributes == {
        "channel": prefix + "audit.login",
        "transport_id": prefix + "audit.login",
        "pattern": prefix + "audit.*",
    }
    assert len({m.message_id for m in recorder.messages}) == len(recorder.messages)


def test_json_and_raw_messages_keep_their_payloads(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    decoded: list[Any] = []
    json_processor: Processor[JSONMessage] = Processor()

    @json_processor.handle_for(lambda message: message.raw_data != b"probe")
    def record_json(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        decoded.append(message.get_json())
        ctx.ack()

    @json_processor.handle_for(lambda message: message.raw_data == b"probe")
    def ignore_probe(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        decoded.append("probe")
        ctx.ack()

    raw = Recorder()
    json_adapter = RedisPubSubAdapter(
        JSONMessage, json_processor, prefix + "json", url=redis_url
    )
    raw_adapter = RedisPubSubAdapter(
        RawMessage, raw.processor, prefix + "raw", url=redis_url
    )
    binary = bytes(range(256))

    with running(json_adapter), running(raw_adapter):
        publish_until_received(redis_client, prefix + "raw", raw)
        wait_until(lambda: redis_client.publish(prefix + "json", b"probe") and decoded)
        redis_client.publish(prefix + "json", b'{"order": 7, "items": ["a", "b"]}')
        redis_client.publish(prefix + "raw", binary)
        wait_until(lambda: {"order": 7, "items": ["a", "b"]} in decoded)
        wait_until(lambda: binary in raw.payloads())

    assert raw.payloads() == [binary]
    assert isinstance(raw.messages[-1], RawMessage)


def test_failed_messages_go_to_the_dlq_and_processing_goes_on(
    redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    recorder = Recorder(fail_on=b"bad")
    dlq: dict[bytes, tuple[Message, str]] = {}
    recorder.processor.set_dlq(dlq)
    adapter = RedisPubSubAdapter(
        RawMessage, recorder.processor, prefix + "orders", url=redis_url
    )

    with running(adapter):
        publish_until_received(redis_client, prefix + "orders", recorder)
        for payload in (b"good-1", b"bad", b"good-2"):
            redis_client.publish(prefix + "orders", payload)
        wait_until(lambda: recorder.payloads() == [b"good-1", b"good-2"])

    [(message, reason)] = dlq.values()
    assert message.raw_data == b"bad"
    assert message.attributes["channel"] == prefix + "orders"
    assert reason == "this payload always fails"


def test_a_failure_without_dlq_is_logged_and_processing_goes_on(
    redis_url: str,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder(fail_on=b"bad")
    adapter = RedisPubSubAdapter(
        RawMessage, recorder.processor, prefix + "orders", url=redis_url
    )

    with caplog.at_level(logging.ERROR, "missive_redis"), running(adapter) as errors:
        publish_until_received(redis_client, prefix + "orders", recorder)
        redis_client.publish(prefix + "orders", b"bad")
        redis_client.publish(prefix + "orders", b"after")
        wait_until(lambda: recorder.payloads() == [b"after"])

    assert errors == []
    assert any("is lost" in r.getMessage() and r.exc_info for r in caplog.records)


def test_reconnects_and_resubscribes_after_client_kill(
    redis_url: str,
    redis_client: redis.Redis,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    name = prefix.replace(":", "-") + "sub"
    adapter = RedisPubSubAdapter(
        RawMessage,
        recorder.processor,
        prefix + "orders",
        patterns=prefix + "audit.*",
        url=redis_url,
        client_name=name,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.2,
    )

    with caplog.at_level(logging.INFO, "missive_redis"), running(adapter) as errors:
        publish_until_received(redis_client, prefix + "orders", recorder)
        [before] = [c for c in redis_client.client_list() if c["name"] == name]
        assert redis_client.client_kill_filter(_id=before["id"]) == 1
        recorder.clear()

        publish_until_received(redis_client, prefix + "orders", recorder)
        publish_until_received(redis_client, prefix + "audit.x", recorder)
        recorder.clear()
        redis_client.publish(prefix + "orders", b"after-kill")
        wait_until(lambda: recorder.payloads() == [b"after-kill"])
        [after] = [c for c in redis_client.client_list() if c["name"] == name]

    assert errors == []
    assert after["id"] != before["id"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost the Pub/Sub connection" in m for m in messages)
    assert any("subscription restored" in m and "gap from" in m for m in messages)


def test_survives_a_server_restart(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    adapter = RedisPubSubAdapter(
        RawMessage,
        recorder.processor,
        "orders",
        url=private_redis.url,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.3,
    )
    client = redis.Redis.from_url(private_redis.url, socket_connect_timeout=1)

    with caplog.at_level(logging.INFO, "missive_redis"), running(adapter) as errors:
        publish_until_received(client, "orders", recorder)
        private_redis.stop()
        wait_until(
            lambda: any("lost the Pub/Sub" in r.getMessage() for r in caplog.records)
        )
        private_redis.start()
        recorder.clear()
        publish_until_received(client, "orders", recorder)
        recorder.clear()
        client.publish("orders", b"after-restart")
        wait_until(lambda: recorder.payloads() == [b"after-restart"])

    client.close()
    assert errors == []
    assert any("subscription restored" in r.getMessage() for r in caplog.records)


def test_a_silent_connection_is_detected_by_health_check_and_replaced(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    adapter = RedisPubSubAdapter(
        RawMessage,
        recorder.processor,
        "orders",
        url=private_redis.url,
        health_check_interval=0.2,
        read_timeout=0.4,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.2,
    )
    client = redis.Redis.from_url(private_redis.url)

    with caplog.at_level(logging.INFO, "missive_redis"), running(adapter) as errors:
        publish_until_received(client, "orders", recorder)
        # The server answers nobody for 1.5 s: PING gets no PONG in time.
        client.execute_command("CLIENT", "PAUSE", "1500", "ALL")  # type: ignore[no-untyped-call]
        wait_until(
            lambda: any("ConnectionSilent" in r.getMessage() for r in caplog.records),
            timeout=5,
        )
        recorder.clear()
        publish_until_received(client, "orders", recorder)

    client.close()
    assert errors == []
    assert any("subscription restored" in r.getMessage() for r in caplog.records)


def test_sigterm_stops_a_real_process_gracefully(
    redis_url: str, redis_client: redis.Redis, prefix: str, tmp_path: Path
) -> None:
    channel = prefix + "orders"
    log = tmp_path / "stderr.log"
    process = start_missive(
        [
            "run",
            "redis_test_app:pubsub_processor",
            "--adapter",
            "redis",
            "--message",
            "raw",
            "-o",
            f"channels={channel}",
            "-o",
            f"url={redis_url}",
        ],
        {"MISSIVE_TEST_PREFIX": prefix, "MISSIVE_TEST_REDIS_URL": redis_url},
        log=log,
    )
    try:
        wait_until(lambda: redis_client.pubsub_numsub(channel)[0][1] >= 1, timeout=30)
        for n in range(5):
            redis_client.publish(channel, b"m-%d" % n)
        wait_until(lambda: redis_client.llen(prefix + "pubsub") == 5)

        status = stop_process(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    stderr = log.read_text()
    assert status == 0, stderr
    assert "SIGTERM received: stopping" in stderr
    assert "RedisPubSubAdapter stopped" in stderr
    assert redis_client.lrange(prefix + "pubsub", 0, -1) == [
        b"m-%d" % n for n in range(5)
    ]
    wait_until(lambda: redis_client.pubsub_numsub(channel)[0][1] == 0, timeout=5)
