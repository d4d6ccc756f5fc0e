"""Hooks around processing and around each message."""

from __future__ import annotations

import os

import pytest

import missive
from missive import Outcome, RawMessage


@pytest.fixture
def calls():
    return []


@pytest.fixture
def hooked(processor, calls):
    """A processor with all four hooks recording their calls."""

    @processor.before_processing
    def start(ctx):
        calls.append(("before_processing", ctx))

    @processor.after_processing
    def stop(ctx):
        calls.append(("after_processing", ctx))

    @processor.before_handling
    def before(processing_ctx, handling_ctx):
        calls.append(("before_handling", handling_ctx.message.raw_data))

    @processor.after_handling
    def after(processing_ctx, handling_ctx):
        calls.append(("after_handling", handling_ctx.message.raw_data))

    return processor


def test_hooks_run_in_order_around_processing_and_each_message(hooked, calls):
    @hooked.handle_for(lambda m: True)
    def handle(message, ctx):
        calls.append(("handler", message.raw_data))
        ctx.ack()

    with hooked.test_client() as client:
        client.send(RawMessage(b"1"))
        client.send(RawMessage(b"2"))

    names = [(name, arg if isinstance(arg, bytes) else None) for name, arg in calls]
    assert names == [
        ("before_processing", None),
        ("before_handling", b"1"),
        ("handler", b"1"),
        ("after_handling", b"1"),
        ("before_handling", b"2"),
        ("handler", b"2"),
        ("after_handling", b"2"),
        ("after_processing", None),
    ]
    assert calls[0][1] is calls[-1][1]
    assert isinstance(calls[0][1], missive.ProcessingContext)


def test_message_is_acked_only_after_after_handling_hooks_ran(processor):
    seen_acked_in_hook = []
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())

    with processor.test_client() as client:

        @processor.after_handling
        def check(processing_ctx, handling_ctx):
            seen_acked_in_hook.append(list(client.acked))

        client.send(RawMessage(b"x"))

    assert seen_acked_in_hook == [[]]
    assert len(client.acked) == 1


def test_after_handling_runs_even_when_the_handler_raised(hooked, calls, dlq):
    hooked.handle_for(lambda m: True)(lambda message, ctx: 1 / 0)
    hooked.set_dlq(dlq)

    with hooked.test_client() as client:
        client.send(RawMessage(b"x"))

    assert ("after_handling", b"x") in calls
    assert [reason for _, reason in dlq.values()] == ["division by zero"]


def test_handling_hooks_run_for_messages_no_handler_matches(hooked, calls, dlq):
    hooked.set_dlq(dlq)

    with hooked.test_client() as client:
        client.send(RawMessage(b"stray"))

    assert ("before_handling", b"stray") in calls
    assert ("after_handling", b"stray") in calls


def test_before_handling_hook_that_raises_follows_the_dlq_policy(processor, dlq):
    handled = []
    processor.handle_for(lambda m: True)(lambda m, ctx: handled.append(m))

    @processor.before_handling
    def reject(processing_ctx, handling_ctx):
        raise PermissionError("tenant suspended")

    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        outcome = client.send(message)

    assert outcome is Outcome.DEAD_LETTERED
    assert handled == []
    assert dlq[message.message_id] == (message, "tenant suspended")
    assert client.acked == [message]


def test_after_handling_hook_that_raises_dead_letters_instead_of_acking(processor, dlq):
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())

    @processor.after_handling
    def audit(processing_ctx, handling_ctx):
        raise OSError("audit log full")

    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        client.send(message)

    assert dlq[message.message_id] == (message, "audit log full")
    assert client.acked == [message]


def test_handling_hook_that_raises_without_dlq_propagates_unacked(processor):
    processor.handle_for(lambda m: True)(lambda message, ctx: ctx.ack())

    @processor.after_handling
    def audit(processing_ctx, handling_ctx):
        raise OSError("audit log full")

    with processor.test_client() as client:
        with pytest.raises(OSError, match="audit log full"):
            client.send(RawMessage(b"x"))

    assert client.acked == [] and client.nacked == []


def test_handler_error_wins_over_a_later_after_handling_error(processor, dlq):
    processor.handle_for(lambda m: True)(lambda message, ctx: 1 / 0)

    @processor.after_handling
    def also_broken(processing_ctx, handling_ctx):
        raise OSError("second")

    processor.set_dlq(dlq)
    message = RawMessage(b"x")

    with processor.test_client() as client:
        client.send(message)

    assert dlq[message.message_id][1] == "division by zero"


def test_before_processing_hook_that_raises_always_propagates(processor, dlq):
    @processor.before_processing
    def no_database(ctx):
        raise ConnectionError("database down")

    processor.set_dlq(dlq)

    with pytest.raises(ConnectionError, match="database down"):
        with processor.test_client():
            pass


def test_after_processing_hook_that_raises_always_propagates(processor, dlq):
    @processor.after_processing
    def flush(ctx):
        raise ConnectionError("flush failed")

    processor.set_dlq(dlq)
    client = processor.test_client()
    client.send(RawMessage(b"x"))

    with pytest.raises(ConnectionError, match="flush failed"):
        client.close()


def test_state_is_shared_per_run_and_per_message(processor):
    @processor.before_processing
    def open_connection(ctx):
        ctx.state.connection = "db"
        ctx.state.count = 0

    @processor.before_handling
    def start(processing_ctx, handling_ctx):
        handling_ctx.state.started = handling_ctx.message.raw_data

    seen = []

    @processor.handle_for(lambda m: True)
    def handle(message, ctx):
        processing_state = ctx.processing_ctx.state
        processing_state.count += 1
        seen.append((processing_state.connection, ctx.state.started))
        ctx.ack()

    with processor.test_client() as client:
        client.send(RawMessage(b"1"))
        client.send(RawMessage(b"2"))

    assert seen == [("db", b"1"), ("db", b"2")]


def test_state_names_a_missing_attribute():
    state = missive.State()

    with pytest.raises(AttributeError, match="start_time"):
        state.start_time  # noqa: B018


def test_a_forked_child_never_runs_the_parents_after_processing_hooks(
    processor, tmp_path
):
    marker = tmp_path / "after_processing_pids"
    processor.after_processing(lambda ctx: marker.open("a").write(f"{os.getpid()}\n"))
    client = processor.test_client()
    client.processing_ctx  # noqa: B018  (opens the context before the fork)

    pid = os.fork()
    if pid == 0:  # the child leaves its copy of the open context, then exits
        client.close()
        os._exit(0)
    os.waitpid(pid, 0)
    client.close()

    assert marker.read_text().split() == [str(os.getpid())]
