"""The test client, used both ways the docs show."""

from __future__ import annotations

from missive import RawMessage


def _record_processing(processor, calls):
    processor.before_processing(lambda ctx: calls.append("start"))
    processor.after_processing(lambda ctx: calls.append("stop"))
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())


def test_with_block_runs_the_processing_context_around_the_block(processor):
    calls = []
    _record_processing(processor, calls)

    with processor.test_client() as client:
        assert calls == ["start"]
        client.send(RawMessage(b"x"))

    assert calls == ["start", "stop"]
    assert len(client.acked) == 1


def test_assigned_client_starts_the_context_at_the_first_send(processor):
    calls = []
    _record_processing(processor, calls)

    client = processor.test_client()
    assert calls == []
    client.send(RawMessage(b"1"))
    client.send(RawMessage(b"2"))
    assert calls == ["start"]
    client.close()

    assert calls == ["start", "stop"]
    assert [m.raw_data for m in client.acked] == [b"1", b"2"]


def test_close_without_any_send_runs_no_hooks(processor):
    calls = []
    _record_processing(processor, calls)

    processor.test_client().close()

    assert calls == []


def test_each_client_has_its_own_processing_context_and_records(processor):
    _record_processing(processor, [])

    with processor.test_client() as first, processor.test_client() as second:
        first.send(RawMessage(b"1"))
        contexts = (first.processing_ctx, second.processing_ctx)

    assert len(first.acked) == 1
    assert second.acked == []
    assert contexts[0] is not contexts[1]
