"""Redis transports for Missive.

- ``redis``: :class:`RedisPubSubAdapter`, Pub/Sub channels and patterns,
  at-most-once;
- ``redis-streams``: :class:`RedisStreamAdapter`, Streams consumer groups,
  at-least-once.

Both are registered in the ``missive.adapters`` entry-point group, so
``missive.adapters.load("redis-streams")`` and ``missive run --adapter
redis-streams`` find them once this distribution is installed.
"""

from __future__ import annotations

from missive_redis.pubsub import RedisPubSubAdapter
from missive_redis.streams import ConsumerGroupLost, RedisStreamAdapter

__all__ = ["ConsumerGroupLost", "RedisPubSubAdapter", "RedisStreamAdapter"]
