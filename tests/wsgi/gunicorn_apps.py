"""Applications the end-to-end tests serve with gunicorn (``--chdir`` here).

Every process appends what happens to ``$MISSIVE_TEST_DIR/events.log``, one
short line per event, so that a test can count hooks per worker:
``before <pid>``, ``after <pid>``, ``handled <pid> <bytes> <transport_id>``
and ``started <n>`` when a slow message begins.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from missive import HandlingContext, JSONMessage, ProcessingContext, Processor
from missive.dlq.memory import MemoryDLQ
from missive_wsgi import GitHubSignature, StandardWebhooksSignature, WSGIAdapter

logging.basicConfig(
    level=logging.INFO,
    stream=sys.stderr,
    format="%(levelname)s %(name)s [%(process)d] %(message)s",
)

EVENTS = Path(os.environ.get("MISSIVE_TEST_DIR", ".")) / "events.log"
SECRETS = os.environ.get("MISSIVE_TEST_SECRETS", "whsec_c2VjcmV0").split()


def record(line: str) -> None:
    # One write of a short line in append mode: lines from workers don't mix.
    with open(EVENTS, "a") as events:
        events.write(line + "\n")


class PickyDLQ(MemoryDLQ[JSONMessage]):
    """A DLQ whose storage fails for messages that ask for it."""

    def __setitem__(self, message_id: bytes, value: tuple[JSONMessage, str]) -> None:
        if b"unstorable" in value[0].raw_data:
            raise OSError("the DLQ's disk is full")
        super().__setitem__(message_id, value)


def wants_action(message: JSONMessage) -> bool:
    payload = message.get_json()
    return isinstance(payload, dict) and "action" in payload


def build_processor(*, dlq: bool) -> Processor[JSONMessage]:
    processor: Processor[JSONMessage] = Processor()
    if dlq:
        processor.set_dlq(PickyDLQ())

    @processor.before_processing
    def before(ctx: ProcessingContext[JSONMessage]) -> None:
        record(f"before {os.getpid()}")

    @processor.after_processing
    def after(ctx: ProcessingContext[JSONMessage]) -> None:
        record(f"after {os.getpid()}")

    @processor.handle_for(wants_action)
    def act(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
        payload: dict[str, Any] = message.get_json()
        transport_id = message.attributes.get("transport_id", "-")
        record(f"handled {os.getpid()} {len(message.raw_data)} {transport_id}")
        if payload.get("sleep"):
            record(f"started {payload.get('n')}")
            time.sleep(min(float(payload["sleep"]), 5.0))
        action = payload["action"]
        if action == "ack":
            ctx.ack()
        elif action == "nack":
            ctx.nack()
        else:
            raise RuntimeError(f"handler failed on purpose: {action}")

    return processor


adapter = WSGIAdapter(JSONMessage, build_processor(dlq=True))
no_dlq_adapter = WSGIAdapter(JSONMessage, build_processor(dlq=False))
signed_adapter = WSGIAdapter(
    JSONMessage,
    build_processor(dlq=True),
    path="/webhooks",
    signature=StandardWebhooksSignature(SECRETS),
)
github_adapter = WSGIAdapter(
    JSONMessage, build_processor(dlq=True), signature=GitHubSignature(SECRETS)
)
