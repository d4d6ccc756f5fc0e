"""Processors the reliability tests run in real processes with ``missive run``.

Each process appends one line per event to ``$MISSIVE_REL_RECORD`` with a
single ``write`` in append mode, so lines survive a SIGKILL and never mix:
``KIND MESSAGE_ID PAYLOAD PID`` where KIND is ``R`` (ready), ``S`` (handler
started), ``H`` (handled; written just before the handler acks) or ``K`` (the
process is about to SIGKILL itself at a chosen point).

- payloads starting with ``poison`` make the handler raise (dead letter);
- ``$MISSIVE_REL_SLEEP`` seconds of sleep per message;
- ``$MISSIVE_REL_KILL`` chooses a point where the process SIGKILLs itself
  once per message id: ``before-dlq-commit`` (the handler failed, nothing
  stored yet) or ``after-dlq-commit`` (stored, not yet acked);
- the DLQ is a :class:`~missive_sqlite_dlq.SQLiteDLQ` at ``$MISSIVE_REL_DLQ``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from missive import HandlingContext, ProcessingContext, Processor, RawMessage
from missive_sqlite_dlq import SQLiteDLQ

RECORD = os.environ.get("MISSIVE_REL_RECORD", os.devnull)
SLEEP = float(os.environ.get("MISSIVE_REL_SLEEP", "0"))
KILL_POINT = os.environ.get("MISSIVE_REL_KILL", "")
CONSUMER = os.environ.get("MISSIVE_REL_CONSUMER", "-")

_record_fd = os.open(RECORD, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def record(kind: str, message_id: bytes | str, payload: bytes | str = "-") -> None:
    """Append one event line with a single write (atomic in append mode)."""
    if isinstance(message_id, bytes):
        message_id = message_id.decode("utf-8", "replace")
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    line = f"{kind} {message_id} {payload or '-'} {os.getpid()}\n"
    os.write(_record_fd, line.encode())


class PoisonError(Exception):
    """The payload asked the handler to fail."""


class CrashingDLQ(SQLiteDLQ[RawMessage]):
    """A SQLite DLQ that SIGKILLs its process once per id at ``KILL_POINT``.

    A marker file per message id, created before the kill, makes the kill
    happen once: the restarted process gets past the same point.
    """

    def add_dead_letter(
        self, message: RawMessage, reason: str, details: Mapping[str, Any]
    ) -> None:
        if KILL_POINT == "before-dlq-commit":
            self._kill_once(message)
        super().add_dead_letter(message, reason, details)
        if KILL_POINT == "after-dlq-commit":
            self._kill_once(message)

    def _kill_once(self, message: RawMessage) -> None:
        marker = Path(f"{RECORD}.killed-{message.message_id.hex()}")
        try:
            marker.touch(exist_ok=False)
        except FileExistsError:
            return
        record("K", message.message_id, KILL_POINT)
        os.kill(os.getpid(), signal.SIGKILL)


def _build_stream_processor() -> Processor[RawMessage]:
    processor: Processor[RawMessage] = Processor()
    dlq_path = os.environ.get("MISSIVE_REL_DLQ")
    if dlq_path:
        processor.set_dlq(CrashingDLQ(dlq_path, busy_timeout=30))

    @processor.before_processing
    def ready(ctx: ProcessingContext[RawMessage]) -> None:
        record("R", CONSUMER)

    @processor.handle_for(lambda message: True)
    def handle(message: RawMessage, ctx: HandlingContext[RawMessage]) -> None:
        if message.raw_data.startswith(b"poison"):
            raise PoisonError(f"poisoned payload in {message.message_id!r}")
        if SLEEP:
            record("S", message.message_id, message.raw_data)
            time.sleep(SLEEP)
        record("H", message.message_id, message.raw_data)
        ctx.ack()

    return processor


stream_processor = _build_stream_processor()

pubsub_processor: Processor[RawMessage] = Processor()


@pubsub_processor.before_processing
def _pubsub_ready(ctx: ProcessingContext[RawMessage]) -> None:
    record("R", CONSUMER)


@pubsub_processor.handle_for(lambda message: True)
def _record_publication(message: RawMessage, ctx: HandlingContext[RawMessage]) -> None:
    if SLEEP:
        time.sleep(SLEEP)
    record("H", "pubsub", message.raw_data)
    ctx.ack()
