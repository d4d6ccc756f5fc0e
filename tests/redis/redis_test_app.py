"""Processors the Redis tests run in subprocesses with ``missive run``.

They record what they handle in Redis, under ``$MISSIVE_TEST_PREFIX``, so the
test can check the outcome after killing the process:

- ``<prefix>handled``: hash, message id -> how many times it was handled;
- ``<prefix>by:<consumer>``: set of the ids that consumer handled;
- ``<prefix>dlq:reasons`` / ``dlq:payloads``: the DLQ (``RedisHashDLQ``);
- ``<prefix>pubsub``: list of Pub/Sub payloads handled;
- ``<prefix>ready:<consumer>``: set once the processor started.

A payload starting with ``poison`` makes the handler raise.  ``$MISSIVE_TEST_
SLEEP`` (seconds) slows every message down.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from redis_testing import RedisHashDLQ

from missive import HandlingContext, ProcessingContext, Processor, RawMessage

PREFIX = os.environ.get("MISSIVE_TEST_PREFIX", "missive-test:app:")
CONSUMER = os.environ.get("MISSIVE_TEST_CONSUMER", "pubsub")
SLEEP = float(os.environ.get("MISSIVE_TEST_SLEEP", "0"))
_client = redis.Redis.from_url(os.environ.get("MISSIVE_TEST_REDIS_URL", ""))


class PoisonError(Exception):
    """The payload asked the handler to fail."""


streams_processor: Processor[RawMessage] = Processor()
streams_processor.set_dlq(RedisHashDLQ(_client, PREFIX))  # type: ignore[arg-type]


@streams_processor.before_processing
def _ready(ctx: ProcessingContext[Any]) -> None:
    _client.set(PREFIX + "ready:" + CONSUMER, os.getpid())


@streams_processor.handle_for(lambda message: True)
def record_entry(message: RawMessage, ctx: HandlingContext[RawMessage]) -> None:
    if message.raw_data.startswith(b"poison"):
        raise PoisonError(f"poisoned payload in {message.message_id!r}")
    if SLEEP:
        time.sleep(SLEEP)
    pipe = _client.pipeline(transaction=False)
    pipe.hincrby(PREFIX + "handled", message.message_id, 1)
    pipe.sadd(PREFIX + "by:" + CONSUMER, message.message_id)
    pipe.execute()
    ctx.ack()


pubsub_processor: Processor[RawMessage] = Processor()


@pubsub_processor.handle_for(lambda message: True)
def record_publication(message: RawMessage, ctx: HandlingContext[RawMessage]) -> None:
    _client.rpush(PREFIX + "pubsub", message.raw_data)
    ctx.ack()
