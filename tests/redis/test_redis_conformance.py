"""Both Redis adapters pass the conformance kit, against a real server."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from missive import Processor, RawMessage
from missive.adapters import Adapter
from missive.testing import AdapterContract, TransportOutcome
from missive_redis import RedisPubSubAdapter, RedisStreamAdapter

pytest_plugins = ["missive.testing"]

GROUP = "conformance"


class TestRedisPubSubAdapter(AdapterContract):
    """Pub/Sub has nothing to acknowledge: only the adapter's calls are seen."""

    settles_on_transport = False

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str, redis_client: redis.Redis, prefix: str) -> None:
        self.url = redis_url
        self.client = redis_client
        self.channel = prefix + "conformance"

    def make_adapter(self, processor: Processor[Any]) -> Adapter[Any]:
        return RedisPubSubAdapter(
            RawMessage, processor, self.channel, url=self.url, reconnect_min_delay=0.05
        )

    def publish(self, adapter: Adapter[Any], payload: bytes) -> object:
        return self.client.publish(self.channel, payload)

    def ready(self, adapter: Adapter[Any]) -> bool:
        # A message published before the SUBSCRIBE took effect is not delivered.
        [(_, subscribers)] = self.client.pubsub_numsub(self.channel)
        return int(subscribers) > 0


class TestRedisStreamAdapter(AdapterContract):
    """A nacked entry stays pending and is read again; an acked one is XACKed."""

    redelivers_nacked = True

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str, redis_client: redis.Redis, prefix: str) -> None:
        self.url = redis_url
        self.client: Any = redis_client
        self.stream = prefix + "conformance"

    def make_adapter(self, processor: Processor[Any]) -> Adapter[Any]:
        return RedisStreamAdapter(
            RawMessage,
            processor,
            self.stream,
            url=self.url,
            group=GROUP,
            consumer="c1",
            block_ms=100,
            ack_delay_ms=50,
            reconnect_min_delay=0.05,
        )

    def publish(self, adapter: Adapter[Any], payload: bytes) -> object:
        return self.client.xadd(self.stream, {"data": payload})

    def transport_outcome(
        self, adapter: Adapter[Any], receipt: object
    ) -> TransportOutcome:
        assert isinstance(receipt, bytes)
        pending = self.client.xpending_range(
            self.stream, GROUP, min=receipt, max=receipt, count=1
        )
        if pending:
            return None
        groups = {g["name"]: g for g in self.client.xinfo_groups(self.stream)}
        last_delivered = groups[GROUP.encode()]["last-delivered-id"]
        # Read by the group and no longer pending: acknowledged.
        return "acked" if _entry_id(last_delivered) >= _entry_id(receipt) else None


def _entry_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)
