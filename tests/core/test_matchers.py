"""Ready-made matchers, their combinations, and indexed routing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import missive
from missive import JSONMessage, RawMessage
from missive.matchers import attribute, field, raw_prefix
from missive.routing import Router


def _json(body) -> JSONMessage:
    return JSONMessage(json.dumps(body).encode())


def test_field_equals_reads_a_dotted_path():
    matcher = field("order.status").equals("paid")

    assert matcher(_json({"order": {"status": "paid"}}))
    assert not matcher(_json({"order": {"status": "new"}}))
    assert not matcher(_json({"order": "paid"}))
    assert not matcher(_json([1, 2]))
    assert not matcher(RawMessage(b'{"order": {"status": "paid"}}'))


def test_field_one_of_and_exists():
    assert field("type").one_of(["a", "b"])(_json({"type": "b"}))
    assert not field("type").one_of(["a", "b"])(_json({"type": "c"}))
    assert field("deleted_at").exists()(_json({"deleted_at": None}))
    assert not field("deleted_at").exists()(_json({}))


def test_raw_prefix_and_attribute():
    assert raw_prefix(b"PING")(RawMessage(b"PING 1"))
    assert not raw_prefix(b"PING")(RawMessage(b"PONG"))
    message = RawMessage(b"x", attributes={"channel": "audit"})
    assert attribute("channel").equals("audit")(message)
    assert not attribute("channel").equals("orders")(message)
    assert not attribute("stream").exists()(message)


def test_combinators_compose_and_short_circuit():
    is_order = field("type").equals("order")
    big = lambda m: m.get_json()["total"] > 100  # noqa: E731

    assert (is_order & big)(_json({"type": "order", "total": 500}))
    assert not (is_order & big)(_json({"type": "refund"}))  # big never runs
    assert (is_order | raw_prefix(b"["))(_json([1]))
    assert (~is_order)(_json({"type": "refund"}))


def test_reprs_say_what_they_match():
    matcher = (
        field("type").equals("order") | field("type").one_of(["a"])
    ) & ~raw_prefix(b"x")

    assert repr(matcher) == (
        "((field('type').equals('order') | field('type').one_of(['a'])) "
        "& ~raw_prefix(b'x'))"
    )
    assert repr(attribute("channel").exists()) == "attribute('channel').exists()"


def test_equal_matchers_are_one_matcher_for_registration(processor):
    processor.handle_for(field("type").equals("a"))(lambda m, ctx: ctx.ack())

    with pytest.raises(missive.HandlerAlreadyRegistered):
        processor.handle_for(field("type").equals("a"))(lambda m, ctx: ctx.ack())


def test_undecodable_payload_with_indexed_matchers_is_dead_lettered(processor, dlq):
    processor.handle_for(field("type").equals("a"))(lambda m, ctx: ctx.ack())
    processor.set_dlq(dlq)
    message = JSONMessage(b"{broken")

    with processor.test_client() as client:
        client.send(message)

    assert dlq[message.message_id][1].startswith("could not decode message")


def test_indexed_and_opaque_match_together_is_multiple_matching_handlers(
    processor, dlq
):
    @processor.handle_for(field("type").equals("order"))
    def indexed(message, ctx):
        ctx.ack()

    @processor.handle_for(lambda m: m.get_json().get("total", 0) > 10)
    def opaque(message, ctx):
        ctx.ack()

    processor.set_dlq(dlq)
    both = _json({"type": "order", "total": 50})
    only_indexed = _json({"type": "order", "total": 5})

    with processor.test_client() as client:
        client.send(both)
        client.send(only_indexed)

    assert dlq[both.message_id][1] == "multiple matching handlers"
    assert only_indexed.message_id not in dlq


def test_two_indexed_matchers_on_one_value_are_multiple(processor, dlq):
    processor.handle_for(field("type").equals("a"))(lambda m, ctx: ctx.ack())
    processor.handle_for(field("type").one_of(["a", "b"]))(lambda m, ctx: ctx.ack())
    processor.set_dlq(dlq)
    message = _json({"type": "a"})

    with processor.test_client() as client:
        client.send(message)
        client.send(_json({"type": "b"}))

    assert list(dlq) == [message.message_id]


def test_multiple_matching_error_names_the_matchers(processor):
    processor.handle_for(field("type").equals("a"))(lambda m, ctx: ctx.ack())
    processor.handle_for(field("kind").equals("a"))(lambda m, ctx: ctx.ack())

    with processor.test_client() as client:
        with pytest.raises(missive.MultipleMatchingHandlers) as raised:
            client.send(_json({"type": "a", "kind": "a"}))

    assert "field('type').equals('a')" in str(raised.value)
    assert "field('kind').equals('a')" in str(raised.value)


# --- property: indexed routing picks exactly what evaluating every matcher would

FIELDS = ("type", "kind")
VALUES = st.one_of(
    st.sampled_from(["a", "b", "c"]), st.integers(0, 2), st.booleans(), st.none()
)


def _naive_select(routes, message):
    hits = [handler for matcher, handler in routes if matcher(message)]
    if len(hits) != 1:
        return "none" if not hits else "multiple"
    return hits[0]


def _indexed_select(routes, message):
    try:
        return Router(routes).select(message)
    except missive.NoMatchingHandler:
        return "none"
    except missive.MultipleMatchingHandlers:
        return "multiple"


matcher_strategy = st.one_of(
    st.builds(lambda f, v: field(f).equals(v), st.sampled_from(FIELDS), VALUES),
    st.builds(
        lambda f, vs: field(f).one_of(vs),
        st.sampled_from(FIELDS),
        st.lists(VALUES, min_size=1, max_size=3),
    ),
    st.builds(lambda f: field(f).exists(), st.sampled_from(FIELDS)),
    st.builds(
        lambda f, v: (
            lambda m: isinstance(m.get_json(), dict) and m.get_json().get(f) == v
        ),
        st.sampled_from(FIELDS),
        VALUES,
    ),
    st.builds(lambda v: attribute("channel").equals(v), VALUES),
)

message_strategy = st.builds(
    lambda body, channel: JSONMessage(
        json.dumps(body).encode(),
        attributes={} if channel is None else {"channel": channel},
    ),
    st.one_of(
        st.dictionaries(st.sampled_from(FIELDS), st.one_of(VALUES, st.lists(VALUES))),
        st.lists(VALUES),
        VALUES,
    ),
    st.one_of(st.none(), VALUES),
)


@settings(max_examples=300, deadline=None)
@given(
    matchers=st.lists(matcher_strategy, max_size=8),
    messages=st.lists(message_strategy, min_size=1, max_size=5),
)
def test_indexed_routing_agrees_with_evaluating_every_matcher(matchers, messages):
    routes = []
    for number, matcher in enumerate(matchers):

        def handler(message, ctx, number=number):
            return number

        routes.append((matcher, handler))

    for message in messages:
        assert _indexed_select(routes, message) == _naive_select(routes, message)
