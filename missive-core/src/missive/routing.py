"""Routing: choosing the one handler for a message.

A route pairs a matcher (any callable ``message -> bool``) with a handler.  A
message must be accepted by exactly one matcher; none or several is an error
that processing turns into a dead letter.
"""

from __future__ import annotations

from missive._typing import Generic, TypeVar
from missive.errors import (
    MatcherError,
    MessageDecodeError,
    MultipleMatchingHandlers,
    NoMatchingHandler,
    RoutingError,
)

M = TypeVar("M", bound="Message")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeAlias

    from missive.contexts import HandlingContext
    from missive.messages import Message

    # Type aliases exist for the type checker only: building them at run time
    # costs more than the rest of this module.
    Matcher: TypeAlias = Callable[[M], Any]
    Handler: TypeAlias = Callable[[M, HandlingContext[M]], None]
    _Route: TypeAlias = tuple[Matcher[M], Handler[M]]


class Router(Generic[M]):
    """An immutable table of routes that selects the handler for a message.

    Every matcher is considered for every message, so that a message accepted
    by two matchers is reported rather than silently given to the first.
    Matchers that can be indexed (see :meth:`missive.matchers.Matcher.index_entry`)
    are not called one by one: the value they look at is read once per source
    and looked up, which gives the same answer as calling each of them.
    """

    __slots__ = ("_indexes", "_opaque", "_routes", "select")

    def __init__(self, routes: Iterable[tuple[Matcher[M], Handler[M]]] = ()) -> None:
        self._routes = tuple(routes)
        indexes: dict[Any, dict[Any, list[_Route[M]]]] = {}
        opaque: list[_Route[M]] = []
        for route in self._routes:
            entry = _index_entry(route[0])
            if entry is None:
                opaque.append(route)
                continue
            source, values = entry
            table = indexes.setdefault(source, {})
            for value in dict.fromkeys(values):
                table.setdefault(value, []).append(route)
        self._indexes = tuple(
            (source, {value: tuple(hits) for value, hits in table.items()})
            for source, table in indexes.items()
        )
        self._opaque = tuple(opaque)
        self.select: Callable[[M], Handler[M]] = (
            self._select_indexed if self._indexes else self._select_linear
        )

    def __len__(self) -> int:
        return len(self._routes)

    def _select_linear(self, message: M) -> Handler[M]:
        """Select by calling every matcher in turn.

        :raises NoMatchingHandler: no matcher accepted it.
        :raises MultipleMatchingHandlers: more than one matcher accepted it.
        :raises MessageDecodeError: a matcher could not decode the payload.
        :raises MatcherError: a matcher raised any other exception.
        """
        found: _Route[M] | None = None
        try:
            for route in self._opaque:
                if route[0](message):
                    if found is not None:
                        raise _multiple(message, found, route)
                    found = route
        except (RoutingError, MessageDecodeError):
            raise
        except Exception as exc:
            raise MatcherError(message.message_id, route[0], exc) from exc
        if found is None:
            raise NoMatchingHandler(message.message_id)
        return found[1]

    def _select_indexed(self, message: M) -> Handler[M]:
        """Select through the indexes first, then the other matchers.

        Raises as :meth:`_select_linear` does.
        """
        found: _Route[M] | None = None
        current: Any = None
        try:
            for current, table in self._indexes:
                value = current.extract(message)
                try:
                    hits = table.get(value)
                except TypeError:  # an unhashable value equals no indexed value
                    continue
                if hits is None:
                    continue
                if found is not None or len(hits) > 1:
                    raise _multiple(message, found or hits[0], hits[-1])
                found = hits[0]

            for route in self._opaque:
                current = route[0]
                if current(message):
                    if found is not None:
                        raise _multiple(message, found, route)
                    found = route
        except (RoutingError, MessageDecodeError):
            raise
        except Exception as exc:
            raise MatcherError(message.message_id, current, exc) from exc
        if found is None:
            raise NoMatchingHandler(message.message_id)
        return found[1]


def _index_entry(matcher: object) -> tuple[Any, tuple[Any, ...]] | None:
    entry = getattr(matcher, "index_entry", None)
    return entry() if callable(entry) else None


def _multiple(
    message: Message, first: tuple[Any, Any], second: tuple[Any, Any]
) -> MultipleMatchingHandlers:
    return MultipleMatchingHandlers(
        message.message_id,
        f"at least {_name(first[1])} ({_describe(first[0])}) "
        f"and {_name(second[1])} ({_describe(second[0])})",
    )


def _describe(matcher: object) -> str:
    text = repr(matcher)
    return getattr(matcher, "__qualname__", text) if text.startswith("<") else text


def _name(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
