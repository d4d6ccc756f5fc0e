"""Dead letter queues: the mapping contract, the memory backend, failures."""

from __future__ import annotations

import datetime
import threading

import pytest

import missive
import missive.dlq
from missive import Outcome, RawMessage
from missive.dlq.memory import MemoryDLQ


def _failing_processor(dlq):
    processor = missive.Processor()
    processor.handle_for(lambda m: True)(lambda message, ctx: 1 / 0)
    processor.set_dlq(dlq)
    return processor


def test_memory_dlq_is_a_full_mutable_mapping():
    dlq = MemoryDLQ()
    message = RawMessage(b"x")

    dlq[message.message_id] = (message, "reason")

    assert dlq[message.message_id] == (message, "reason")
    assert list(dlq) == [message.message_id]
    assert len(dlq) == 1
    del dlq[message.message_id]
    assert len(dlq) == 0
    with pytest.raises(KeyError):
        dlq[message.message_id]


def test_memory_dlq_oldest_is_the_first_stored_with_an_aware_utc_time():
    dlq = MemoryDLQ()
    first, second = RawMessage(b"1"), RawMessage(b"2")
    before = datetime.datetime.now(datetime.UTC)
    dlq[first.message_id] = (first, "first")
    dlq[second.message_id] = (second, "second")

    message, reason, inserted = dlq.oldest()

    assert (message, reason) == (first, "first")
    assert inserted.tzinfo is not None
    assert inserted.utcoffset() == datetime.timedelta(0)
    assert before <= inserted <= datetime.datetime.now(datetime.UTC)


def test_memory_dlq_oldest_of_an_empty_dlq_raises_lookup_error():
    with pytest.raises(LookupError):
        MemoryDLQ().oldest()


def test_memory_dlq_takes_concurrent_writers():
    dlq = MemoryDLQ()

    def write(n):
        for i in range(500):
            message = RawMessage(b"%d-%d" % (n, i))
            dlq[message.message_id] = (message, "r")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(dlq) == 2000


def test_a_dlq_that_cannot_store_means_no_ack_and_a_dead_letter_error():
    class BrokenDLQ(dict):
        def __setitem__(self, key, value):
            raise OSError("disk full")

    processor = _failing_processor(BrokenDLQ())
    message = RawMessage(b"x")

    with processor.test_client() as client:
        with pytest.raises(missive.DeadLetterError, match="disk full") as raised:
            client.send(message)

    assert isinstance(raised.value.__cause__, OSError)
    assert client.acked == [] and client.nacked == []


def test_dlq_with_add_dead_letter_receives_failure_details():
    class DetailedDLQ(dict):
        def __init__(self):
            super().__init__()
            self.details = []

        def add_dead_letter(self, message, reason, details):
            self[message.message_id] = (message, reason)
            self.details.append(details)

    dlq = DetailedDLQ()
    processor = _failing_processor(dlq)

    with processor.test_client() as client:
        outcome = client.send(RawMessage(b"x"))

    assert outcome is Outcome.DEAD_LETTERED
    [details] = dlq.details
    assert details["error_type"] == "builtins.ZeroDivisionError"
    assert "ZeroDivisionError" in details["traceback"]
    assert details["adapter"] == "TestAdapter"


def test_set_dlq_none_stops_dead_lettering():
    processor = _failing_processor({})
    processor.set_dlq(None)

    with processor.test_client() as client:
        with pytest.raises(ZeroDivisionError):
            client.send(RawMessage(b"x"))


def test_dlq_backends_load_by_name():
    assert missive.dlq.load("memory") is MemoryDLQ
    assert "memory" in missive.dlq.names()


def test_adapter_can_dead_letter_a_message_it_refuses_before_handling():
    dlq = MemoryDLQ()
    processor = missive.Processor()
    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        outcome = client.processing_ctx.dead_letter(message, "delivered 6 times")

    assert outcome is Outcome.DEAD_LETTERED
    assert dlq[message.message_id] == (message, "delivered 6 times")
    assert client.acked == [message]


def test_adapter_dead_letter_without_a_dlq_raises_and_does_not_ack():
    processor = missive.Processor()
    message = RawMessage(b"x")

    with processor.test_client() as client:
        with pytest.raises(missive.DeadLetterError, match="no DLQ is set"):
            client.processing_ctx.dead_letter(message, "poison")

    assert client.acked == []


def test_rebuild_keeps_attributes():
    rebuilt = RawMessage.rebuild(b"x", b"id-1", attributes={"stream": "orders"})

    assert rebuilt.attributes == {"stream": "orders"}
    assert rebuilt == RawMessage(b"", message_id=b"id-1")
