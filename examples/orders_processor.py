"""A small order processor: the quick start of the README.

Run it over the sample messages with the stdin adapter::

    missive run examples.orders_processor:processor --adapter stdin \
        --message json -o path=examples/orders.jsonl

or pipe them in: ``missive run ... --adapter stdin --message json
< examples/orders.jsonl``.  Each message is routed by its ``type``; the ones
that cannot be processed land in the in-memory DLQ, printed at the end.
"""

from __future__ import annotations

from missive import HandlingContext, JSONMessage, ProcessingContext, Processor
from missive.dlq.memory import MemoryDLQ

processor: Processor[JSONMessage] = Processor()
dead_letters: MemoryDLQ[JSONMessage] = MemoryDLQ()
processor.set_dlq(dead_letters)


def of_type(kind: str) -> object:
    """A matcher for JSON objects whose ``type`` is ``kind``."""

    def matcher(message: JSONMessage) -> bool:
        body = message.get_json()
        return isinstance(body, dict) and body.get("type") == kind

    matcher.__qualname__ = f"of_type({kind!r})"
    return matcher


@processor.handle_for(of_type("order-created"))
def record_order(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
    order = message.get_json()
    print(f"order-created  -> record_order: order {order['id']} for {order['total']}")
    ctx.ack()


@processor.handle_for(of_type("order-cancelled"))
def cancel_order(message: JSONMessage, ctx: HandlingContext[JSONMessage]) -> None:
    order = message.get_json()
    if "id" not in order:
        raise ValueError("a cancellation needs an order id")
    print(f"order-cancelled -> cancel_order: order {order['id']}")
    ctx.ack()


@processor.after_processing
def report_dead_letters(ctx: ProcessingContext[JSONMessage]) -> None:
    print(f"dead letters: {len(dead_letters)}")
    for message_id in dead_letters:
        message, reason = dead_letters[message_id]
        print(f"  DLQ <- {message.raw_data[:40]!r}: {reason}")
