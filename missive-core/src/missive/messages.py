"""Message formats: the objects handlers and matchers receive.

A message wraps the bytes a transport delivered.  Subclasses add a way to read
them (``JSONMessage.get_json``); decoding is lazy and cached, and a payload
that cannot be decoded raises :class:`~missive.errors.MessageDecodeError`,
which processing turns into a dead letter rather than a crash.

Formats are plugins: ``load("json")`` returns the class registered under that
name by core or by an installed distribution (entry-point group
``missive.messages``).
"""

from __future__ import annotations

import itertools
import os

from missive.errors import MessageDecodeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ClassVar, Self

# Message ids: a random per-process prefix and a counter.  Unique across
# processes without paying for uuid4 on every message.
_ID_PREFIX = os.urandom(8).hex().encode("ascii")
_id_counter = itertools.count(1)

#: How many bytes of payload a repr shows.
REPR_PREVIEW_BYTES = 32


def _new_message_id() -> bytes:
    return b"%s-%d" % (_ID_PREFIX, next(_id_counter))


class Message:
    """A message as delivered by a transport: raw bytes and a unique id.

    :param raw_data: the payload exactly as the transport delivered it.
    :param message_id: a unique id; adapters pass the transport's own id (a
        stream entry id, say) and otherwise one is generated.
    :param attributes: transport details a matcher or handler may read, such as
        ``{"channel": "orders"}``; empty when not given.

    Two messages are equal when they are of the same class and have the same
    id.  Subclasses set :attr:`format_name` (the name they are registered
    under) and may set :attr:`content_type` for transports that check it.
    """

    __slots__ = ("__dict__", "attributes", "message_id", "raw_data")

    format_name: ClassVar[str] = "message"
    content_type: ClassVar[str | None] = None

    def __init__(
        self,
        raw_data: bytes,
        message_id: bytes | None = None,
        *,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.raw_data = raw_data
        self.message_id = _new_message_id() if message_id is None else message_id
        self.attributes: Mapping[str, Any] = {} if attributes is None else attributes

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Message)
        return self.message_id == other.message_id

    def __hash__(self) -> int:
        return hash((self.__class__, self.message_id))

    def __repr__(self) -> str:
        preview = self.raw_data[:REPR_PREVIEW_BYTES]
        more = "..." if len(self.raw_data) > REPR_PREVIEW_BYTES else ""
        return (
            f"<{type(self).__name__} id={self.message_id!r} "
            f"raw_data={preview!r}{more} ({len(self.raw_data)} bytes)>"
        )

    @classmethod
    def rebuild(
        cls,
        raw_data: bytes,
        message_id: bytes,
        *,
        attributes: Mapping[str, Any] | None = None,
    ) -> Self:
        """Recreate a stored message (DLQ backends use this to read back).

        A subclass whose constructor takes more arguments overrides this.
        """
        return cls(raw_data, message_id, attributes=attributes)


class RawMessage(Message):
    """A message of just bytes, with no interpretation."""

    __slots__ = ()

    format_name = "raw"


class JSONMessage(Message):
    """A message whose payload is UTF-8 JSON.

    :meth:`get_json` decodes on first use and caches the result, so matchers
    and the handler share one decode.
    """

    __slots__ = ("_json",)

    format_name = "json"
    content_type = "application/json"

    _UNSET: ClassVar[object] = object()

    def __init__(
        self,
        raw_data: bytes,
        message_id: bytes | None = None,
        *,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(raw_data, message_id, attributes=attributes)
        self._json: Any = self._UNSET

    def get_json(self) -> Any:
        """Return the decoded payload.

        :raises MessageDecodeError: the payload is not UTF-8 JSON.
        """
        if self._json is self._UNSET:
            self._json = _decode_json(self.raw_data)
        return self._json


class DictMessage(JSONMessage):
    """A JSON message whose payload must be a JSON object."""

    __slots__ = ()

    format_name = "dict"

    def contents(self) -> dict[Any, Any]:
        """Return the decoded JSON object.

        :raises MessageDecodeError: the payload is not JSON, or not an object.
        """
        decoded = self.get_json()
        if not isinstance(decoded, dict):
            raise MessageDecodeError(
                f"expected a JSON object, got {type(decoded).__name__}"
            )
        return decoded


def _decode_json(raw_data: bytes) -> Any:
    import json  # deferred: only JSON users pay for the import

    try:
        return json.loads(raw_data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageDecodeError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        # Nesting deeper than the interpreter's recursion limit.
        raise MessageDecodeError("invalid JSON: nested too deeply to decode") from exc


def load(name: str) -> type[Message]:
    """Return the message class registered under ``name`` (``"json"``, ...).

    :raises PluginNotFound: no installed distribution provides ``name``.
    :raises PluginLoadError: the plugin providing ``name`` failed to import.
    """
    from missive import plugins

    found: type[Message] = plugins.load(plugins.MESSAGES, name)
    return found


def names() -> list[str]:
    """Return the names of every installed message format, sorted."""
    from missive import plugins

    return plugins.names(plugins.MESSAGES)
