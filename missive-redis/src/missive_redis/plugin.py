"""The entry point of ``missive-redis``: registers both Redis adapters.

``missive.adapters.load("redis")`` and ``load("redis-streams")`` import this
module, and so does ``from missive.adapters.redis import ...``, which is why
it re-exports the adapter classes.
"""

from __future__ import annotations

from typing import Any

from missive.adapters import Adapter
from missive.plugins import hookimpl
from missive_redis.pubsub import RedisPubSubAdapter
from missive_redis.streams import ConsumerGroupLost, RedisStreamAdapter

__all__ = ["ConsumerGroupLost", "RedisPubSubAdapter", "RedisStreamAdapter"]


@hookimpl
def missive_adapters() -> dict[str, type[Adapter[Any]]]:
    """Provide ``redis`` (Pub/Sub) and ``redis-streams`` (consumer groups)."""
    return {"redis": RedisPubSubAdapter, "redis-streams": RedisStreamAdapter}
