"""How a handler settles its message: once, and the anti-pattern of never."""

from __future__ import annotations

import logging

import missive
from missive import Outcome, RawMessage


def test_handler_that_neither_acks_nor_nacks_is_logged_and_nacked(processor, caplog):
    @processor.handle_for(lambda m: True)
    def forgetful(message, ctx):
        pass

    message = RawMessage(b"x")

    with caplog.at_level(logging.WARNING, logger="missive"):
        with processor.test_client() as client:
            outcome = client.send(message)

    assert outcome is Outcome.NACKED
    assert client.nacked == [message]
    assert client.acked == []
    assert "without acking or nacking" in caplog.text
    assert repr(message.message_id) in caplog.text


def test_acking_twice_is_an_error_that_dead_letters_the_message(processor, dlq):
    @processor.handle_for(lambda m: True)
    def twice(message, ctx):
        ctx.ack()
        ctx.ack()

    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        client.send(message)

    assert client.acked == [message]
    assert "already acked" in dlq[message.message_id][1]


def test_nack_after_ack_raises_message_already_settled(processor):
    raised = []

    @processor.handle_for(lambda m: True)
    def undecided(message, ctx):
        ctx.ack()
        try:
            ctx.nack()
        except missive.MessageAlreadySettled as exc:
            raised.append(exc)

    with processor.test_client() as client:
        client.send(RawMessage(b"x"))

    assert len(raised) == 1
    assert isinstance(raised[0], RuntimeError)
    assert len(client.acked) == 1


def test_processing_context_acks_and_nacks_immediately(processor):
    message = RawMessage(b"x")

    with processor.test_client() as client:
        ctx = client.processing_ctx
        ctx.ack(message)
        ctx.nack(message)

    assert client.acked == [message]
    assert client.nacked == [message]


def test_handling_context_block_runs_hooks_and_settles_on_exit(processor):
    calls = []
    processor.before_handling(lambda p, h: calls.append("before"))
    processor.after_handling(lambda p, h: calls.append("after"))
    message = RawMessage(b"x")

    with processor.test_client() as client:
        with client.processing_ctx.handling_context(message) as handling:
            calls.append("body")
            handling.ack()

    assert calls == ["before", "body", "after"]
    assert client.acked == [message]
