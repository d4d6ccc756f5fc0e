"""Routing: exactly one matching handler, and the DLQ policy for the rest."""

from __future__ import annotations

import pytest

import missive
from missive import Outcome, RawMessage


def test_the_one_matching_handler_gets_message_and_handling_context(processor):
    received = []

    @processor.handle_for(lambda m: m.raw_data == b"a")
    def handle_a(message, ctx):
        received.append((message, ctx))
        ctx.ack()

    @processor.handle_for(lambda m: m.raw_data == b"b")
    def handle_b(message, ctx):
        raise AssertionError("wrong handler")

    message = RawMessage(b"a")
    with processor.test_client() as client:
        outcome = client.send(message)

    assert outcome is Outcome.ACKED
    assert client.acked == [message]
    assert client.nacked == []
    [(got, ctx)] = received
    assert got is message
    assert isinstance(ctx, missive.HandlingContext)
    assert ctx.message is message


def test_nack_reaches_the_adapter(processor):
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.nack())
    message = RawMessage(b"x")

    with processor.test_client() as client:
        outcome = client.send(message)

    assert outcome is Outcome.NACKED
    assert client.nacked == [message]
    assert client.acked == []


def test_no_matching_handler_is_dead_lettered_and_acked(processor, dlq):
    processor.handle_for(lambda m: False)(lambda message, ctx: ctx.ack())
    processor.set_dlq(dlq)
    message = RawMessage(b"nobody wants me")

    with processor.test_client() as client:
        outcome = client.send(message)

    assert outcome is Outcome.DEAD_LETTERED
    assert dlq == {message.message_id: (message, "no matching handlers")}
    assert client.acked == [message]


def test_multiple_matching_handlers_is_dead_lettered_and_acked(processor, dlq):
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())
    processor.handle_for(lambda m: m.raw_data == b"x")(lambda message, ctx: ctx.ack())
    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        client.send(message)

    assert dlq[message.message_id] == (message, "multiple matching handlers")
    assert client.acked == [message]


def test_handler_exception_sends_message_to_dlq_with_its_text_and_acks(processor, dlq):
    @processor.handle_for(lambda m: True)
    def explode(message, ctx):
        raise ValueError("bad amount")

    processor.set_dlq(dlq)
    first, second = RawMessage(b"1"), RawMessage(b"2")

    with processor.test_client() as client:
        client.send(first)
        client.send(second)

    assert dlq[first.message_id] == (first, "bad amount")
    assert dlq[second.message_id] == (second, "bad amount")
    assert client.acked == [first, second]


def test_handler_exception_without_text_uses_its_type_as_reason(processor, dlq):
    processor.handle_for(lambda m: True)(lambda message, ctx: {}["missing"])
    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        client.send(message)

    assert dlq[message.message_id][1] == "'missing'"


def test_exception_after_ack_still_dead_letters_instead_of_acking_twice(processor, dlq):
    @processor.handle_for(lambda m: True)
    def ack_then_fail(message, ctx):
        ctx.ack()
        raise RuntimeError("failed after ack")

    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        outcome = client.send(message)

    assert outcome is Outcome.DEAD_LETTERED
    assert client.acked == [message]
    assert dlq[message.message_id][1] == "failed after ack"


def test_without_dlq_no_match_raises_and_does_not_ack(processor):
    processor.handle_for(lambda m: False)(lambda message, ctx: ctx.ack())
    message = RawMessage(b"x")

    with processor.test_client() as client:
        with pytest.raises(missive.NoMatchingHandler) as raised:
            client.send(message)

    assert isinstance(raised.value, RuntimeError)
    assert client.acked == [] and client.nacked == []


def test_without_dlq_multiple_matches_raise_and_do_not_ack(processor):
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())

    with processor.test_client() as client:
        with pytest.raises(missive.MultipleMatchingHandlers):
            client.send(RawMessage(b"x"))

    assert client.acked == [] and client.nacked == []


def test_without_dlq_the_handlers_own_exception_propagates_unacked(processor):
    class PaymentDeclined(Exception):
        pass

    @processor.handle_for(lambda m: True)
    def decline(message, ctx):
        ctx.ack()
        raise PaymentDeclined("card expired")

    with processor.test_client() as client:
        with pytest.raises(PaymentDeclined, match="card expired"):
            client.send(RawMessage(b"x"))

    assert client.acked == [] and client.nacked == []


def test_processing_continues_with_the_next_message_after_a_failure(processor, dlq):
    @processor.handle_for(lambda m: True)
    def sometimes(message, ctx):
        if message.raw_data == b"bad":
            raise ValueError("bad")
        ctx.ack()

    processor.set_dlq(dlq)
    messages = [RawMessage(b"ok1"), RawMessage(b"bad"), RawMessage(b"ok2")]

    with processor.test_client() as client:
        outcomes = [client.send(message) for message in messages]

    assert outcomes == [Outcome.ACKED, Outcome.DEAD_LETTERED, Outcome.ACKED]
    assert client.acked == messages


def test_second_handler_for_the_same_matcher_raises_at_registration(processor):
    def matcher(message):
        return True

    processor.handle_for(matcher)(lambda message, ctx: None)

    with pytest.raises(missive.HandlerAlreadyRegistered) as raised:
        processor.handle_for(matcher)(lambda message, ctx: None)

    assert isinstance(raised.value, ValueError)


def test_matchers_can_be_classes_with_call(processor):
    class HasPrefix:
        def __init__(self, prefix: bytes) -> None:
            self.prefix = prefix

        def __call__(self, message: RawMessage) -> bool:
            return message.raw_data.startswith(self.prefix)

    handled = []
    processor.handle_for(HasPrefix(b"order:"))(
        lambda message, ctx: (handled.append(message), ctx.ack())
    )

    with processor.test_client() as client:
        client.send(RawMessage(b"order:1"))

    assert [m.raw_data for m in handled] == [b"order:1"]


def test_matcher_that_raises_is_dead_lettered_with_its_name(processor, dlq):
    def broken_matcher(message):
        raise KeyError("label")

    processor.handle_for(broken_matcher)(lambda message, ctx: ctx.ack())
    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        client.send(message)

    reason = dlq[message.message_id][1]
    assert "broken_matcher" in reason
    assert "KeyError" in reason


def test_handler_registered_during_a_run_applies_from_the_next_message(processor):
    with processor.test_client() as client:
        processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())
        client.send(RawMessage(b"x"))

    assert len(client.acked) == 1


def test_handle_for_returns_the_handler_so_it_stays_callable(processor):
    def handler(message, ctx):
        return None

    assert processor.handle_for(lambda m: True)(handler) is handler
