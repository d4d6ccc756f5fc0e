"""Dispatch speed: Missive against a hand-written loop doing the same work.

The baseline evaluates every matcher, checks that exactly one matched, calls
the handler, and records the ack: what a processor must do, written inline
with no framework.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import missive
from benchmarks.harness import Comparison, compare, rate
from missive import JSONMessage, RawMessage

#: Dispatch targets from the speed issue: ratio to the hand-written loop.
TARGETS = {1: 0.3, 10: 0.6, 100: 0.8}


def _payloads(handlers: int, count: int) -> list[bytes]:
    return [b"%d" % (i % handlers) for i in range(count)]


def _value_matcher(value: bytes) -> Callable[[RawMessage], bool]:
    def matcher(message: RawMessage) -> bool:
        return message.raw_data == value

    return matcher


def _hand_written_loop(handlers: int) -> Callable[[int], float]:
    """The floor: matchers, the exactly-one check, the handler, the ack."""
    routes: list[tuple[Callable[[Any], bool], Callable[[Any, Any], None]]] = []
    for i in range(handlers):

        def handler(message: RawMessage, ack: Callable[[Any], None]) -> None:
            ack(message)

        routes.append((_value_matcher(b"%d" % i), handler))

    def workload(count: int) -> float:
        messages = [RawMessage(payload) for payload in _payloads(handlers, count)]
        acked: list[RawMessage] = []
        ack = acked.append
        started = time.perf_counter()
        for message in messages:
            matched = [handler for matcher, handler in routes if matcher(message)]
            if len(matched) != 1:
                raise RuntimeError("routing failed")
            matched[0](message, ack)
        result = rate(count, started)
        assert len(acked) == count
        return result

    return workload


def _acking_processor(handlers: int) -> missive.Processor[Any]:
    processor: missive.Processor[Any] = missive.Processor()
    for i in range(handlers):

        def handler(message: RawMessage, ctx: missive.HandlingContext[Any]) -> None:
            ctx.ack()

        processor.handle_for(_value_matcher(b"%d" % i))(handler)
    return processor


def _raw_messages(handlers: int) -> Callable[[int], list[missive.Message]]:
    return lambda count: [RawMessage(p) for p in _payloads(handlers, count)]


def _workload(
    processor: missive.Processor[Any],
    make_messages: Callable[[int], list[missive.Message]],
    *,
    through_handle: bool = False,
) -> Callable[[int], float]:
    """Time sending messages through the test client (or straight to
    ``ProcessingContext.handle``); every message must end up acked."""

    def workload(count: int) -> float:
        messages = make_messages(count)
        with processor.test_client() as client:
            send = client.processing_ctx.handle if through_handle else client.send
            started = time.perf_counter()
            for message in messages:
                send(message)
            result = rate(count, started)
        assert len(client.acked) == count
        return result

    return workload


def run(quick: bool) -> list[Comparison]:
    count = 2_000 if quick else 50_000
    rounds = 2 if quick else 7
    results = []

    for handlers in (1, 10, 100, 1000):
        n = max(200, count // handlers) if handlers >= 100 else count
        processor = _acking_processor(handlers)
        results.append(
            compare(
                f"test client, {handlers} handler(s)",
                baseline_name="hand-written loop",
                candidate=_workload(processor, _raw_messages(handlers)),
                baseline=_hand_written_loop(handlers),
                count=n,
                rounds=rounds,
                target=TARGETS.get(handlers),
            )
        )
        results.append(
            compare(
                f"ProcessingContext.handle, {handlers} handler(s)",
                baseline_name="hand-written loop",
                candidate=_workload(
                    processor, _raw_messages(handlers), through_handle=True
                ),
                baseline=_hand_written_loop(handlers),
                count=n,
                rounds=rounds,
            )
        )

    hooked = _acking_processor(1)
    hooked.before_processing(lambda ctx: None)
    hooked.after_processing(lambda ctx: None)
    hooked.before_handling(lambda processing_ctx, handling_ctx: None)
    hooked.after_handling(lambda processing_ctx, handling_ctx: None)
    results.append(
        compare(
            "test client, 1 handler, all four hooks",
            baseline_name="hand-written loop",
            candidate=_workload(hooked, _raw_messages(1)),
            baseline=_hand_written_loop(1),
            count=count,
            rounds=rounds,
        )
    )

    json_processor: missive.Processor[Any] = missive.Processor()
    json_processor.handle_for(lambda m: m.get_json()["type"] == "order")(
        lambda message, ctx: ctx.ack()
    )
    results.append(
        compare(
            "test client, JSON decoding in the matcher",
            baseline_name="hand-written loop with json.loads",
            candidate=_workload(
                json_processor,
                lambda count: [JSONMessage(_ORDER) for _ in range(count)],
            ),
            baseline=_json_hand_written_loop(),
            count=count,
            rounds=rounds,
        )
    )

    results.append(
        compare(
            "indexed field matchers, 1000 handlers",
            baseline_name="the same with 10 handlers",
            candidate=_indexed_workload(1000),
            baseline=_indexed_workload(10),
            count=count,
            rounds=rounds,
            target=0.8,
            note="each handler matches field('type').equals(<its own value>)",
        )
    )

    # Dead letters are logged at WARNING; measure the record, not the terminal.
    missive_logger = logging.getLogger("missive")
    missive_logger.addHandler(logging.NullHandler())
    missive_logger.propagate = False
    failing: missive.Processor[Any] = missive.Processor()
    failing.set_dlq({})
    results.append(
        compare(
            "test client, every message dead-lettered",
            baseline_name="hand-written loop storing into a dict",
            candidate=_workload(failing, _raw_messages(1)),
            baseline=_dead_letter_hand_written_loop(),
            count=count,
            rounds=rounds,
            note="no handler matches, so each message is stored in a dict DLQ "
            "and acked; Missive also creates a WARNING log record per dead letter "
            "(sent to a NullHandler here), the baseline does not log",
        )
    )
    return results


def _indexed_workload(handlers: int) -> Callable[[int], float]:
    from missive.matchers import field

    processor: missive.Processor[Any] = missive.Processor()
    for i in range(handlers):
        processor.handle_for(field("type").equals(f"event-{i}"))(
            lambda message, ctx: ctx.ack()
        )
    return _workload(
        processor,
        lambda count: [
            JSONMessage(b'{"type": "event-%d"}' % (i % handlers)) for i in range(count)
        ],
    )


_ORDER = b'{"type": "order", "id": 1}'


def _json_hand_written_loop() -> Callable[[int], float]:
    import json

    def workload(count: int) -> float:
        payloads = [_ORDER] * count
        acked = []
        started = time.perf_counter()
        for payload in payloads:
            body = json.loads(payload)
            matched = [1 for _ in (0,) if body["type"] == "order"]
            if len(matched) != 1:
                raise RuntimeError("routing failed")
            acked.append(payload)
        return rate(count, started)

    return workload


def _dead_letter_hand_written_loop() -> Callable[[int], float]:
    def workload(count: int) -> float:
        messages = [RawMessage(b"stray") for _ in range(count)]
        dlq: dict[bytes, tuple[RawMessage, str]] = {}
        acked = []
        started = time.perf_counter()
        for message in messages:
            matched: list[object] = []
            if len(matched) != 1:
                dlq[message.message_id] = (message, "no matching handlers")
                acked.append(message)
        return rate(count, started)

    return workload
