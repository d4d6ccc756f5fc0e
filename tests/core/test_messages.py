"""Message formats: identity, repr, JSON decoding and decode failures."""

from __future__ import annotations

import json

import pytest

import missive
from missive import DictMessage, JSONMessage, Outcome, RawMessage


def test_messages_get_unique_ids_as_bytes():
    ids = {RawMessage(b"same").message_id for _ in range(1000)}

    assert len(ids) == 1000
    assert all(isinstance(message_id, bytes) for message_id in ids)


def test_equality_is_by_class_and_id():
    message = RawMessage(b"a", message_id=b"1")

    assert message == RawMessage(b"other payload", message_id=b"1")
    assert message != RawMessage(b"a", message_id=b"2")
    assert message != JSONMessage(b"a", message_id=b"1")
    assert hash(message) == hash(RawMessage(b"", message_id=b"1"))


def test_repr_shows_only_a_short_prefix_of_the_payload():
    message = RawMessage(b"x" * 10_000, message_id=b"id-1")

    text = repr(message)

    assert len(text) < 200
    assert "id-1" in text
    assert "10000 bytes" in text


def test_json_message_decodes_once_and_caches(monkeypatch):
    message = JSONMessage(json.dumps({"name": "Cal"}).encode())
    calls = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda data: calls.append(1) or real_loads(data))

    first = message.get_json()
    second = message.get_json()

    assert first == {"name": "Cal"}
    assert second is first
    assert len(calls) == 1


def test_json_decode_error_says_why():
    with pytest.raises(missive.MessageDecodeError, match="invalid JSON"):
        JSONMessage(b"{not json").get_json()


def test_non_utf8_payload_is_a_decode_error():
    with pytest.raises(missive.MessageDecodeError):
        JSONMessage(b"\xff\xfe{}").get_json()


def test_undecodable_payload_is_dead_lettered_with_the_reason(dlq):
    processor: missive.Processor[JSONMessage] = missive.Processor()
    processor.handle_for(lambda m: m.get_json().get("label") == "sign-in")(
        lambda message, ctx: ctx.ack()
    )
    processor.set_dlq(dlq)
    message = JSONMessage(b"\x00 definitely not json")

    with processor.test_client() as client:
        outcome = client.send(message)

    assert outcome is Outcome.DEAD_LETTERED
    reason = dlq[message.message_id][1]
    assert reason.startswith("could not decode message: invalid JSON")
    assert client.acked == [message]


def test_undecodable_payload_in_the_handler_is_dead_lettered_too(dlq):
    processor: missive.Processor[JSONMessage] = missive.Processor()
    processor.handle_for(lambda m: True)(lambda message, ctx: message.get_json())
    processor.set_dlq(dlq)
    message = JSONMessage(b"[1, 2")

    with processor.test_client() as client:
        client.send(message)

    assert dlq[message.message_id][1].startswith("could not decode message")


def test_undecodable_payload_without_dlq_raises_decode_error():
    processor: missive.Processor[JSONMessage] = missive.Processor()
    processor.handle_for(lambda m: m.get_json() == 1)(lambda message, ctx: ctx.ack())

    with processor.test_client() as client:
        with pytest.raises(missive.MessageDecodeError):
            client.send(JSONMessage(b"nope"))

    assert client.acked == []


def test_dict_message_contents_requires_a_json_object():
    assert DictMessage(b'{"a": 1}').contents() == {"a": 1}

    with pytest.raises(missive.MessageDecodeError, match="JSON object"):
        DictMessage(b"[1]").contents()


def test_rebuild_restores_class_payload_and_id():
    message = JSONMessage(b"{}", message_id=b"stored-1")

    rebuilt = JSONMessage.rebuild(message.raw_data, message.message_id)

    assert rebuilt == message
    assert rebuilt.raw_data == b"{}"


def test_attributes_carry_transport_details():
    message = RawMessage(b"x", attributes={"channel": "orders"})

    assert message.attributes["channel"] == "orders"
    assert RawMessage(b"y").attributes == {}


def test_docs_testing_example_runs_as_written():
    json_processor: missive.Processor[missive.JSONMessage] = missive.Processor()

    @json_processor.handle_for(lambda m: m.get_json().get("name") == "Cal")
    def greet(message, ctx):
        ctx.ack()

    test_client = json_processor.test_client()
    message = missive.JSONMessage(json.dumps({"name": "Cal"}).encode("utf-8"))
    test_client.send(message)
    assert message in test_client.acked


def test_docs_label_matcher_routes_sign_ins():
    class HasLabelMatcher:
        def __init__(self, label):
            self.label = label

        def __call__(self, json_message):
            return json_message.get_json().get("label") == self.label

    processor = missive.Processor()
    recorded = []

    @processor.handle_for(HasLabelMatcher("sign-in"))
    def record_sign_ins(message, ctx):
        recorded.append(message)
        ctx.ack()

    @processor.handle_for(HasLabelMatcher("sign-out"))
    def another_matcher(message, ctx):
        ctx.ack()

    sign_in = JSONMessage(b'{"label": "sign-in"}')
    with processor.test_client() as client:
        client.send(sign_in)
        client.send(JSONMessage(b'{"label": "sign-out"}'))

    assert recorded == [sign_in]
    assert len(client.acked) == 2


def test_json_nested_too_deeply_is_a_decode_error_not_a_crash(dlq):
    processor: missive.Processor[JSONMessage] = missive.Processor()
    processor.handle_for(lambda m: m.get_json() == 1)(lambda message, ctx: ctx.ack())
    processor.set_dlq(dlq)
    message = JSONMessage(b"[" * 100_000 + b"]" * 100_000)

    with processor.test_client() as client:
        client.send(message)

    assert dlq[message.message_id][1] == (
        "could not decode message: invalid JSON: nested too deeply to decode"
    )
