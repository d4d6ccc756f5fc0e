"""The message format contract: what every message class must do.

Subclass :class:`MessageFormatContract` in a test module with the class and
some payloads::

    pytest_plugins = ["missive.testing"]

    class TestCSVFormat(MessageFormatContract):
        message_cls = CSVMessage
        valid_payloads = [b"a,b\\n1,2\\n"]
        invalid_payloads = [b"\\xff\\xfe"]

        def decode(self, message):
            return message.rows()
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from missive import messages
from missive.contexts import HandlingContext, Outcome
from missive.dlq.memory import MemoryDLQ
from missive.errors import MessageDecodeError, PluginNotFound
from missive.messages import Message
from missive.processor import Processor

DLQ = MutableMapping[bytes, tuple[Message, str]]


class _HandlerFailed(Exception):
    """The handler of the round-trip check fails after decoding, on purpose."""


class MessageFormatContract:
    """The contract of a message format, as a suite of pytest checks.

    A subclass named ``Test...`` sets :attr:`message_cls` and
    :attr:`valid_payloads`, and :attr:`invalid_payloads` and :meth:`decode`
    when the format can reject a payload.  The checks verify that the class
    is registered under its ``format_name``, that ``rebuild`` recreates a
    message, that a message round-trips through a DLQ (the same class, id
    and bytes, decoding to the same value), and that a payload that cannot
    be decoded becomes a DLQ entry and is acked, or propagates unacked when
    there is no DLQ.

    The DLQ is a :class:`~missive.dlq.memory.MemoryDLQ` unless
    :meth:`make_dlq` says otherwise: a durable backend's tests can run this
    contract through it.
    """

    #: The message class under test.
    message_cls: ClassVar[type[Message]]
    #: Payloads the format decodes.
    valid_payloads: ClassVar[Sequence[bytes]] = ()
    #: Payloads the format refuses with ``MessageDecodeError``; none when it
    #: accepts any bytes.
    invalid_payloads: ClassVar[Sequence[bytes]] = ()

    def decode(self, message: Message) -> object:
        """Read ``message`` as a handler would (``message.get_json()``, ...).

        The default returns the raw bytes: right for a format that does not
        interpret them.
        """
        return message.raw_data

    def make_dlq(self, tmp_path: Path) -> DLQ:
        """Return the DLQ messages round-trip through."""
        return MemoryDLQ()

    def close_dlq(self, dlq: DLQ) -> None:
        """Release what :meth:`make_dlq` opened; the default does nothing."""

    @pytest.fixture
    def format_dlq(self, tmp_path: Path) -> Iterator[DLQ]:
        """The DLQ of one check, closed afterwards."""
        dlq = self.make_dlq(tmp_path)
        yield dlq
        self.close_dlq(dlq)

    def test_the_format_name_loads_this_class(self) -> None:
        name = self.message_cls.format_name
        advice = (
            f"format_name {name!r} does not load {self.message_cls.__name__}: "
            "register the class under its format_name (missive_message_formats)"
        )

        try:
            loaded = messages.load(name)
        except PluginNotFound as exc:
            pytest.fail(f"{advice}; {exc}")
        assert loaded is self.message_cls, advice

    def test_content_type_is_a_media_type_if_declared(self) -> None:
        content_type = self.message_cls.content_type

        assert content_type is None or re.fullmatch(
            r"[a-z0-9.+-]+/[a-z0-9.+-]+", content_type
        ), f"content_type {content_type!r} is not a lower-case media type"

    def test_rebuild_keeps_class_id_payload_and_attributes(self) -> None:
        assert self.valid_payloads, "give at least one valid payload"
        for raw_data in self.valid_payloads:
            original = self.message_cls(raw_data, attributes={"channel": "c"})

            rebuilt = self.message_cls.rebuild(
                raw_data, original.message_id, attributes={"channel": "c"}
            )

            assert type(rebuilt) is self.message_cls
            assert rebuilt == original
            assert rebuilt.raw_data == raw_data
            assert dict(rebuilt.attributes) == {"channel": "c"}
            assert self.decode(rebuilt) == self.decode(original)

    def test_valid_payloads_round_trip_through_a_dlq(self, format_dlq: DLQ) -> None:
        decoded: dict[bytes, object] = {}

        def decode_then_fail(message: Message, ctx: HandlingContext[Any]) -> None:
            decoded[message.message_id] = self.decode(message)
            raise _HandlerFailed("failed after decoding")

        sent = [self.message_cls(raw_data) for raw_data in self.valid_payloads]
        processor = self._processor(decode_then_fail, format_dlq)

        with processor.test_client() as client:
            outcomes = [client.send(message) for message in sent]

        assert outcomes == [Outcome.DEAD_LETTERED] * len(sent)
        for original in sent:
            stored, reason = format_dlq[original.message_id]
            assert type(stored) is self.message_cls
            assert stored.message_id == original.message_id
            assert stored.raw_data == original.raw_data
            assert reason == "failed after decoding"
            assert self.decode(stored) == decoded[original.message_id]

    def test_invalid_payloads_raise_message_decode_error(self) -> None:
        self._require_invalid_payloads()
        for raw_data in self.invalid_payloads:
            with pytest.raises(MessageDecodeError):
                self.decode(self.message_cls(raw_data))

    def test_a_decode_error_becomes_a_dlq_entry_and_is_acked(
        self, format_dlq: DLQ
    ) -> None:
        self._require_invalid_payloads()
        sent = [self.message_cls(raw_data) for raw_data in self.invalid_payloads]
        processor = self._processor(self._decode_and_ack, format_dlq)

        with processor.test_client() as client:
            outcomes = [client.send(message) for message in sent]

        assert outcomes == [Outcome.DEAD_LETTERED] * len(sent)
        assert client.acked == sent
        for original in sent:
            stored, reason = format_dlq[original.message_id]
            assert stored.raw_data == original.raw_data
            assert reason.startswith("could not decode message"), reason

    def test_a_decode_error_without_a_dlq_propagates_unacked(self) -> None:
        self._require_invalid_payloads()
        processor = self._processor(self._decode_and_ack, None)

        with processor.test_client() as client:
            for raw_data in self.invalid_payloads:
                with pytest.raises(MessageDecodeError):
                    client.send(self.message_cls(raw_data))

        assert client.acked == []
        assert client.nacked == []

    def _decode_and_ack(self, message: Message, ctx: HandlingContext[Any]) -> None:
        self.decode(message)
        ctx.ack()

    def _processor(self, handler: Any, dlq: DLQ | None) -> Processor[Any]:
        processor: Processor[Any] = Processor()
        processor.handle_for(lambda message: True)(handler)
        processor.set_dlq(dlq)
        return processor

    def _require_invalid_payloads(self) -> None:
        if not self.invalid_payloads:
            pytest.skip(f"{self.message_cls.__name__} accepts any payload")
