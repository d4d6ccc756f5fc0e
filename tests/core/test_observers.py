"""Plugins that observe every message's outcome."""

from __future__ import annotations

import pytest

import missive
from missive import Outcome, RawMessage
from missive.plugins import hookimpl


class Recorder:
    def __init__(self):
        self.seen = []

    @hookimpl
    def missive_message_outcome(self, processing_ctx, message, outcome, reason):
        self.seen.append((message.raw_data, outcome, reason))


@pytest.fixture
def recorder(isolated_registry):
    plugin = Recorder()
    isolated_registry.register(plugin)
    return plugin


def test_observer_sees_acked_nacked_dead_lettered_and_failed(processor, recorder):
    @processor.handle_for(lambda m: m.raw_data in (b"ack", b"nack", b"boom"))
    def handle(message, ctx):
        if message.raw_data == b"boom":
            raise ValueError("boom")
        ctx.ack() if message.raw_data == b"ack" else ctx.nack()

    with processor.test_client() as client:
        client.send(RawMessage(b"ack"))
        client.send(RawMessage(b"nack"))
        with pytest.raises(ValueError, match="boom"):
            client.send(RawMessage(b"boom"))
        processor.set_dlq({})
        client.send(RawMessage(b"stray"))

    assert recorder.seen == [
        (b"ack", Outcome.ACKED, None),
        (b"nack", Outcome.NACKED, None),
        (b"boom", Outcome.FAILED, "boom"),
        (b"stray", Outcome.DEAD_LETTERED, "no matching handlers"),
    ]


def test_an_observer_that_raises_does_not_change_the_outcome(
    processor, isolated_registry
):
    class Broken:
        @hookimpl
        def missive_message_outcome(self, processing_ctx, message, outcome, reason):
            raise RuntimeError("metrics backend down")

    isolated_registry.register(Broken())
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())

    with processor.test_client() as client:
        outcome = client.send(RawMessage(b"x"))

    assert outcome is Outcome.ACKED
    assert len(client.acked) == 1


def test_without_observers_processing_skips_the_call(processor, isolated_registry):
    with processor.test_client() as client:
        assert client.processing_ctx._observer is None


def test_hook_specifications_are_documented():
    from missive.plugins import hookspecs

    hooks = [name for name in dir(hookspecs) if name.startswith("missive_")]

    assert hooks
    for name in hooks:
        assert len((getattr(hookspecs, name).__doc__ or "").strip()) > 80, name


def test_missive_exposes_hookimpl_lazily():
    assert missive.hookimpl is hookimpl
